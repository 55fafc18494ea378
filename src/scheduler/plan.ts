// plan: where the request's instances go, or why they cannot. Works on a Draft over the snapshot,
// so the snapshot is unchanged until the caller commits (snapshot.commit(result.placements)) or
// uses planAndCommit. Every node of the request's pool is considered for every instance: the
// candidates are scanned once per request, then kept in a heap (see heap.ts).
import type { CapacityResult, Placement, PlacementRequest, PlanOptions, PlanResult, Unplaced } from './types.js';
import { allocateCpu, cpuCount } from './cpu.js';
import { dedicatedToFilter, dynamicFits, entryCount, filtersFor, firstFailing, makeCtx, type Ctx, type Filter } from './filters.js';
import { NodeHeap } from './heap.js';
import { assignPorts, portCount } from './ports.js';
import { Reasons, type Cause } from './reasons.js';
import { rank, salt } from './rng.js';
import { applyAt } from './apply.js';
import { Draft } from './draft.js';
import type { Snapshot } from './snapshot.js';
import { scorers } from './strategies.js';
import type { View } from './state.js';

const heap = new NodeHeap();

/** Plans without changing the snapshot. */
export function plan(snapshot: Snapshot, request: PlacementRequest, options: PlanOptions = {}): PlanResult {
  return run(snapshot, new Draft(snapshot), request, options);
}

/** Plans and records the placements in the snapshot at once (plan, then snapshot.commit). */
export function planAndCommit(snapshot: Snapshot, request: PlacementRequest, options: PlanOptions = {}): PlanResult {
  const result = plan(snapshot, request, options);
  snapshot.commit(result.placements);
  return result;
}

/**
 * Plans several requests as one (e.g. every entry of an app): each sees the ones before it. The
 * snapshot is unchanged; commit the placements of all results together.
 */
export function planAll(snapshot: Snapshot, requests: readonly PlacementRequest[], options: PlanOptions = {}): PlanResult[] {
  const draft = new Draft(snapshot);
  return requests.map((request) => run(snapshot, draft, request, options));
}

function run(snap: Snapshot, view: Draft, req: PlacementRequest, options: PlanOptions): PlanResult {
  const c = makeCtx(view, snap.pools, req);
  const filters = filtersFor(c);
  const s = c.strategy;
  if (s.kind === 'each') return perNode(snap, c, filters, () => s.perNode, s.perNode);
  if (s.kind === 'fill' && req.count === undefined) return perNode(snap, c, filters, (i) => Math.max(0, s.perNode - entryCount(c, i)), s.perNode);
  return byHeap(snap, c, filters, req.count ?? 1, options.seed ?? 0);
}

/** Nodes of the request's pool that pass its static filters (cached in the snapshot). */
function matchingNodes(snap: Snapshot, c: Ctx, filters: Filter[]): Int32Array {
  return snap.matching(c.staticKey, () => {
    const statics = filters.filter((f) => f.static);
    return Int32Array.from(snap.poolNodes(c.pool).filter((i) => !firstFailing(statics, c, snap.entries[i]!, snap.entries[i]!.u)));
  });
}

function place(c: Ctx, view: View, i: number): Placement {
  const e = view.entries[i]!;
  const u = view.usage(i);
  const p: Placement = {
    app: c.app,
    env: c.env,
    entry: c.entry,
    node: e.name,
    cpu: allocateCpu(e, u, c.shares(e.S), c.bound),
    memoryBytes: c.memoryBytes,
    ports: assignPorts(e, u, c.ports),
  };
  if (c.dedicated) p.dedicated = true;
  applyAt(view, i, p, c.key);
  return p;
}

function byHeap(snap: Snapshot, c: Ctx, filters: Filter[], want: number, seed: number): PlanResult {
  const placements: Placement[] = [];
  const unplaced: Unplaced[] = [];
  if (want <= 0) return { placements, unplaced, wanted: 0 };
  const view = c.view;
  const [t1, t2] = scorers[c.strategy.kind as keyof typeof scorers].terms;
  const saltValue = salt(seed, c.key);
  heap.reset(view.entries.length);
  const { k1, k2, k3 } = heap;
  for (const i of matchingNodes(snap, c, filters)) {
    const e = view.entries[i]!;
    const u = view.usage(i);
    if (!dynamicFits(c, e, u)) continue;
    k1[i] = t1(c, e, u);
    k2[i] = t2(c, e, u);
    k3[i] = rank(e.nameHash, saltValue);
    heap.add(i);
  }
  heap.heapify();
  while (placements.length < want && heap.size > 0) {
    const i = heap.top();
    const e = view.entries[i]!;
    if (placements.length > 0 && !dynamicFits(c, e, view.usage(i))) {
      heap.pop();
      continue;
    }
    placements.push(place(c, view, i));
    const u = view.usage(i);
    k1[i] = t1(c, e, u);
    k2[i] = t2(c, e, u);
    heap.siftDown(0);
  }
  const left = want - placements.length;
  if (left > 0) unplaced.push({ count: left, reason: explain(snap, c, filters).summary(snap.size) });
  return { placements, unplaced, wanted: want };
}

