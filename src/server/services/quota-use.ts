// What a team's apps ask for in steady state, and whether a change to one app fits the team's
// quota: pure functions over app records, so the check and `gantry quota` count alike and the
// unit tests need no server.
//
// Counted: every entry of every app of the team that is not stopped, replicas × its cpu and
// memory requests, and its replicas as instances. Not counted: a rollout's surge and instances
// being drained or replaced, which are transient (they end when the rollout or the drain does)
// and would make a quota refuse the very deploy that moves a team onto a smaller spec.
import { teamOfSpec } from '../../model/spec.js';
import type { AppRecord, QuotaLimits, QuotaRecord } from '../../model/types.js';
import { formatSize } from '../../model/units.js';

export const RESOURCES = ['cpu', 'memory', 'instances'] as const;
export type Resource = (typeof RESOURCES)[number];

/** Use of one scope. CPU in thousandths of a CPU, the scheduler's finest share, so sums stay exact. */
export interface Use {
  milliCpu: number;
  memory: number;
  instances: number;
}

/** A team's use per env and over all its envs. */
export interface TeamUse {
  envs: Map<string, Use>;
  total: Use;
}

/** The team an app counts against: its spec's `team`, `default` for an app that names none. */
export function teamOf(app: Pick<AppRecord, 'spec'>): string {
  return teamOfSpec(app.spec);
}

const none = (): Use => ({ milliCpu: 0, memory: 0, instances: 0 });

/** What one app asks for (nothing while stopped). */
export function appUse(app: AppRecord): Use {
  const use = none();
  if (app.stopped) return use;
  for (const entry of Object.values(app.spec.entrypoints)) {
    use.milliCpu += entry.replicas * Math.round(entry.resources.cpu * 1000);
    use.memory += entry.replicas * entry.resources.memory;
    use.instances += entry.replicas;
  }
  return use;
}

function add(into: Use, use: Use, sign = 1): void {
  into.milliCpu += sign * use.milliCpu;
  into.memory += sign * use.memory;
  into.instances += sign * use.instances;
}

/** The use of `team`'s apps among `apps`. */
export function teamUse(apps: Iterable<AppRecord>, team: string): TeamUse {
  const result: TeamUse = { envs: new Map(), total: none() };
  for (const app of apps) {
    if (teamOf(app) !== team) continue;
    const use = appUse(app);
    let env = result.envs.get(app.env);
    if (!env) result.envs.set(app.env, (env = none()));
    add(env, use);
    add(result.total, use);
  }
  return result;
}

/** A resource's amount as a limit states it: CPUs, bytes, instances. */
export function amountOf(use: Use, resource: Resource): number {
  return resource === 'cpu' ? use.milliCpu / 1000 : use[resource];
}

function limitInMeasure(limits: QuotaLimits, resource: Resource): number | undefined {
  const limit = limits[resource];
  if (limit === undefined) return undefined;
  return resource === 'cpu' ? Math.round(limit * 1000) : limit;
}

function measureOf(use: Use, resource: Resource): number {
  return resource === 'cpu' ? use.milliCpu : use[resource];
}

export function formatAmount(resource: Resource, amount: number): string {
  if (resource === 'memory') return formatSize(amount);
  return resource === 'cpu' ? String(Math.round(amount * 1000) / 1000) : String(amount);
}

/** One limit a change would break. */
export interface Excess {
  team: string;
  /** The env, or undefined for the team-wide total. */
  env?: string;
  resource: Resource;
  used: number;
  limit: number;
  needs: number;
}

export function describeExcess(e: Excess): string {
  const scope = e.env === undefined ? `team ${e.team} (all envs)` : `team ${e.team}, env ${e.env}`;
  const amount = (n: number) => formatAmount(e.resource, n);
  return `${scope}: ${e.resource} ${amount(e.used)} of ${amount(e.limit)} used, this change needs ${amount(e.needs)} more`;
}

/**
 * The limits of `quota` that replacing `before` by `after` (either absent: a new or removed app)
 * would break, `others` being the rest of the cluster's apps. A change that does not raise a
 * scope's use never breaks its limit, even when that scope is over it already (the quota was
 * lowered): scaling down and deploying smaller always pass.
 */
export function excessOf(quota: QuotaRecord, others: Iterable<AppRecord>, before: AppRecord | undefined, after: AppRecord | undefined): Excess[] {
  if (!after || teamOf(after) !== quota.team) return [];
  const base = teamUse(others, quota.team);
  const scopes: Array<{ env?: string; limits: QuotaLimits | undefined; used: Use }> = [
    { env: after.env, limits: Object.hasOwn(quota.envs, after.env) ? quota.envs[after.env] : undefined, used: base.envs.get(after.env) ?? none() },
    { limits: quota.total, used: base.total },
  ];
  const beforeUse = before ? appUse(before) : none();
  const afterUse = appUse(after);
  const found: Excess[] = [];
  for (const { env, limits, used } of scopes) {
    if (!limits) continue;
    const was = none();
    add(was, used);
    if (before && teamOf(before) === quota.team && (env === undefined || before.env === env)) add(was, beforeUse);
    const will = none();
    add(will, used);
    add(will, afterUse);
    for (const resource of RESOURCES) {
      const limit = limitInMeasure(limits, resource);
      const [from, to] = [measureOf(was, resource), measureOf(will, resource)];
      if (limit === undefined || to <= from || to <= limit) continue;
      const unit = resource === 'cpu' ? 1000 : 1;
      found.push({ team: quota.team, ...(env !== undefined ? { env } : {}), resource, used: from / unit, limit: limit / unit, needs: (to - from) / unit });
    }
  }
  return found;
}
