// Strategies order the nodes that pass the filters. Each is two score terms compared in order
// (lower is better), then the seeded rank, then the node index. Terms are small functions of the
// request and a node's usage, so new strategies are compositions of them.
import type { StrategyName } from './types.js';
import type { Ctx } from './filters.js';
import { entryCount } from './filters.js';
import type { NodeEntry, NodeUsage } from './state.js';

export type Term = (c: Ctx, e: NodeEntry, u: NodeUsage) => number;

const frac = (used: number, cap: number) => (cap > 0 ? used / cap : 1);

/** CPU share of the node in use after placing one more. */
export const cpuAfter: Term = (c, e, u) => frac(u.usedShares + c.shares(e.S), e.allocShares);
export const memAfter: Term = (c, e, u) => frac(u.memUsed + c.memoryBytes, e.allocMem);
export const cpuNow: Term = (_c, e, u) => frac(u.usedShares, e.allocShares);
export const memNow: Term = (_c, e, u) => frac(u.memUsed, e.allocMem);

/** The node's most used resource after placing one more (dominant share). */
export const loadAfter: Term = (c, e, u) => Math.max(cpuAfter(c, e, u), memAfter(c, e, u));
export const sumAfter: Term = (c, e, u) => cpuAfter(c, e, u) + memAfter(c, e, u);
export const loadNow: Term = (c, e, u) => Math.max(cpuNow(c, e, u), memNow(c, e, u));
export const sumNow: Term = (c, e, u) => cpuNow(c, e, u) + memNow(c, e, u);
/** Instances of the request's entry on the node (old plus new). */
export const entryInstances: Term = (c, e) => entryCount(c, e.i);

const neg =
  (t: Term): Term =>
  (c, e, u) =>
    -t(c, e, u);

export interface Scorer {
  name: StrategyName;
  terms: [Term, Term];
}

export const scorers: Record<Exclude<StrategyName, 'each'>, Scorer> = {
  /** Fewest instances of the entry first; among equals the least loaded. */
  spread: { name: 'spread', terms: [entryInstances, loadAfter] },
  /** Fullest node first (by its most used resource, then both), so it is filled before the next. */
  binpack: { name: 'binpack', terms: [neg(loadNow), neg(sumNow)] },
  /** Lowest load after placing, so CPU and memory use even out across nodes. */
  balance: { name: 'balance', terms: [loadAfter, sumAfter] },
  /** Most instances of the entry (below the cap) first: top a node up before starting the next. */
  fill: { name: 'fill', terms: [neg(entryInstances), loadAfter] },
};
