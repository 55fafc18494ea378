// Node inspection: the policy an operator writes (YAML, `gantry server --inspect-policy FILE`),
// the form it is sent to agents in, and the results agents report per check.
//
// The policy's thresholds are written the way people say them ("80%", "500ms", ">= 1024") and
// turned into numbers here once, so agents compare numbers and never parse the operator's text.
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './units.js';

export const CHECK_STATUSES = ['pass', 'warn', 'fail', 'error'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/** Most sysctls one policy names, and most results one report carries. */
export const MAX_SYSCTLS = 64;
export const MAX_CHECK_RESULTS = 128;
export const DEFAULT_INSPECT_INTERVAL_MS = 5 * 60_000;

/** A sysctl name as /proc/sys spells it with dots: no slash, no empty or dot-only part (it becomes a path). */
export const SYSCTL_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){1,15}$/;
const COMPARISON = /^(>=|<=|==|!=|>|<)\s*(\S(?:.{0,126}\S)?)$/;
const VERSION = /^\d+(\.\d+){0,3}$/;

export type Comparison = '>=' | '<=' | '==' | '!=' | '>' | '<';

/** The policy as agents get it: every threshold a number (percent, ms, count) or a version. */
export interface InspectPolicy {
  intervalMs: number;
  disk: { path: string; warnPercent: number; failPercent: number }[];
  inodes: { path: string; warnPercent: number; failPercent: number }[];
  /** MemAvailable as a share of MemTotal below which the check warns / fails; PSI `some avg10` above which it does. */
  memory?: { availableWarnPercent?: number; availableFailPercent?: number; pressureWarn?: number; pressureFail?: number };
  clockOffset?: { warnMs: number; failMs: number };
  uptime?: { warnBelowMs: number };
  fileLimit?: { min: number };
  kernel?: { min: string };
  cgroup?: { version: 'any' | 'v1' | 'v2' };
  docker?: { min: string };
  sysctls: Record<string, { op: Comparison; value: string }>;
}

const percent = z
  .union([z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a percentage such as "80%"')])
  .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1))))
  .pipe(z.number().min(0, 'at least 0%').max(100, 'at most 100%'));
const duration = z
  .union([z.number().int().nonnegative(), z.string().regex(DURATION_PATTERN, 'expected a duration such as "500ms" or "2s"')])
  .transform((v) => parseDuration(v)!)
  .pipe(z.number().max(365 * 24 * 3_600_000, 'at most a year'));
