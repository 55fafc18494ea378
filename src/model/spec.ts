// The app spec (gantry.yaml): what a developer writes, validated with zod so that every
// error names the field path. Parsing also normalises units (durations to ms, sizes to bytes).
import { z } from 'zod';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { parseDuration, parseSize, DURATION_PATTERN, SIZE_PATTERN } from './units.js';
import { parseSelector } from './selector.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const name = (what: string) =>
  z.string().regex(NAME, `${what} must be lower-case letters, digits and '-', starting and ending with a letter or digit (at most 63)`);

const duration = z
  .union([z.number().nonnegative(), z.string().regex(DURATION_PATTERN, 'expected a duration such as "500ms", "2s", "1m"')])
  .transform((v) => parseDuration(v)!);

const size = z
  .union([z.number().int().positive(), z.string().regex(SIZE_PATTERN, 'expected a size such as "64Mi", "1Gi", "512M"')])
  .transform((v, ctx) => {
    const bytes = parseSize(v)!;
    if (bytes <= 0) {
      ctx.addIssue({ code: 'custom', message: 'size must be greater than zero' });
      return z.NEVER;
    }
    return bytes;
  });

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGKILL', 'SIGUSR1', 'SIGUSR2'] as const;
const commandLine = z.union([z.string().min(1), z.array(z.string()).min(1)], { error: 'expected a command: a string (run by /bin/sh -c) or a non-empty list of strings' }).transform((v) => (typeof v === 'string' ? ['/bin/sh', '-c', v] : v));
const portRef = z.union([z.string().regex(NAME), z.number().int().min(1).max(65535)], { error: 'expected a port name from ports[] or a port number' });
const labels = z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/, 'label keys are letters, digits, ".", "_", "/", "-"'), z.string().max(256));

export const PortSpec = z.strictObject({
  name: name('port name'),
  /** The port the app listens on inside its container (docker runtime). */
  container: z.number().int().min(1).max(65535).optional(),
  /** A fixed host port; when absent Gantry picks a free one on the node. */
  host: z.number().int().min(1).max(65535).optional(),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
});

export const HealthSpec = z
  .strictObject({
    http: z.strictObject({ port: portRef, path: z.string().startsWith('/').default('/') }).optional(),
    tcp: z.strictObject({ port: portRef }).optional(),
    exec: z.strictObject({ command: commandLine }).optional(),
    interval: duration.default(5000),
    timeout: duration.default(2000),
    retries: z.number().int().min(1).max(100).default(3),
    startPeriod: duration.default(0),
  })
  .refine((h) => [h.http, h.tcp, h.exec].filter(Boolean).length === 1, 'exactly one of http, tcp or exec is required');

const restartPolicy = z.enum(['always', 'on-failure', 'never']);
export const RestartSpec = z
  .union(
    [
      restartPolicy,
      z.strictObject({
        policy: restartPolicy.default('always'),
        backoff: z.strictObject({ initial: duration.default(1000), max: duration.default(60_000) }).default({ initial: 1000, max: 60_000 }),
        maxRetries: z.number().int().min(0).optional(),
      }),
    ],
    { error: 'expected always, on-failure, never, or { policy, backoff: { initial, max }, maxRetries }' },
  )
  .transform((v) => (typeof v === 'string' ? { policy: v, backoff: { initial: 1000, max: 60_000 }, maxRetries: undefined } : v));

export const ResourceSpec = z.strictObject({
  cpu: z.number().positive('cpu must be greater than 0').max(1024).default(0.1),
  memory: size.default(64 * 1024 * 1024),
  cpuBind: z.boolean().default(false),
});

export const PlacementSpec = z
  .strictObject({
    /** spread: even out this entry over nodes; binpack: fullest node first; balance: even out resource use; fill: top nodes up to perNode; each: perNode on every matching node. */
    strategy: z.enum(['spread', 'binpack', 'balance', 'fill', 'each']).default('spread'),
    perNode: z.number().int().min(1).optional(),
    /** Node labels that must equal these values. */
    labels: z.record(z.string(), z.string()).default({}),
    /** Further label terms, e.g. "zone in (a,b), !gpu, disk!=hdd". */
    selector: z.string().optional(),
    pool: z.string().regex(NAME, 'pool names are lower-case letters, digits and "-"').default('default'),
    /** One project per host: only nodes running no other app, which then take no other app. */
    dedicated: z.boolean().default(false),
  })
  .superRefine((placement, ctx) => {
    if ((placement.strategy === 'fill' || placement.strategy === 'each') && placement.perNode === undefined) {
      ctx.addIssue({ code: 'custom', message: `strategy ${placement.strategy} needs perNode`, path: ['perNode'] });
    }
    if (placement.selector !== undefined) {
      try {
        parseSelector(placement.selector);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message, path: ['selector'] });
      }
    }
  });

