// The alert state machine as a pure function: from what holds now (conditions), the alerts as
// they were, the silences and the time, to the alerts as they are and the notifications to send.
// No I/O and no clock, so its tests run in milliseconds with any history they like.
//
// One alert per rule × subject (its key): a condition seen again is the same alert, never a
// second one. pending → firing once the condition has held for the rule's `for:`; firing →
// resolved when it stops holding (a resolved notice only for an alert whose firing was sent);
// a pending alert whose condition stops is simply dropped. Silenced alerts change state the same
// way and send nothing.
import type { Severity } from '../../model/spec-alerts.js';

export interface Condition {
  /** rule × subject, e.g. "restarts/app=web,entry=api". */
  key: string;
  rule: string;
  severity: Severity;
  /** What the alert is about: app, env, entry, instance, node. */
  labels: Record<string, string>;
  /** How long the condition must hold before the alert fires. */
  forMs: number;
  notify: readonly string[];
  active: boolean;
  /**
   * Whether holding is not known yet (counts over a window the server has not watched whole,
   * after a restart): the alert keeps the state it had, and none starts.
   */
  unknown?: boolean;
  /** What was observed, for people: "5 restarts in 10m". */
  value: string;
  summary: string;
}

export type AlertState = 'pending' | 'firing' | 'resolved';

export interface Alert {
  key: string;
  rule: string;
  severity: Severity;
  labels: Record<string, string>;
  state: AlertState;
  /** Since when the condition holds (pending and firing), or when it stopped (resolved). */
  since: number;
  /** When it started firing (for resolved alerts too: Alertmanager's startsAt). */
  firingSince?: number;
  value: string;
  summary: string;
  notify: string[];
  /** Whether a firing notification went out (so a resolved one does too). */
  notified: boolean;
  /** The silence that kept it quiet, while one does. */
  silencedBy?: string;
}

export interface Silence {
  id: string;
  /** Every label named must equal (rule, app, node, severity, …). */
  matchers: Record<string, string>;
  endsAt: number;
  comment?: string;
  createdBy: string;
  /** The team whose app it is about; undefined: a cluster silence, operators only. */
  team?: string;
}

export interface Notification {
  status: 'firing' | 'resolved';
  alert: Alert;
}

/** How long a resolved alert stays listed. */
export const RESOLVED_KEPT_MS = 3_600_000;

export function silencing(silences: readonly Silence[], alert: Pick<Alert, 'rule' | 'severity' | 'labels'>, now: number): Silence | undefined {
  const labels: Record<string, string> = { ...alert.labels, rule: alert.rule, severity: alert.severity };
  return silences.find((s) => s.endsAt > now && Object.entries(s.matchers).every(([k, v]) => labels[k] === v));
}

export function evaluate(
  conditions: readonly Condition[],
  previous: ReadonlyMap<string, Alert>,
  silences: readonly Silence[],
  now: number,
): { alerts: Map<string, Alert>; notifications: Notification[] } {
  const alerts = new Map<string, Alert>();
  const notifications: Notification[] = [];
  const seen = new Set<string>();
  for (const condition of conditions) {
    if (seen.has(condition.key)) continue; // de-duplicated: the first condition of a key decides
    seen.add(condition.key);
    const before = previous.get(condition.key);
    if (condition.unknown) {
      if (before) alerts.set(condition.key, before);
      continue;
    }
    const silence = silencing(silences, condition, now);
    const base = { key: condition.key, rule: condition.rule, severity: condition.severity, labels: condition.labels, value: condition.value, summary: condition.summary, notify: [...condition.notify], silencedBy: silence?.id };
    if (condition.active) {
      const holding = before && before.state !== 'resolved';
      const since = holding ? before.since : now;
      if (holding && before.state === 'firing') {
        // A firing alert kept quiet by a silence that has ended is told now.
        const tell = !before.notified && !silence;
        const alert: Alert = { ...before, ...base, notified: before.notified || tell };
        alerts.set(condition.key, alert);
        if (tell) notifications.push({ status: 'firing', alert });
        continue;
      }
      if (now - since >= condition.forMs) {
        const alert: Alert = { ...base, state: 'firing', since, firingSince: now, notified: !silence };
        alerts.set(condition.key, alert);
        if (!silence) notifications.push({ status: 'firing', alert });
      } else {
        alerts.set(condition.key, { ...base, state: 'pending', since, notified: false });
      }
      continue;
    }
    if (before) settle(before, base, now, alerts, notifications);
  }
  // Alerts whose subject is gone (an app removed, a node forgotten) are over too.
  for (const [key, before] of previous) if (!seen.has(key)) settle(before, { silencedBy: silencing(silences, before, now)?.id }, now, alerts, notifications);
  return { alerts, notifications };
}

function settle(before: Alert, update: Partial<Alert>, now: number, alerts: Map<string, Alert>, notifications: Notification[]): void {
  if (before.state === 'pending') return;
  if (before.state === 'resolved') {
    if (now - before.since < RESOLVED_KEPT_MS) alerts.set(before.key, before);
    return;
  }
  const alert: Alert = { ...before, ...update, state: 'resolved', since: now };
  alerts.set(before.key, alert);
  if (before.notified && !alert.silencedBy) notifications.push({ status: 'resolved', alert });
}
