// Filters: small pieces that each say whether a node can take one more instance of the request,
// and if not, why. 'match' filters decide which nodes a request is about at all (state, pool,
// labels...); 'fit' filters look at what is left on a node (cpu, memory, ports...).
import type { LabelTerm, PlacementRequest, PoolInfo, RuntimeName, Strategy } from './types.js';
import { cpuFree, sharesFor } from './cpu.js';
import { portNeed, portsWhy, type PortNeed } from './ports.js';
import { formatBytes, formatCpu, type Cause } from './reasons.js';
import { failingTerm, selectorTerms, termCause } from './selectors.js';
import { entryKey, type NodeEntry, type NodeUsage, type View } from './state.js';

/** A request digested once: what every filter and strategy reads. */
export interface Ctx {
  view: View;
  pools: ReadonlyMap<string, PoolInfo>;
  app: string;
  env: string;
  entry: string;
  key: string;
  team: string | undefined;
  pool: string;
  cpu: number;
  bound: boolean;
  memoryBytes: number;
  ports: PortNeed;
  terms: LabelTerm[];
  runtime: RuntimeName | undefined;
  dedicated: boolean;
  strategy: Strategy;
  /** Most instances of the entry a node may hold (fill), else Infinity. */
  cap: number;
  /** What the static filters read of the request: nodes matching it can be cached per snapshot. */
  staticKey: string;
  /** Shares the request needs on a node of shareBase S (cached for the last S). */
  shares(S: number): number;
}

export function makeCtx(view: View, pools: ReadonlyMap<string, PoolInfo>, req: PlacementRequest): Ctx {
  const env = req.env ?? 'default';
  const strategy: Strategy = typeof req.strategy === 'string' ? { kind: req.strategy } : (req.strategy ?? { kind: 'spread' });
  if (!(req.cpu > 0)) throw new Error('request cpu must be greater than 0');
  if (!(req.memoryBytes >= 0)) throw new Error('request memoryBytes must not be negative');
  let lastS = -1;
  let lastD = 0;
  const terms = selectorTerms(req.selector);
  const pool = req.pool ?? 'default';
  return {
    view,
    pools,
    app: req.app,
    env,
    entry: req.entry,
    key: entryKey(req.app, env, req.entry),
    team: req.team,
    pool,
    cpu: req.cpu,
    bound: req.cpuBind === true,
    memoryBytes: req.memoryBytes,
    ports: portNeed(req.ports),
    terms,
    runtime: req.runtime,
    dedicated: req.dedicated === true,
    strategy,
    cap: strategy.kind === 'fill' ? strategy.perNode : Infinity,
    staticKey: JSON.stringify([pool, req.team ?? null, req.runtime ?? null, terms]),
    shares(S: number): number {
      if (S !== lastS) {
        lastS = S;
        lastD = sharesFor(req.cpu, S);
      }
      return lastD;
    },
  };
}

export interface Filter {
  name: string;
  stage: 'match' | 'fit';
  /** Depends only on the node's facts and Ctx.staticKey, so its answer can be cached per snapshot. */
  static?: true;
  ok(c: Ctx, e: NodeEntry, u: NodeUsage): boolean;
  /** Only called when ok is false. */
  why(c: Ctx, e: NodeEntry, u: NodeUsage): Cause;
}

export const stateFilter: Filter = {
  name: 'state',
  stage: 'match',
  static: true,
  ok: (_c, e) => e.spec.state === 'ready',
  why: (_c, e) => ({ text: `node ${e.spec.state}` }),
};

export const runtimeFilter: Filter = {
  name: 'runtime',
  stage: 'match',
  static: true,
  ok: (c, e) => !c.runtime || !e.spec.runtimes || e.spec.runtimes.includes(c.runtime),
  why: (c) => ({ text: `no ${c.runtime} runtime` }),
};

export const poolFilter: Filter = {
  name: 'pool',
  stage: 'match',
  static: true,
  ok: (c, e) => e.pool === c.pool,
  why: (c) => ({ text: `not in pool ${c.pool}` }),
};

export const teamFilter: Filter = {
  name: 'team',
  stage: 'match',
  static: true,
  ok: (c, e) => {
    const owner = c.pools.get(e.pool)?.team;
    return owner === undefined || owner === c.team;
  },
  why: (c, e) => ({ text: `pool ${e.pool} belongs to team ${c.pools.get(e.pool)?.team}${c.team ? ` (not ${c.team})` : ''}` }),
};

