// Alert rules: the app spec's `alerts:` list and the operators' cluster rules file share these
// shapes. A rule is one of a small closed set of kinds, each with its parameters, written the way
// people say them ("over 3 within 10m", "below 50% for 1m"); parsing turns them into numbers.
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './units.js';
import { NAME } from './names.js';

export const MAX_APP_ALERTS = 20;
export const MAX_NOTIFY = 5;
/** Longest `within` / `for`: restart counts and memory samples are kept in memory that long at most. */
export const MAX_ALERT_WINDOW_MS = 24 * 3_600_000;

const percent = z
  .union([z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a percentage such as "50%"')])
  .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1))))
  .pipe(z.number().min(0, 'at least 0%').max(100, 'at most 100%'));
const window = z
  .union([z.number().int().nonnegative(), z.string().regex(DURATION_PATTERN, 'expected a duration such as "30s" or "10m"')])
  .transform((v) => parseDuration(v)!)
  .pipe(z.number().max(MAX_ALERT_WINDOW_MS, 'at most 24h'));
const receiverName = z.string().regex(NAME, 'a receiver name such as "oncall"');

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** What every rule may add to its kind: which entry, how bad, whom to tell. */
const common = {
  /** A name for the rule (default: its kind); alerts and silences name it. */
  name: z.string().regex(NAME, 'a rule name such as "restarts"').optional(),
  entry: z.string().regex(NAME, 'an entrypoint name').optional(),
  severity: z.enum(SEVERITIES).default('warning'),
  notify: z.array(receiverName).max(MAX_NOTIFY, `at most ${MAX_NOTIFY} receivers`).default([]),
};

/** Exactly one kind per rule; one object with every kind optional keeps each field's own error. */
const oneKind = (kinds: readonly string[]) => (rule: object) => kinds.filter((k) => (rule as Record<string, unknown>)[k] !== undefined).length === 1;
const APP_KINDS = ['restarts', 'healthy', 'memory', 'oomKilled'] as const;

export const AppAlertRule = z
  .strictObject({
    restarts: z.strictObject({ over: z.number().int().min(0).max(100_000), within: window.default(600_000) }).optional(),
    healthy: z.strictObject({ below: percent, for: window.default(60_000) }).optional(),
    memory: z.strictObject({ above: percent, for: window.default(300_000) }).optional(),
    oomKilled: z.strictObject({ within: window.default(600_000) }).optional(),
    ...common,
  })
  .refine(oneKind(APP_KINDS), 'exactly one of restarts, healthy, memory or oomKilled, e.g. { restarts: { over: 3, within: 10m } }');
export type AppAlertRule = z.output<typeof AppAlertRule>;

export const AppAlerts = z.array(AppAlertRule).max(MAX_APP_ALERTS, `at most ${MAX_APP_ALERTS} alert rules`);

const CLUSTER_KINDS = ['nodeDown', 'check', 'agentVersion'] as const;

export const ClusterAlertRule = z
  .strictObject({
    nodeDown: z.strictObject({ for: window.default(60_000) }).optional(),
    check: z.strictObject({ name: z.string().min(1).max(200), status: z.enum(['fail', 'warn']).default('fail'), for: window.default(0) }).optional(),
    agentVersion: z.strictObject({ for: window.default(0) }).optional(),
    ...common,
  })
  .refine(oneKind(CLUSTER_KINDS), 'exactly one of nodeDown, check or agentVersion');
export type ClusterAlertRule = z.output<typeof ClusterAlertRule>;

/** Header names and values a receiver is sent: visible ASCII, no CR/LF that could split a request. */
const headerName = z.string().regex(/^[A-Za-z0-9-]{1,100}$/, 'a header name such as X-Token');
const headerValue = z.string().max(4096, 'at most 4096 characters').regex(/^[\x20-\x7e]*$/, 'visible ASCII characters only');

/** How often an Alertmanager is told again of an alert still firing, unless a receiver says: Prometheus' default. */
export const DEFAULT_RESEND_MS = 60_000;

const httpUrl = z
  .string()
  .max(2048, 'at most 2048 characters')
  .url('expected an http(s) URL')
  .refine((u) => /^https?:/.test(u), 'expected an http(s) URL')
  // Credentials in a URL end up in logs and in `ps`; headers are the place for them.
  .refine((u) => !/^https?:\/\/[^/]*@/.test(u), 'no credentials in the URL: put a token in headers');

export const Receiver = z
  .strictObject({
    url: httpUrl,
    /**
     * json: Gantry's own body; alertmanager: the body of Alertmanager's webhook (for what reads
     * those); alertmanager-api: the alert pushed to an Alertmanager's /api/v2/alerts (url is the
     * Alertmanager's), re-sent while it fires, as Prometheus does.
     */
    format: z.enum(['json', 'alertmanager', 'alertmanager-api']).default('json'),
    headers: z.record(headerName, headerValue).refine((h) => Object.keys(h).length <= 20, 'at most 20 headers').default({}),
    /** alertmanager-api: how often a firing alert is pushed again (its endsAt is 4 times that ahead). */
    resendEvery: window.pipe(z.number().min(1000, 'at least 1s').max(3_600_000, 'at most 1h')).optional(),
  })
  .superRefine((receiver, ctx) => {
    if (receiver.resendEvery !== undefined && receiver.format !== 'alertmanager-api') ctx.addIssue({ code: 'custom', path: ['resendEvery'], message: 'only for format: alertmanager-api (the other formats are sent once per change)' });
  });
export type Receiver = z.output<typeof Receiver>;

export const AlertRulesFile = z.strictObject({
  receivers: z.record(receiverName, Receiver).refine((r) => Object.keys(r).length <= 50, 'at most 50 receivers').default({}),
  rules: z.array(ClusterAlertRule).max(100, 'at most 100 rules').optional(),
  /** Receivers every app rule notifies when it names none (an operator's catch-all). */
  defaultNotify: z.array(receiverName).max(MAX_NOTIFY).default([]),
  /** The address people reach this server at, for the links alerts carry (default: the address it listens on). */
  externalUrl: httpUrl.transform((u) => u.replace(/\/+$/, '')).optional(),
});
export type AlertRulesFile = z.output<typeof AlertRulesFile>;

/** Used when the file names no `rules:`. */
export const DEFAULT_CLUSTER_RULES_YAML = `
- nodeDown: { for: 1m }
  severity: critical
- check: { name: "disk:/var/lib/docker", status: fail }
  name: disk
- check: { name: clockOffset, status: fail }
  name: clock-skew
- agentVersion: { for: 0s }
  severity: info
`;

/** The kind of a rule: the one key of the closed set it has. */
export function ruleKind(rule: AppAlertRule | ClusterAlertRule): string {
  for (const kind of [...APP_KINDS, ...CLUSTER_KINDS]) if ((rule as Record<string, unknown>)[kind] !== undefined) return kind;
  return 'unknown';
}

export function ruleName(rule: AppAlertRule | ClusterAlertRule): string {
  return rule.name ?? ruleKind(rule);
}
