// Team quotas: an admin sets a team's limits per env and in total; every change to an app that
// could raise its team's use is checked against them before it is stored (quota-use.ts counts).
//
// Two changes must not both pass a check only one of them could. The check runs inside the
// app's compare-and-swap write, on the cluster cache, and the write carries two conditions: the
// team's quota record is the one checked against, and the team's guard key (/quota-guards/) was
// not bumped since the check read the cache; each admitted write bumps the guard. So of two
// servers admitting changes to one team at once, the second write fails its compare and is
// refused with a 409 (try again) instead of landing unchecked. Within one server, a per-team
// lock runs the admissions one after the other, each after the cache has seen the last one, so
// a single server never refuses for that race at all.
import type { Compare, Store, TxnOp } from '../../store/store.js';
import type { AppRecord, QuotaLimits, QuotaRecord, QuotaView, QuotaUse } from '../../model/types.js';
import type { ClusterState } from '../state.js';
import type { EventLog } from './events.js';
import { STORE } from '../keys.js';
import { casUpdate, type CasOptions } from '../cas.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { RESOURCES, describeExcess, excessOf, formatAmount, teamOf, teamUse, type Excess, type TeamUse } from './quota-use.js';

/** Refused: the change would take the team past a limit. The message holds the numbers. */
export class QuotaExceededError extends ConflictError {
  constructor(readonly app: string, readonly excess: Excess[]) {
    super(`app ${app} refused: ${excess.map(describeExcess).join('; ')}`);
  }
}

/** What a caller's compare-and-swap write of an app record takes along to be checked against the quota. */
export interface QuotaGate {
  /** Returns `next` if it fits the quota; throws QuotaExceededError if not. Runs inside the CAS change. */
  checked(previous: AppRecord | undefined, next: AppRecord): AppRecord;
  /** The write's options with the quota's conditions and guard write added. */
  guard<T>(options: CasOptions<T>): CasOptions<T>;
}

/** Where a quota is set: one env, or the team's total over all its envs. */
export type QuotaScope = { env: string } | { total: true };

/** Most envs one quota names: the record is read on every change of the team's apps. */
const MAX_ENVS = 256;