/** each / fill without a count: a number of instances per matching node. */
function perNode(snap: Snapshot, c: Ctx, filters: Filter[], wantOn: (i: number) => number, perNodeWant: number): PlanResult {
  const placements: Placement[] = [];
  const unplaced: Unplaced[] = [];
  const view = c.view;
  const match = filters.filter((f) => f.stage === 'match');
  const fit = filters.filter((f) => f.stage === 'fit' && f.name !== 'cap');
  let matched = 0;
  let wanted = 0;
  for (const i of matchingNodes(snap, c, filters)) {
    const e = view.entries[i]!;
    if (!dedicatedToFilter.ok(c, e, view.usage(i))) continue;
    matched++;
    const want = wantOn(i);
    wanted += want;
    for (let k = 0; k < want; k++) {
      const u = view.usage(i);
      const f = firstFailing(fit, c, e, u);
      if (f) {
        unplaced.push({ count: want - k, node: e.name, reason: `${e.name}: ${causeText(f.why(c, e, u))}` });
        break;
      }
      placements.push(place(c, view, i));
    }
  }
  if (matched === 0) {
    wanted = perNodeWant;
    const reasons = explain(snap, c, match);
    unplaced.push({ count: perNodeWant, reason: `no node matches: ${reasons.summary(snap.size)}` });
  }
  return { placements, unplaced, wanted };
}

/** One node's cause: "insufficient memory (need 8Gi, free 2Gi)". */
export function causeText(cause: Cause): string {
  if (cause.need === undefined) return cause.text;
  return `${cause.text} (need ${cause.need}, free ${(cause.format ?? String)(Math.max(0, cause.free ?? 0))})`;
}

/** Counts every live node under the first filter it fails. */
function explain(snap: Snapshot, c: Ctx, filters: Filter[]): Reasons {
  const reasons = new Reasons();
  for (const e of c.view.entries) {
    if (!e.live) continue;
    const u = c.view.usage(e.i);
    const f = firstFailing(filters, c, e, u);
    if (f) reasons.add(f.why(c, e, u));
  }
  return reasons;
}

/**
 * How many more instances shaped like the request fit, and where: each node on its own, by the
 * same filters and allocator as plan (so plan places exactly that many when asked for more).
 * Strategy matters only through fill's per-node cap.
 */
export function capacity(snapshot: Snapshot, request: PlacementRequest): CapacityResult {
  const c = makeCtx(snapshot, snapshot.pools, request);
  const filters = filtersFor(c);
  const gate = filters.filter((f) => f.stage === 'match' || f.name === 'dedication');
  const fit = filters.filter((f) => !gate.includes(f));
  const reasons = new Reasons();
  const nodes: CapacityResult['nodes'] = [];
  let total = 0;
  for (const e of snapshot.entries) {
    if (!e.live) continue;
    const u = e.u;
    const g = firstFailing(gate, c, e, u);
    if (g) {
      reasons.add(g.why(c, e, u));
      continue;
    }
    const n = Math.min(
      cpuCount(e, u, c.shares(e.S), c.bound),
      c.memoryBytes > 0 ? Math.floor((e.allocMem - u.memUsed) / c.memoryBytes) : Infinity,
      portCount(e, u, c.ports),
      c.cap - entryCount(c, e.i),
    );
    if (n > 0) {
      nodes.push({ node: e.name, count: n });
      total += n;
    } else {
      const f = firstFailing(fit, c, e, u);
      reasons.add(f ? f.why(c, e, u) : { text: 'no room' });
    }
  }
  nodes.sort((a, b) => b.count - a.count || (a.node < b.node ? -1 : 1));
  const result: CapacityResult = { total, nodes };
  if (reasons.count > 0) result.blocked = `${reasons.count}/${snapshot.size} nodes take none: ${reasons.causes()}`;
  return result;
}
