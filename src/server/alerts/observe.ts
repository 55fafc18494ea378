// What holds now, per rule and subject: the conditions the evaluator (evaluate.ts) turns into
// alert states. Pure: it reads a snapshot (apps with their rules, instances with statuses and
// usage, nodes with inspections) and counter histories, never the store or the clock.
import type { AppAlertRule, ClusterAlertRule } from '../../model/spec-alerts.js';
import { ruleKind, ruleName } from '../../model/spec-alerts.js';
import { formatDuration } from '../../model/units.js';
import type { Condition } from './evaluate.js';
import type { CounterHistory } from './history.js';

export interface ObservedInstance {
  id: string;
  entry: string;
  node: string;
  healthy: boolean;
  /** When the instance was created: its counters started at 0 then. */
  createdAt: number;
  memoryBytes?: number;
  memoryLimitBytes?: number | null;
}

export interface ObservedApp {
  app: string;
  env: string;
  team: string;
  rules: readonly AppAlertRule[];
  /** Entries and how many instances each should run. */
  entries: Record<string, number>;
  instances: readonly ObservedInstance[];
}

export interface ObservedNode {
  name: string;
  down: boolean;
  agentVersion: string;
  /** Per check name, its status and since when. */
  checks: Record<string, { status: string; value: string }>;
}

export interface Observations {
  apps: readonly ObservedApp[];
  nodes: readonly ObservedNode[];
  clusterRules: readonly ClusterAlertRule[];
  serverVersion: string;
  restarts: CounterHistory;
  oomKills: CounterHistory;
  /** Receivers an app rule notifies when it names none. */
  defaultNotify: readonly string[];
  /** Since when the counter histories have been kept (the server's start): a window reaching further back is not fully known. */
  historySince: number;
  now: number;
}

export function observe(o: Observations): Condition[] {
  const conditions: Condition[] = [];
  for (const app of o.apps) {
    for (const rule of app.rules) {
      const entries = rule.entry !== undefined ? [rule.entry] : Object.keys(app.entries);
      for (const entry of entries) {
        const instances = app.instances.filter((i) => i.entry === entry);
        const found = appCondition(rule, instances, app.entries[entry] ?? 0, o);
        if (!found) continue;
        const name = ruleName(rule);
        const labels = { app: app.app, env: app.env, entry, team: app.team };
        conditions.push({
          key: `${name}/app=${app.app},entry=${entry}`,
          rule: name,
          severity: rule.severity,
          labels,
          forMs: found.forMs,
          notify: rule.notify.length > 0 ? rule.notify : o.defaultNotify,
          active: found.active,
          ...(found.unknown ? { unknown: true } : {}),
          value: found.value,
          summary: `${app.app}/${entry}: ${found.says}`,
        });
      }
    }
  }
  for (const rule of o.clusterRules) {
    for (const node of o.nodes) {
      const found = nodeCondition(rule, node, o.serverVersion);
      if (!found) continue;
      const name = ruleName(rule);
      conditions.push({
        key: `${name}/node=${node.name}`,
        rule: name,
        severity: rule.severity,
        labels: { node: node.name },
        forMs: found.forMs,
        notify: rule.notify,
        active: found.active,
        value: found.value,
        summary: `node ${node.name}: ${found.says}`,
      });
    }
  }
  return conditions;
}

interface Found {
  active: boolean;
  /** Not known yet: a count below the threshold over a window older than the history. */
  unknown?: boolean;
  forMs: number;
  value: string;
  says: string;
}

function appCondition(rule: AppAlertRule, instances: readonly ObservedInstance[], desired: number, o: Observations): Found | undefined {
  if (rule.restarts) {
    const { over, within } = rule.restarts;
    const count = sum(instances.map((i) => o.restarts.increase(i.id, within, o.now, i.createdAt)));
    const value = `${count} restarts in ${formatDuration(within)}`;
    return { active: count > over, unknown: count <= over && partly(o, within, instances), forMs: 0, value, says: `${value} (fires above ${over})` };
  }
  if (rule.oomKilled) {
    const { within } = rule.oomKilled;
    const count = sum(instances.map((i) => o.oomKills.increase(i.id, within, o.now, i.createdAt)));
    const value = `${count} OOM kills in ${formatDuration(within)}`;
    return { active: count > 0, unknown: count === 0 && partly(o, within, instances), forMs: 0, value, says: value };
  }
  if (rule.healthy) {
    if (desired === 0) return { active: false, forMs: rule.healthy.for, value: 'no instances wanted', says: 'no instances wanted' };
    const healthy = instances.filter((i) => i.healthy).length;
    const share = (healthy / desired) * 100;
    const value = `${healthy}/${desired} healthy (${round(share)}%)`;
    return { active: share < rule.healthy.below, forMs: rule.healthy.for, value, says: `${value}, below ${rule.healthy.below}%` };
  }
  if (rule.memory) {
    let worst = 0;
    for (const i of instances) if (i.memoryBytes !== undefined && i.memoryLimitBytes) worst = Math.max(worst, (i.memoryBytes / i.memoryLimitBytes) * 100);
    const value = `${round(worst)}% of the memory limit`;
    return { active: worst > rule.memory.above, forMs: rule.memory.for, value, says: `an instance uses ${value} (above ${rule.memory.above}%)` };
  }
  return undefined;
}

function nodeCondition(rule: ClusterAlertRule, node: ObservedNode, serverVersion: string): Found | undefined {
  if (rule.nodeDown) return { active: node.down, forMs: rule.nodeDown.for, value: node.down ? 'down' : 'up', says: node.down ? 'down' : 'up' };
  if (rule.agentVersion) {
    const differs = !node.down && node.agentVersion !== serverVersion;
    return { active: differs, forMs: rule.agentVersion.for, value: node.agentVersion, says: `agent ${node.agentVersion}, server ${serverVersion}` };
  }
  if (rule.check) {
    const check = node.checks[rule.check.name];
    if (!check) return undefined;
    const bad = check.status === 'fail' || (rule.check.status === 'warn' && check.status === 'warn');
    return { active: bad, forMs: rule.check.for, value: check.value, says: `check ${rule.check.name} ${check.status}: ${check.value}` };
  }
  return undefined;
}

/**
 * Whether some instance's counts over the window are not known: the window reaches back before
 * the history began (a server that just started) and the instance is older than the history.
 */
const partly = (o: Observations, windowMs: number, instances: readonly ObservedInstance[]) => o.now - windowMs < o.historySince && instances.some((i) => i.createdAt < o.historySince);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const round = (n: number) => Math.round(n * 10) / 10;
export { ruleKind };