export class QuotaService {
  private readonly locks = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
  ) {}

  async view(team: string): Promise<QuotaView> {
    if (!this.state.teams.has(team)) throw new NotFoundError(`no team named "${team}"`);
    const kv = await this.store.get(STORE.quotas.key(team));
    return this.viewOf(team, kv ? STORE.quotas.decode(kv.value) : undefined);
  }

  /** Every team's quota and use: teams with a quota and teams with apps. */
  async list(): Promise<QuotaView[]> {
    const { kvs } = await this.store.range(STORE.quotas.prefix);
    const quotas = new Map(kvs.map((kv) => STORE.quotas.decode(kv.value)).map((q) => [q.team, q]));
    const teams = new Set([...quotas.keys(), ...[...this.state.apps.values()].map(teamOf)]);
    return [...teams].sort().map((team) => this.viewOf(team, quotas.get(team)));
  }

  /** Sets the limits of one scope (replacing what it had); the other scopes stay. */
  async set(team: string, scope: QuotaScope, limits: QuotaLimits, by: string): Promise<QuotaView> {
    if (!this.state.teams.has(team)) throw new NotFoundError(`no team named "${team}"`);
    const written = await casUpdate(this.store, STORE.quotas.key(team), STORE.quotas, (current) => {
      const record: QuotaRecord = current ? structuredClone(current) : { team, envs: {}, updatedAt: 0, updatedBy: by };
      if ('env' in scope && !Object.hasOwn(record.envs, scope.env) && Object.keys(record.envs).length >= MAX_ENVS) throw new ConflictError(`the quota of team ${team} has limits for ${MAX_ENVS} envs already`);
      if ('env' in scope) record.envs[scope.env] = limits;
      else record.total = limits;
      return { ...record, updatedAt: Date.now(), updatedBy: by };
    }, { what: `the quota of team ${team}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'quota.set', message: `quota of team ${team}, ${scopeWords(scope)}: ${limitWords(limits)} (by ${by})`, data: { team, ...scope, ...limits } });
    return this.viewOf(team, written.value);
  }

  /** Clears one scope's limits, or (no scope) the team's whole quota. */
  async remove(team: string, scope: QuotaScope | undefined, by: string): Promise<QuotaView> {
    const written = await casUpdate(this.store, STORE.quotas.key(team), STORE.quotas, (current) => {
      if (!current) throw new NotFoundError(`team ${team} has no quota`);
      if (!scope) return null;
      if ('env' in scope ? !Object.hasOwn(current.envs, scope.env) : !current.total) throw new NotFoundError(`team ${team} has no quota for ${scopeWords(scope)}`);
      const record = structuredClone(current);
      if ('env' in scope) delete record.envs[scope.env];
      else delete record.total;
      return Object.keys(record.envs).length === 0 && !record.total ? null : { ...record, updatedAt: Date.now(), updatedBy: by };
    }, { what: `the quota of team ${team}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'quota.set', message: `quota of team ${team}${scope ? `, ${scopeWords(scope)},` : ''} removed (by ${by})`, data: { team, removed: true, ...scope } });
    return this.viewOf(team, written.value);
  }

  /**
   * Runs `write` (one compare-and-swap write of an app of `team`) with a gate that checks the
   * record it writes against the team's quota, one admission per team at a time.
   */
  async admit<T>(team: string, write: (gate: QuotaGate) => Promise<T>): Promise<T> {
    return this.locked(team, async () => {
      const [quotaKv, guardKv] = await Promise.all([this.store.get(STORE.quotas.key(team)), this.store.get(STORE.quotaGuards.key(team))]);
      const quota = quotaKv ? STORE.quotas.decode(quotaKv.value) : undefined;
      const guardRevision = guardKv?.modRevision ?? 0;
      // Every change the quota admitted, and every one before it was set, is in the cache from here on.
      await this.state.waitFor(Math.max(guardRevision, quotaKv?.modRevision ?? 0));
      const conditions: Compare[] = [{ key: STORE.quotas.key(team), target: 'modRevision', op: '==', value: quotaKv?.modRevision ?? 0 }];
      if (quota) conditions.push({ key: STORE.quotaGuards.key(team), target: 'modRevision', op: '==', value: guardRevision });
      const bump: TxnOp[] = quota ? [{ type: 'put', key: STORE.quotaGuards.key(team), value: STORE.quotaGuards.encode({ at: Date.now() }) }] : [];
      const gate: QuotaGate = {
        checked: (previous, next) => {
          // The cache was behind the store about this app's team: the guard held was another team's.
          if (teamOf(next) !== team) throw new ConflictError(`app ${next.name} moved to team ${teamOf(next)} while it was being changed; try again`);
          if (!quota) return next;
          const excess = excessOf(quota, this.othersThan(next.name), previous, next);
          if (excess.length > 0) throw new QuotaExceededError(next.name, excess);
          return next;
        },
        guard: (options) => ({
          ...options,
          compare: () => [...(options.compare?.() ?? []), ...conditions],
          also: (next, current) => [...(options.also?.(next, current) ?? []), ...bump],
        }),
      };
      try {
        return await write(gate);
      } catch (err) {
        if (err instanceof QuotaExceededError) this.noteRefusal(err);
        throw err;
      }
    });
  }

  private noteRefusal(err: QuotaExceededError): void {
    for (const e of err.excess) {
      this.events.note({ level: 'warning', type: 'quota.exceeded', app: err.app, message: `refused: ${describeExcess(e)}`, data: { team: e.team, env: e.env ?? null, resource: e.resource, used: e.used, limit: e.limit, needs: e.needs } });
    }
  }

  private *othersThan(app: string): Iterable<AppRecord> {
    for (const record of this.state.apps.values()) if (record.name !== app) yield record;
  }

  private viewOf(team: string, quota: QuotaRecord | undefined): QuotaView {
    const use = teamUse(this.state.apps.values(), team);
    return { team, ...(quota ? { quota } : {}), use: { envs: Object.fromEntries([...use.envs].map(([env, u]) => [env, useView(u)])), total: useView(use.total) } };
  }

  /** Runs `fn` after every earlier call for `key` has finished. */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.locks.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

function useView(use: TeamUse['total']): QuotaUse {
  return { cpu: use.milliCpu / 1000, memory: use.memory, instances: use.instances };
}

function scopeWords(scope: QuotaScope): string {
  return 'env' in scope ? `env ${scope.env}` : 'all envs';
}

function limitWords(limits: QuotaLimits): string {
  return RESOURCES.filter((r) => limits[r] !== undefined).map((r) => `${r} ${formatAmount(r, limits[r]!)}`).join(', ') || 'unlimited';
}
