// The alert loop: every few seconds it reads the cluster cache, the usage samples and the node
// inspections, asks observe() what holds and evaluate() what that means, writes the alerts that
// changed (so a restarted server knows what it already told), records alert.firing /
// alert.resolved events and hands the notifications to the notifier, which sends them in the
// background (and pushes the firing alerts again to Alertmanagers, which want to hear of them
// while they last). Silences are kept in the store too.
import { randomUUID } from 'node:crypto';
import type { Store } from '../../store/store.js';
import type { ClusterState } from '../state.js';
import type { EventLog } from '../services/events.js';
import type { UsageService } from '../services/usage.js';
import type { InspectionService } from '../services/inspections.js';
import type { InspectionRecord } from '../../model/inspection.js';
import { teamOfSpec } from '../../model/spec.js';
import type { ClusterAlertRule, Receiver } from '../../model/spec-alerts.js';
import { STORE } from '../keys.js';
import { evaluate, type Alert, type Notification, type Silence } from './evaluate.js';
import { observe, type ObservedApp, type ObservedNode } from './observe.js';
import { CounterHistory } from './history.js';
import { Notifier, type NotifierOptions } from './notifier.js';

export interface AlertConfig {
  rules: readonly ClusterAlertRule[];
  receivers: Record<string, Receiver>;
  defaultNotify: readonly string[];
  /** Where people reach the server, for links in notifications. */
  externalUrl?: string;
}

/** Silences kept at most: each is a line an operator or developer wrote. */
export const MAX_SILENCES = 1000;

