// The app spec (gantry.yaml): what a developer writes, validated with zod so that every
// error names the field path. Parsing also normalises units (durations to ms, sizes to bytes).
//
// A spec comes from clients the server does not trust, so every value is bounded: no string that
// becomes an argument, env value, path or header holds a NUL, every list and map has a maximum
// length, every number and duration a maximum (the bounded building blocks are in spec-fields.ts).
// Text is bounded before it is parsed (spec-text.ts).
import { isDeepStrictEqual } from 'node:util';
import { AppLogs } from './log-shipping.js';
import { z } from 'zod';
import { parseSelector } from './selector.js';
import { NAME } from './names.js';
import { decodeSpecText, valueProblems } from './spec-text.js';
import { ImageRefError, parseImageRef } from './image-ref.js';
import { LIMITS, FIRST_UNPRIVILEGED_PORT, name, text, imageName, MINUTE, HOUR, DAY, duration, size, SIGNALS, arg, commandLine, portRef, labels } from './spec-fields.js';
import { EnvValue, entryFiles } from './spec-secrets.js';
import { EnvFrom, OnConfigChange } from './spec-configs.js';
import { AppAlerts } from './spec-alerts.js';

export { LIMITS, FIRST_UNPRIVILEGED_PORT } from './spec-fields.js';
export { MAX_SPEC_BYTES, MAX_SPEC_DEPTH, MAX_SPEC_TOKENS, MAX_SPEC_NODES, MAX_SPEC_ALIASES, RESERVED_KEYS } from './spec-text.js';

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
    /** Goes into the request line: no CR, LF, spaces or control characters that could split it. */
    http: z
      .strictObject({
        port: portRef,
        path: z
          .string()
          .max(LIMITS.healthPathLength, `at most ${LIMITS.healthPathLength} characters`)
          .regex(/^\/[\x21-\x7e]*$/, 'expected a path starting with "/" of visible ASCII characters: no spaces, CR, LF or control characters (percent-encode them)')
          .default('/'),
      })
      .optional(),
    tcp: z.strictObject({ port: portRef }).optional(),
    exec: z.strictObject({ command: commandLine }).optional(),
    interval: duration(HOUR).default(5000),
    timeout: duration(5 * MINUTE).default(2000),
    retries: z.number().int().min(1).max(100, 'at most 100').default(3),
    startPeriod: duration(HOUR).default(0),
  })
  .refine((h) => [h.http, h.tcp, h.exec].filter(Boolean).length === 1, 'exactly one of http, tcp or exec is required');

const restartPolicy = z.enum(['always', 'on-failure', 'never']);
export const RestartSpec = z
  .union(
    [
      restartPolicy,
      z.strictObject({
        policy: restartPolicy.default('always'),
        backoff: z.strictObject({ initial: duration(HOUR).default(1000), max: duration(HOUR).default(60_000) }).default({ initial: 1000, max: 60_000 }),
        maxRetries: z.number().int().min(0).max(LIMITS.maxRetries, `at most ${LIMITS.maxRetries}`).optional(),
      }),
    ],
    { error: 'expected always, on-failure, never, or { policy, backoff: { initial, max }, maxRetries }' },
  )
  .transform((v) => (typeof v === 'string' ? { policy: v, backoff: { initial: 1000, max: 60_000 }, maxRetries: undefined } : v));

export const ResourceSpec = z.strictObject({
  cpu: z.number().positive('cpu must be greater than 0').max(1024, 'at most 1024 CPUs').default(0.1),
  memory: size(LIMITS.memory, '64Ti').default(64 * 1024 * 1024),
  cpuBind: z.boolean().default(false),
});