export const dedicatedToFilter: Filter = {
  name: 'dedicatedTo',
  stage: 'match',
  ok: (c, e) => e.spec.dedicatedTo === undefined || e.spec.dedicatedTo === c.app,
  why: (_c, e) => ({ text: `dedicated to app ${e.spec.dedicatedTo}` }),
};

export const labelFilter: Filter = {
  name: 'labels',
  stage: 'match',
  static: true,
  ok: (c, e) => failingTerm(c.terms, e.spec.labels) === undefined,
  why: (c, e) => ({ text: termCause(failingTerm(c.terms, e.spec.labels)!) }),
};

const otherApps = (c: Ctx, e: NodeEntry, u: NodeUsage) => u.instances - (c.view.appCounts(c.app)?.get(e.i) ?? 0);

export const dedicationFilter: Filter = {
  name: 'dedication',
  stage: 'fit',
  ok: (c, e, u) => (u.dedicatedApp === null || u.dedicatedApp === c.app) && (!c.dedicated || u.instances === 0 || otherApps(c, e, u) === 0),
  why: (c, _e, u) => ({ text: u.dedicatedApp !== null && u.dedicatedApp !== c.app ? `taken by dedicated app ${u.dedicatedApp}` : 'runs other apps (dedicated request)' }),
};

export const entryCount = (c: Ctx, i: number): number => c.view.entryCounts(c.key)?.get(i) ?? 0;

export const capFilter: Filter = {
  name: 'cap',
  stage: 'fit',
  ok: (c, e) => entryCount(c, e.i) < c.cap,
  why: (c) => ({ text: `already ${c.cap} of ${c.entry} (fill)` }),
};

export const cpuFilter: Filter = {
  name: 'cpu',
  stage: 'fit',
  ok: (c, e, u) => cpuFree(e, u, c.bound) >= c.shares(e.S),
  why: (c, e, u) => ({
    text: c.bound ? 'insufficient cpu to bind' : 'insufficient cpu',
    need: formatCpu(c.shares(e.S) / e.S),
    free: cpuFree(e, u, c.bound) / e.S,
    format: formatCpu,
  }),
};

export const memoryFilter: Filter = {
  name: 'memory',
  stage: 'fit',
  ok: (c, e, u) => e.allocMem - u.memUsed >= c.memoryBytes,
  why: (c, e, u) => ({ text: 'insufficient memory', need: formatBytes(c.memoryBytes), free: e.allocMem - u.memUsed, format: formatBytes }),
};

export const portFilter: Filter = {
  name: 'ports',
  stage: 'fit',
  ok: (c, e, u) => portsWhy(e, u, c.ports) === null,
  why: (c, e, u) => ({ text: portsWhy(e, u, c.ports)! }),
};

/** The filters that matter for this request, in the order reasons are attributed. */
export function filtersFor(c: Ctx): Filter[] {
  const list: Filter[] = [stateFilter];
  if (c.runtime) list.push(runtimeFilter);
  list.push(poolFilter, teamFilter, dedicatedToFilter);
  if (c.terms.length > 0) list.push(labelFilter);
  list.push(dedicationFilter);
  if (c.cap !== Infinity) list.push(capFilter);
  list.push(cpuFilter, memoryFilter);
  if (c.ports.specs.length > 0) list.push(portFilter);
  return list;
}

/** The first filter the node fails (undefined when it can take one more). */
export function firstFailing(filters: readonly Filter[], c: Ctx, e: NodeEntry, u: NodeUsage): Filter | undefined {
  for (const f of filters) if (!f.ok(c, e, u)) return f;
  return undefined;
}

/**
 * The non-static filters of filtersFor, unrolled: the same predicates, each called from its own
 * site, because this runs for every candidate node of every request.
 */
export function dynamicFits(c: Ctx, e: NodeEntry, u: NodeUsage): boolean {
  return (
    dedicatedToFilter.ok(c, e, u) &&
    dedicationFilter.ok(c, e, u) &&
    (c.cap === Infinity || capFilter.ok(c, e, u)) &&
    cpuFilter.ok(c, e, u) &&
    memoryFilter.ok(c, e, u) &&
    (c.ports.specs.length === 0 || portFilter.ok(c, e, u))
  );
}