export class AlertService {
  private alerts = new Map<string, Alert>();
  private silences = new Map<string, Silence>();
  private readonly restarts = new CounterHistory();
  private readonly oomKills = new CounterHistory();
  readonly notifier: Notifier;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** Since when the counter histories are kept. */
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly usage: UsageService,
    private readonly inspections: InspectionService,
    readonly config: AlertConfig,
    private readonly serverVersion: string,
    notifierOptions: NotifierOptions = {},
  ) {
    this.notifier = new Notifier(new Map(Object.entries(config.receivers)), events, notifierOptions);
  }

  async start(intervalMs: number): Promise<void> {
    const [alerts, silences] = await Promise.all([this.store.range(STORE.alerts.prefix), this.store.range(STORE.alertSilences.prefix)]);
    for (const kv of alerts.kvs) {
      const alert = STORE.alerts.decode(kv.value);
      this.alerts.set(alert.key, alert);
    }
    for (const kv of silences.kvs) {
      const silence = STORE.alertSilences.decode(kv.value);
      this.silences.set(silence.id, silence);
    }
    const tick = () => {
      const running = this.evaluateNow().catch((err: Error) => console.error(`gantry server: alert evaluation failed (tried again): ${err.message}`));
      this.running = running;
      void running.then(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, intervalMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async close(): Promise<void> {
    const timer = this.timer;
    this.timer = undefined;
    clearTimeout(timer);
    await this.running;
    this.notifier.close();
  }

  /** One evaluation: observe, evaluate, store what changed, record and send. */
  async evaluateNow(now = Date.now()): Promise<Notification[]> {
    const apps: ObservedApp[] = [];
    for (const record of this.state.apps.values()) {
      const rules = record.spec.alerts ?? [];
      if (rules.length === 0) continue;
      const entries: Record<string, number> = {};
      for (const [entry, spec] of Object.entries(record.spec.entrypoints)) entries[entry] = record.stopped ? 0 : spec.replicas;
      const instances = this.state.instancesOf(record.name).map((instance) => {
        const status = this.state.statuses.get(instance.id);
        const used = this.usage.latest(instance.id);
        this.restarts.record(instance.id, status?.restarts ?? 0, now);
        if (used) this.oomKills.record(instance.id, used.oomKills, now);
        return { id: instance.id, entry: instance.entry, node: instance.node, healthy: status?.state === 'running', createdAt: instance.createdAt, memoryBytes: used?.memoryBytes, memoryLimitBytes: used?.memoryLimitBytes };
      });
      apps.push({ app: record.name, env: record.env, team: teamOfSpec(record.spec), rules, entries, instances });
    }
    const inspections = this.config.rules.some((r) => r.check) ? await this.inspections.all() : new Map<string, InspectionRecord>();
    const nodes: ObservedNode[] = [...this.state.nodes.values()].map((node) => {
      const checks: ObservedNode['checks'] = {};
      for (const [name, check] of Object.entries(inspections.get(node.name)?.checks ?? {})) checks[name] = { status: check.status, value: check.value };
      return { name: node.name, down: node.state === 'down', agentVersion: node.agentVersion, checks };
    });
    this.restarts.sweep(now);
    this.oomKills.sweep(now);
    for (const [id, silence] of this.silences) if (silence.endsAt <= now) this.silences.delete(id);

    const conditions = observe({ apps, nodes, clusterRules: this.config.rules, serverVersion: this.serverVersion, restarts: this.restarts, oomKills: this.oomKills, defaultNotify: this.config.defaultNotify, historySince: this.startedAt, now });
    const before = this.alerts;
    const { alerts, notifications } = evaluate(conditions, before, [...this.silences.values()], now);
    await this.write(before, alerts);
    this.alerts = alerts;
    for (const alert of alerts.values()) {
      const was = before.get(alert.key)?.state;
      if (alert.state === was || alert.state === 'pending') continue;
      const silenced = alert.silencedBy ? ` (silenced by ${alert.silencedBy})` : '';
      this.events.note({
        level: alert.state === 'firing' ? (alert.severity === 'critical' ? 'error' : 'warning') : 'info',
        type: `alert.${alert.state}`,
        app: alert.labels.app,
        node: alert.labels.node,
        message: `alert ${alert.rule} ${alert.state}: ${alert.summary}${silenced}`,
        data: { key: alert.key, rule: alert.rule, severity: alert.severity, value: alert.value, ...(alert.silencedBy ? { silencedBy: alert.silencedBy } : {}) },
      });
    }
    this.notifier.send(notifications);
    this.notifier.resend([...alerts.values()].filter((a) => a.state === 'firing' && a.notified && !a.silencedBy), now);
    return notifications;
  }

  /** Only what changed is written: an evaluation that changes nothing writes nothing. */
  private async write(before: ReadonlyMap<string, Alert>, after: ReadonlyMap<string, Alert>): Promise<void> {
    const ops: { type: 'put' | 'delete'; key: string; value?: string }[] = [];
    for (const [key, alert] of after) {
      const old = before.get(key);
      if (alert.state === 'pending') continue; // pending alerts start over after a restart: nothing was told
      if (old && old.state === alert.state && old.value === alert.value && old.notified === alert.notified && old.silencedBy === alert.silencedBy) continue;
      ops.push({ type: 'put', key: STORE.alerts.key(key), value: STORE.alerts.encode(alert) });
    }
    for (const [key, old] of before) if (!after.has(key) || after.get(key)!.state === 'pending') if (old.state !== 'pending') ops.push({ type: 'delete', key: STORE.alerts.key(key) });
    if (ops.length === 0) return;
    await this.store.txn({ compare: [], success: ops.map((op) => (op.type === 'put' ? { type: 'put' as const, key: op.key, value: op.value! } : { type: 'delete' as const, key: op.key })) });
  }

  /** Active and lately resolved alerts the caller may see (visible: by app; undefined for cluster alerts). */
  list(visible: (app: string | undefined) => boolean, filter: { app?: string; node?: string } = {}): Alert[] {
    return [...this.alerts.values()]
      .filter((a) => visible(a.labels.app) && (!filter.app || a.labels.app === filter.app) && (!filter.node || a.labels.node === filter.node))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  listSilences(visible: (app: string | undefined) => boolean, now = Date.now()): Silence[] {
    return [...this.silences.values()].filter((s) => s.endsAt > now && visible(s.matchers.app)).sort((a, b) => a.endsAt - b.endsAt);
  }

  async silence(input: Omit<Silence, 'id'>): Promise<Silence> {
    if (this.silences.size >= MAX_SILENCES) throw Object.assign(new Error(`at most ${MAX_SILENCES} silences: remove some (gantry alert unsilence)`), { statusCode: 409 });
    const silence: Silence = { id: randomUUID().slice(0, 8), ...input };
    await this.store.put(STORE.alertSilences.key(silence.id), STORE.alertSilences.encode(silence));
    this.silences.set(silence.id, silence);
    this.events.note({ level: 'info', type: 'alert.silenced', app: silence.matchers.app, node: silence.matchers.node, message: `silence ${silence.id} by ${silence.createdBy} until ${new Date(silence.endsAt).toISOString()}: ${formatMatchers(silence.matchers)}${silence.comment ? ` (${silence.comment})` : ''}` });
    return silence;
  }

  getSilence(id: string): Silence | undefined {
    return this.silences.get(id);
  }

  async unsilence(id: string, by: string): Promise<void> {
    const silence = this.silences.get(id);
    if (!silence) return;
    await this.store.delete(STORE.alertSilences.key(id));
    this.silences.delete(id);
    this.events.note({ level: 'info', type: 'alert.unsilenced', app: silence.matchers.app, message: `silence ${id} removed by ${by}: ${formatMatchers(silence.matchers)}` });
  }
}

export function formatMatchers(matchers: Record<string, string>): string {
  return Object.entries(matchers).map(([k, v]) => `${k}=${v}`).join(',');
}