export const PlacementSpec = z
  .strictObject({
    /** spread: even out this entry over nodes; binpack: fullest node first; balance: even out resource use; fill: top nodes up to perNode; each: perNode on every matching node. */
    strategy: z.enum(['spread', 'binpack', 'balance', 'fill', 'each']).default('spread'),
    perNode: z.number().int().min(1).max(LIMITS.perNode, `at most ${LIMITS.perNode}`).optional(),
    /** Node labels that must equal these values. */
    labels: labels.default({}),
    /** Further label terms, e.g. "zone in (a,b), !gpu, disk!=hdd". */
    selector: text(LIMITS.textLength).optional(),
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
const countOrPercent = z.union([
  z.number().int().min(0).max(LIMITS.replicas, `at most ${LIMITS.replicas}`),
  z
    .string()
    .regex(/^\d{1,3}%$/, 'expected a count or a percentage such as "25%"')
    .refine((v) => Number(v.slice(0, -1)) <= 100, 'a percentage is at most 100%'),
]);
const isZero = (v: number | string) => (typeof v === 'number' ? v : Number(v.slice(0, -1))) === 0;

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
    minHealthy: duration(HOUR).default(0),
    /** Without progress for this long the rollout fails (and rolls back). */
    progressDeadline: duration(DAY).default(120_000),
    /** Go back to the previous release when new instances crash or fail health checks. */
    autoRollback: z.boolean().default(true),
    /** Canary: how many new instances beside the old ones. */
    canary: countOrPercent.default(1),
    /** Canary: promote by itself once the canaries have been healthy this long. */
    autoPromote: duration(7 * DAY).optional(),
    /** Blue-green: keep the old set this long after the switch, to switch back at once. */
    keepOld: duration(7 * DAY).default(60_000),
  })
  .superRefine((u, ctx) => {
    if (u.strategy === 'rolling' && isZero(u.maxSurge) && isZero(u.maxUnavailable)) {
      ctx.addIssue({ code: 'custom', message: 'maxSurge and maxUnavailable cannot both be 0: the rollout could never progress', path: ['maxSurge'] });
    }
  });

const UPDATE_DEFAULTS = { strategy: 'rolling', maxSurge: 1, maxUnavailable: 0, minHealthy: 0, progressDeadline: 120_000, autoRollback: true, canary: 1, keepOld: 60_000 } as const;

export const EntrySpec = z
  .strictObject({
    image: imageName.optional(),
    /**
     * When the node pulls the image from its registry: ifMissing (the default: when the node
     * lacks it), always (before every new container), never (it must be on the node already).
     */
    pull: z.enum(['ifMissing', 'always', 'never']).optional(),
    /**
     * How `gantry apply --build` makes the image: a Docker build of `context` (relative to the
     * spec file) with its `dockerfile`, tagged as `image` and pushed before the apply. The server
     * keeps it only as part of the spec.
     */
    build: z
      .strictObject({
        context: text(LIMITS.pathLength).default('.'),
        dockerfile: text(LIMITS.pathLength).optional(),
        args: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, 'build argument names are letters, digits and "_"'), text(LIMITS.envValueLength)).refine((a) => Object.keys(a).length <= LIMITS.envVars, `at most ${LIMITS.envVars} build arguments`).optional(),
      })
      .optional(),
    command: commandLine.optional(),
    args: z.array(arg).max(LIMITS.args, `at most ${LIMITS.args} arguments`).default([]),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, 'environment variable names are letters, digits and "_", not starting with a digit (at most 256)'),
        EnvValue,
      )
      .refine((env) => Object.keys(env).length <= LIMITS.envVars, `at most ${LIMITS.envVars} environment variables`)
      .default({}),
    /** Files put into each instance, read-only: a secret's value (spec-secrets.ts). */
    files: entryFiles.optional(),
    /** Env variables from team configs' key-values (spec-configs.ts); the entry's own env wins. */
    envFrom: EnvFrom.optional(),
    /** What a new version of a config file does: restart (a rollout), a signal, or an HTTP hook. */
    onConfigChange: OnConfigChange.optional(),
    workdir: text(LIMITS.pathLength).optional(),
    replicas: z.number().int().min(0).max(LIMITS.replicas, `at most ${LIMITS.replicas}`).default(1),
    resources: ResourceSpec.default({ cpu: 0.1, memory: 64 * 1024 * 1024, cpuBind: false }),
    ports: z.array(PortSpec).max(LIMITS.ports, `at most ${LIMITS.ports} ports`).default([]),
    health: HealthSpec.optional(),
    restart: RestartSpec.default({ policy: 'always', backoff: { initial: 1000, max: 60_000 }, maxRetries: undefined }),
    stop: z
      .strictObject({
        signal: z.enum(SIGNALS).default('SIGTERM'),
        grace: duration(HOUR).default(10_000),
        /** After leaving the registry, how long to keep serving before the signal: time for nginx and resolvers to catch up. */
        drain: duration(10 * MINUTE).default(1000),
      })
      .default({ signal: 'SIGTERM', grace: 10_000, drain: 1000 }),
    hooks: z.strictObject({ afterStart: commandLine.optional(), beforeStop: commandLine.optional() }).default({}),
    labels: labels.default({}),
    placement: PlacementSpec.default({ strategy: 'spread', labels: {}, pool: 'default', dedicated: false }),
    update: UpdateSpec.default(UPDATE_DEFAULTS),
    /** Entrypoints of this app that must be healthy before this one starts, and that stop after it. */
    dependsOn: z.array(name('entrypoint name')).max(LIMITS.entrypoints, `at most ${LIMITS.entrypoints} entrypoints`).default([]),
    /** Runs to completion before each start of an instance (e.g. fetch and unpack a code bundle into a volume). */
    init: z
      .strictObject({ image: imageName.optional(), command: commandLine, timeout: duration(DAY).default(300_000) })
      .optional(),
    /** Named local volumes of each instance: kept across restarts and rebuilds in place, deleted with the instance. */
    volumes: z
      .array(z.strictObject({ name: name('volume name'), path: text(LIMITS.pathLength).startsWith('/', 'expected an absolute path') }))
      .max(LIMITS.volumes, `at most ${LIMITS.volumes} volumes`)
      .default([]),
  })
  .superRefine((entry, ctx) => {
    if (!entry.image && !entry.command) {
      ctx.addIssue({ code: 'custom', message: 'either image (docker runtime) or command (process runtime) is required', path: ['image'] });
    }
    for (const [path, image] of [[['image'], entry.image], [['init', 'image'], entry.init?.image]] as const) {
      const problem = image === undefined ? undefined : imageRefProblem(image);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [...path] });
    }
    if (entry.pull && !entry.image) ctx.addIssue({ code: 'custom', message: 'pull applies to an image (docker runtime); this entry has none', path: ['pull'] });
    if (entry.build && !entry.image) ctx.addIssue({ code: 'custom', message: 'build needs image: the name the built image is tagged and pushed as', path: ['build'] });
    checkPorts(entry, ctx);
    const hookPort = entry.onConfigChange !== undefined && typeof entry.onConfigChange === 'object' && 'hook' in entry.onConfigChange ? entry.onConfigChange.hook.port : undefined;
    if (typeof hookPort === 'string' && !entry.ports.some((p) => p.name === hookPort)) ctx.addIssue({ code: 'custom', message: `no port named "${hookPort}" in ports`, path: ['onConfigChange', 'hook', 'port'] });
    if (entry.health) checkHealthPorts(entry.health, entry.ports, ctx);
  });