/** A count, or a percentage of the replica count such as "25%". */
const countOrPercent = z.union([z.number().int().min(0), z.string().regex(/^\d{1,3}%$/, 'expected a count or a percentage such as "25%"')]);

export const UpdateSpec = z
  .strictObject({
    /**
     * rolling: replace a few at a time; blue-green: a full new set, then one switch; canary: a few
     * new beside the old, then promote; in-place: rebuild each instance where it is (same node,
     * ports, CPU plan and volumes), maxUnavailable at a time.
     */
    strategy: z.enum(['rolling', 'blue-green', 'canary', 'in-place']).default('rolling'),
    /** Rolling: how many new instances beyond the replica count at once. */
    maxSurge: countOrPercent.default(1),
    /** Rolling: how many below the replica count may be unavailable. */
    maxUnavailable: countOrPercent.default(0),
    /** A new instance counts only once it has been healthy this long. */
    minHealthy: duration.default(0),
    /** Without progress for this long the rollout fails (and rolls back). */
    progressDeadline: duration.default(120_000),
    /** Go back to the previous release when new instances crash or fail health checks. */
    autoRollback: z.boolean().default(true),
    /** Canary: how many new instances beside the old ones. */
    canary: countOrPercent.default(1),
    /** Canary: promote by itself once the canaries have been healthy this long. */
    autoPromote: duration.optional(),
    /** Blue-green: keep the old set this long after the switch, to switch back at once. */
    keepOld: duration.default(60_000),
  })
  .superRefine((u, ctx) => {
    if (u.strategy === 'rolling' && (u.maxSurge === 0 || u.maxSurge === '0%') && (u.maxUnavailable === 0 || u.maxUnavailable === '0%')) {
      ctx.addIssue({ code: 'custom', message: 'maxSurge and maxUnavailable cannot both be 0: the rollout could never progress', path: ['maxSurge'] });
    }
  });

const UPDATE_DEFAULTS = { strategy: 'rolling', maxSurge: 1, maxUnavailable: 0, minHealthy: 0, progressDeadline: 120_000, autoRollback: true, canary: 1, keepOld: 60_000 } as const;

export const EntrySpec = z
  .strictObject({
    image: z.string().min(1).optional(),
    command: commandLine.optional(),
    args: z.array(z.string()).default([]),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and "_"'), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
    workdir: z.string().optional(),
    replicas: z.number().int().min(0).max(10_000).default(1),
    resources: ResourceSpec.default({ cpu: 0.1, memory: 64 * 1024 * 1024, cpuBind: false }),
    ports: z.array(PortSpec).default([]),
    health: HealthSpec.optional(),
    restart: RestartSpec.default({ policy: 'always', backoff: { initial: 1000, max: 60_000 }, maxRetries: undefined }),
    stop: z
      .strictObject({
        signal: z.enum(SIGNALS).default('SIGTERM'),
        grace: duration.default(10_000),
        /** After leaving the registry, how long to keep serving before the signal: time for nginx and resolvers to catch up. */
        drain: duration.default(1000),
      })
      .default({ signal: 'SIGTERM', grace: 10_000, drain: 1000 }),
    hooks: z.strictObject({ afterStart: commandLine.optional(), beforeStop: commandLine.optional() }).default({}),
    labels: labels.default({}),
    placement: PlacementSpec.default({ strategy: 'spread', labels: {}, pool: 'default', dedicated: false }),
    update: UpdateSpec.default(UPDATE_DEFAULTS),
    /** Entrypoints of this app that must be healthy before this one starts, and that stop after it. */
    dependsOn: z.array(name('entrypoint name')).default([]),
    /** Runs to completion before each start of an instance (e.g. fetch and unpack a code bundle into a volume). */
    init: z
      .strictObject({ image: z.string().min(1).optional(), command: commandLine, timeout: duration.default(300_000) })
      .optional(),
    /** Named local volumes of each instance: kept across restarts and rebuilds in place, deleted with the instance. */
    volumes: z.array(z.strictObject({ name: name('volume name'), path: z.string().startsWith('/', 'expected an absolute path') })).default([]),
  })
  .superRefine((entry, ctx) => {
    if (!entry.image && !entry.command) {
      ctx.addIssue({ code: 'custom', message: 'either image (docker runtime) or command (process runtime) is required', path: ['image'] });
    }
    checkPorts(entry, ctx);
    if (entry.health) checkHealthPorts(entry.health, entry.ports, ctx);
  });

type Ctx = z.RefinementCtx;
type ParsedPort = z.output<typeof PortSpec>;