const version = z.union([z.string().regex(VERSION, 'expected a version such as "4.19"'), z.number().transform(String)]).pipe(z.string().regex(VERSION, 'expected a version such as "4.19"'));
const path = z.string().min(1).max(1024).regex(/^\//, 'an absolute path').refine((p) => !p.split('/').includes('..'), 'no ".." in the path');

const usage = z
  .strictObject({ path, warn: percent, fail: percent })
  .refine((u) => !(u.warn > u.fail), { message: 'warn must not be above fail', path: ['warn'] })
  .transform((u) => ({ path: u.path, warnPercent: u.warn, failPercent: u.fail }));
/** One filesystem (`{ path, warn, fail }`) or a list of them. */
const usages = z.preprocess((v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? [v] : v), z.array(usage).max(16));

const comparison = z
  .union([z.string(), z.number().transform((n) => `== ${n}`)])
  .pipe(z.string().max(160).regex(COMPARISON, 'expected a comparison such as ">= 1024" or "== 1"'))
  .transform((text) => {
    const [, op, value] = COMPARISON.exec(text)!;
    return { op: op as Comparison, value: value! };
  })
  .refine((c) => c.op === '==' || c.op === '!=' || Number.isFinite(Number(c.value)), { message: '<, <=, >, >= compare numbers' });

/** The YAML file, as written. */
export const InspectPolicyFile = z
  .strictObject({
    interval: duration.pipe(z.number().min(10_000, 'at least 10s')).default(DEFAULT_INSPECT_INTERVAL_MS),
    disk: usages.default([]),
    inodes: usages.default([]),
    memory: z
      .strictObject({ availableWarn: percent.optional(), availableFail: percent.optional(), pressureWarn: percent.optional(), pressureFail: percent.optional() })
      .transform((m) => ({ availableWarnPercent: m.availableWarn, availableFailPercent: m.availableFail, pressureWarn: m.pressureWarn, pressureFail: m.pressureFail }))
      .optional(),
    clockOffset: z
      .strictObject({ warn: duration, fail: duration })
      // Not a comparison when either failed to parse (zod still runs this refinement then).
      .refine((c) => !(c.warn > c.fail), { message: 'warn must not be above fail', path: ['warn'] })
      .transform((c) => ({ warnMs: c.warn, failMs: c.fail }))
      .optional(),
    uptime: z.strictObject({ warnBelow: duration }).transform((u) => ({ warnBelowMs: u.warnBelow })).optional(),
    fileLimit: z.strictObject({ min: z.number().int().min(0).max(2 ** 40) }).optional(),
    kernel: z.strictObject({ min: version }).optional(),
    cgroup: z.strictObject({ version: z.enum(['any', 'v1', 'v2']) }).optional(),
    docker: z.strictObject({ min: version }).optional(),
    sysctls: z
      .record(z.string().regex(SYSCTL_NAME, 'a sysctl name such as net.core.somaxconn'), comparison)
      .refine((s) => Object.keys(s).length <= MAX_SYSCTLS, `at most ${MAX_SYSCTLS} sysctls`)
      .default({}),
  })
  .transform(({ interval, ...rest }): InspectPolicy => ({ intervalMs: interval, ...rest }));

/** The policy a server uses when none is given (docs/observability.md shows it). */
export const DEFAULT_INSPECT_POLICY_YAML = `# What gantry node inspect checks, and when a check warns or fails.
interval: 5m
disk: { path: /var/lib/docker, warn: 80%, fail: 90% }
inodes: { path: /var/lib/docker, warn: 80%, fail: 90% }
memory: { availableWarn: 10%, availableFail: 5%, pressureWarn: 10%, pressureFail: 40% }
clockOffset: { warn: 500ms, fail: 2s }
uptime: { warnBelow: 10m }
fileLimit: { min: 65536 }
kernel: { min: "4.19" }
cgroup: { version: any }
docker: { min: "20.10" }
sysctls:
  net.core.somaxconn: ">= 1024"
`;

/** One check's outcome as an agent reports it. */
export interface CheckResult {
  /** `disk:/var/lib/docker`, `sysctl:net.core.somaxconn`, `clockOffset`, ... */
  check: string;
  status: CheckStatus;
  /** What the agent observed, as a person reads it ("87%", "6.8.0", "1.2s"). */
  value: string;
  /** What the policy asks (">= 1024", "warn 80%, fail 90%"). */
  threshold: string;
  message: string;
}

export const CheckResultSchema = z.object({
  check: z.string().min(1).max(200).regex(/^[A-Za-z0-9_.:/-]+$/, 'a check name'),
  status: z.enum(CHECK_STATUSES),
  value: z.string().max(256),
  threshold: z.string().max(256),
  message: z.string().max(1024),
});

/** A check as the server keeps it: the latest result, and since when it has had this status. */
export interface StoredCheck extends CheckResult {
  since: number;
}

/** `/inspections/{node}`: the latest results of one node, per check (what alert rules read). */
export interface InspectionRecord {
  node: string;
  /** When the agent ran the checks (the server's clock, on receipt). */
  at: number;
  checks: Record<string, StoredCheck>;
}

/** What `GET /v1/nodes` says of a node's checks. */
export interface CheckSummary {
  /** "ok", "2 warn", "1 fail, 1 warn", "not inspected yet", "not inspected (agent too old)". */
  text: string;
  at?: number;
  pass: number;
  warn: number;
  fail: number;
  error: number;
}

export function summarize(record: InspectionRecord | undefined, agentTooOld: boolean): CheckSummary {
  const counts = { pass: 0, warn: 0, fail: 0, error: 0 };
  if (!record) return { text: agentTooOld ? 'not inspected (agent too old)' : 'not inspected yet', ...counts };
  for (const check of Object.values(record.checks)) counts[check.status]++;
  const parts = (['fail', 'error', 'warn'] as const).filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
  return { text: parts.length === 0 ? 'ok' : parts.join(', '), at: record.at, ...counts };
}