type Ctx = z.RefinementCtx;

/** What is wrong with an image reference, once its characters passed imageName (which said so already). */
function imageRefProblem(image: string): string | undefined {
  if (!/^[\x21-\x7e]+$/.test(image)) return undefined;
  try {
    parseImageRef(image);
    return undefined;
  } catch (err) {
    return err instanceof ImageRefError ? err.message.replace(/^image "[^"]*" is not a valid reference: /, 'not a valid image reference: ') : String(err);
  }
}
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
    team: text(LIMITS.textLength).optional(),
    /** Where the agents ship the instances' lines (log-shipping.ts). */
    logs: AppLogs.optional(),
    /** Alert rules on this app's instances (spec-alerts.ts). */
    alerts: AppAlerts.optional(),
    entrypoints: z
      .record(name('entrypoint name'), EntrySpec)
      .refine((e) => Object.keys(e).length > 0, 'at least one entrypoint is required')
      .refine((e) => Object.keys(e).length <= LIMITS.entrypoints, `at most ${LIMITS.entrypoints} entrypoints`),
  })
  .superRefine((app, ctx) => {
    checkDependencies(app.entrypoints, ctx);
    app.alerts?.forEach((rule, i) => {
      if (rule.entry !== undefined && !Object.hasOwn(app.entrypoints, rule.entry)) ctx.addIssue({ code: 'custom', message: `no entrypoint named "${rule.entry}" in this app`, path: ['alerts', i, 'entry'] });
    });
  });