function checkPorts(entry: { image?: string; ports: ParsedPort[] }, ctx: Ctx): void {
  const seen = { name: new Map<string, number>(), container: new Map<string, number>(), host: new Map<string, number>() };
  entry.ports.forEach((port, i) => {
    const keys = { name: port.name, container: port.container && `${port.container}/${port.protocol}`, host: port.host && `${port.host}/${port.protocol}` };
    for (const field of ['name', 'container', 'host'] as const) {
      const key = keys[field];
      if (!key) continue;
      const first = seen[field].get(key);
      if (first !== undefined) ctx.addIssue({ code: 'custom', message: `duplicate port ${field} ${String(port[field])} (also ports[${first}])`, path: ['ports', i, field] });
      else seen[field].set(key, i);
    }
    if (entry.image && port.container === undefined) {
      ctx.addIssue({ code: 'custom', message: 'container port is required for an image (docker) entry', path: ['ports', i, 'container'] });
    }
  });
}

function checkHealthPorts(health: z.output<typeof HealthSpec>, ports: ParsedPort[], ctx: Ctx): void {
  for (const kind of ['http', 'tcp'] as const) {
    const ref = health[kind]?.port;
    if (typeof ref === 'string' && !ports.some((p) => p.name === ref)) {
      ctx.addIssue({ code: 'custom', message: `no port named "${ref}" in ports`, path: ['health', kind, 'port'] });
    }
  }
}

export const AppSpec = z
  .strictObject({
    app: name('app'),
    env: name('env').default('default'),
    team: z.string().optional(),
    entrypoints: z.record(name('entrypoint name'), EntrySpec).refine((e) => Object.keys(e).length > 0, 'at least one entrypoint is required'),
  })
  .superRefine((app, ctx) => checkDependencies(app.entrypoints, ctx));

function checkDependencies(entries: Record<string, { dependsOn: string[] }>, ctx: Ctx): void {
  for (const [entry, spec] of Object.entries(entries)) {
    spec.dependsOn.forEach((dependency, i) => {
      const path = ['entrypoints', entry, 'dependsOn', i];
      if (dependency === entry) ctx.addIssue({ code: 'custom', message: 'an entrypoint cannot depend on itself', path });
      else if (!entries[dependency]) ctx.addIssue({ code: 'custom', message: `no entrypoint named "${dependency}" in this app`, path });
    });
  }
  // A cycle would keep every entrypoint in it from ever starting.
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (entry: string, trail: string[]): void => {
    if (state.get(entry) === 'done') return;
    if (state.get(entry) === 'visiting') {
      ctx.addIssue({ code: 'custom', message: `dependency cycle: ${[...trail.slice(trail.indexOf(entry)), entry].join(' → ')}`, path: ['entrypoints', entry, 'dependsOn'] });
      return;
    }
    state.set(entry, 'visiting');
    for (const dependency of entries[entry]?.dependsOn ?? []) if (entries[dependency] && dependency !== entry) visit(dependency, [...trail, entry]);
    state.set(entry, 'done');
  };
  for (const entry of Object.keys(entries)) visit(entry, []);
}

export type AppSpecInput = z.input<typeof AppSpec>;
export type AppSpec = z.output<typeof AppSpec>;
export type EntrySpec = z.output<typeof EntrySpec>;
export type PortSpec = z.output<typeof PortSpec>;
export type HealthSpec = z.output<typeof HealthSpec>;
export type RestartSpec = z.output<typeof RestartSpec>;
export type UpdateSpec = z.output<typeof UpdateSpec>;

/** A count or "N%" of `replicas`; percentages round up for surges and canaries, down for unavailability. */
export function resolveCount(value: number | string, replicas: number, round: 'up' | 'down'): number {
  if (typeof value === 'number') return value;
  const exact = (Number(value.slice(0, -1)) / 100) * replicas;
  return round === 'up' ? Math.ceil(exact) : Math.floor(exact);
}

export function entryRuntime(entry: EntrySpec): 'docker' | 'process' {
  return entry.image ? 'docker' : 'process';
}

/** One validation problem, with the path of the field it is about. */
export interface SpecProblem {
  path: string;
  message: string;
}

export class SpecError extends Error {
  constructor(readonly problems: SpecProblem[], readonly source?: string) {
    super(problems.map((p) => `${source ? `${source}: ` : ''}${p.path || '(root)'}: ${p.message}`).join('\n'));
    this.name = 'SpecError';
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)), '');
}

export function problemsFromZod(error: z.ZodError): SpecProblem[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown field' }));
    }
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

/** Validates an already-decoded object; throws SpecError naming every bad field. */
export function parseAppSpec(input: unknown, source?: string): AppSpec {
  const result = AppSpec.safeParse(input);
  if (!result.success) throw new SpecError(problemsFromZod(result.error), source);
  return result.data;
}

/** Parses YAML (or JSON) text; YAML syntax errors carry their line and column. */
export function parseAppSpecText(text: string, source?: string): AppSpec {
  let decoded: unknown;
  try {
    decoded = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      throw new SpecError([{ path: pos ? `line ${pos.line}, column ${pos.col}` : '', message: err.message.split('\n')[0]! }], source);
    }
    throw err;
  }
  return parseAppSpec(decoded, source);
}

export function appSpecJsonSchema(): unknown {
  return z.toJSONSchema(AppSpec, { io: 'input', unrepresentable: 'any' });
}