function checkDependencies(entries: Record<string, { dependsOn: string[] }>, ctx: Ctx): void {
  for (const [entry, spec] of Object.entries(entries)) {
    spec.dependsOn.forEach((dependency, i) => {
      const path = ['entrypoints', entry, 'dependsOn', i];
      if (dependency === entry) ctx.addIssue({ code: 'custom', message: 'an entrypoint cannot depend on itself', path });
      else if (!Object.hasOwn(entries, dependency)) ctx.addIssue({ code: 'custom', message: `no entrypoint named "${dependency}" in this app`, path });
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
    for (const dependency of entries[entry]?.dependsOn ?? []) if (Object.hasOwn(entries, dependency) && dependency !== entry) visit(dependency, [...trail, entry]);
    state.set(entry, 'done');
  };
  for (const entry of Object.keys(entries)) visit(entry, []);
}

/**
 * The team of an app whose spec names none. Apps from before teams (and small installations
 * that never make one) belong to it: their specs stay as they were, so nothing restarts.
 */
export const DEFAULT_TEAM = 'default';

/** The team an app belongs to. */
export function teamOfSpec(spec: { team?: string }): string {
  return spec.team ?? DEFAULT_TEAM;
}

export type AppSpecInput = z.input<typeof AppSpec>;
export type AppSpec = z.output<typeof AppSpec>;
export type EntrySpec = z.output<typeof EntrySpec>;
export type PortSpec = z.output<typeof PortSpec>;
export type HealthSpec = z.output<typeof HealthSpec>;
export type RestartSpec = z.output<typeof RestartSpec>;
export type UpdateSpec = z.output<typeof UpdateSpec>;

/**
 * The one form a spec is stored and compared in: its JSON round trip. A fresh parse holds
 * `undefined` for absent options (and maybe -0) where the stored JSON has no key (and 0), which
 * isDeepStrictEqual tells apart: an unchanged spec would look changed, an empty release made.
 */
export const canonicalSpec = <T extends object>(spec: T): T => JSON.parse(JSON.stringify(spec)) as T;

/** Same spec in canonical form; `ignoreReplicas`: a difference in replica counts only is scaling, no release. */
export function sameSpec(a: AppSpec, b: AppSpec, { ignoreReplicas = false } = {}): boolean {
  const [left, right] = [canonicalSpec(a), canonicalSpec(b)];
  if (ignoreReplicas) for (const entry of [...Object.values(left.entrypoints), ...Object.values(right.entrypoints)]) entry.replicas = 0;
  return isDeepStrictEqual(left, right);
}

/** Whether two entry specs run the same thing: equal apart from the replica count (an instance of one need not be replaced for the other). */
export function sameEntrySpec(a: EntrySpec, b: EntrySpec): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify({ ...a, replicas: 0 })), JSON.parse(JSON.stringify({ ...b, replicas: 0 })));
}

/** A count or "N%" of `replicas`; percentages round up for surges and canaries, down for unavailability. */
export function resolveCount(value: number | string, replicas: number, round: 'up' | 'down'): number {
  if (typeof value === 'number') return value;
  const exact = (Number(value.slice(0, -1)) / 100) * replicas;
  return round === 'up' ? Math.ceil(exact) : Math.floor(exact);
}

/** The images an entry runs from: its init step's first (it runs first), then its own; each once. */
export function entryImages(entry: { image?: string; init?: { image?: string } }): string[] {
  return [...new Set([entry.init?.image, entry.image])].filter((image): image is string => image !== undefined);
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
    // zod says only "Invalid key in record"; the key's own issue says what a key must be.
    if (issue.code === 'invalid_key') return issue.issues.map((inner) => ({ path: formatPath(issue.path), message: inner.message }));
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

/** Validates an already-decoded object (a JSON body, say); throws SpecError naming every bad field. */
export function parseAppSpec(input: unknown, source?: string): AppSpec {
  const refused = valueProblems(input);
  if (refused.length > 0) throw new SpecError(refused.map((p) => ({ path: formatPath(p.path), message: p.message })), source);
  const result = AppSpec.safeParse(input);
  if (!result.success) throw new SpecError(problemsFromZod(result.error), source);
  return result.data;
}

/** Parses YAML (or JSON) text; YAML errors and excesses carry their line and column. */
export function parseAppSpecText(text: string, source?: string): AppSpec {
  const decoded = decodeSpecText(text);
  if (!decoded.ok) throw new SpecError(decoded.problems, source);
  return parseAppSpec(decoded.value, source);
}

/**
 * Every fixed host port below 1024, with its field path. Binding one takes privileges the
 * agents may have, so the server refuses these unless an admin allowed them; the parser does not
 * know that policy.
 */
export function privilegedHostPorts(spec: AppSpec): { path: string; port: number }[] {
  return Object.entries(spec.entrypoints).flatMap(([entry, { ports }]) =>
    ports.flatMap((port, i) => (port.host !== undefined && port.host < FIRST_UNPRIVILEGED_PORT ? [{ path: formatPath(['entrypoints', entry, 'ports', i, 'host']), port: port.host }] : [])),
  );
}

export function appSpecJsonSchema(): unknown {
  return z.toJSONSchema(AppSpec, { io: 'input', unrepresentable: 'any' });
}
