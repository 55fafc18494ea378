// The controllers' bridge to the scheduler: a snapshot built from the cluster cache, new
// instances from a plan, and the compare-and-swap guards that keep two servers (or two passes)
// from handing out the same core share, memory or port.
import { randomBytes } from 'node:crypto';
import type { Compare, TxnOp } from '../../store/store.js';
import type { AppRecord, Instance } from '../../model/types.js';
import { entryRuntime, resolveCount, type EntrySpec } from '../../model/spec.js';
import { ACTIVE_PHASES } from './rollouts.js';
import { buildSnapshot, entryRequest, instancePlacement, plan, type Placement, type PlanResult, type SchedNode, type Snapshot } from '../../scheduler/index.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';

export function clusterSnapshot(state: ClusterState): Snapshot {
  const nodes: SchedNode[] = [...state.nodes.values()].map((node) => ({
    name: node.name,
    // A node recovering from a reboot restarts its previous instances before it takes new ones.
    state: node.recovering && node.state === 'ready' ? 'cordoned' : node.state,
    labels: node.labels,
    pool: node.pool ?? 'default',
    cores: node.cores,
    memoryBytes: node.memoryBytes,
    reserved: node.reserved ?? { cores: 0, memoryBytes: 0 },
    portRange: node.portRange,
    shareBase: node.shareBase ?? 100,
    dedicatedTo: node.dedicatedTo,
    runtimes: node.runtimes,
  }));
  const placements = [...state.instances.values()]
    .filter((i) => state.nodes.has(i.node))
    .map((i) => instancePlacement(i, i.cpu, state.nodes.get(i.node)!.shareBase ?? 100));
  const snapshot = buildSnapshot({ nodes, pools: state.pools.values(), placements: [...placements, ...reservations(state)] });
  // Ports programs outside Gantry hold (the agents found them): nothing new is put there.
  for (const node of state.nodes.values()) if (node.portsTaken?.length) snapshot.blockPorts(node.name, node.portsTaken);
  return snapshot;
}

/** The write that gives an instance new host ports, guarded like a placement. */
export function movedPorts(state: ClusterState, instance: Instance): NewInstances {
  const out: NewInstances = { instances: [instance], compares: [], ops: [{ type: 'put', key: STORE.instances.key(instance.app, instance.id), value: JSON.stringify(instance) }] };
  guardNodes(state, [instance.node], out);
  return out;
}

/** The capacity held by rollouts under way (see ReservedSlot). */
export function reservations(state: ClusterState, only?: { app: string; entry: string }): Placement[] {
  const held: Placement[] = [];
  for (const rollout of state.rollouts.values()) {
    const app = state.apps.get(rollout.app);
    if (!app || rollout.to !== app.release || !ACTIVE_PHASES.includes(rollout.phase)) continue;
    for (const [entry, moments] of Object.entries(rollout.entries)) {
      if (only && (only.app !== rollout.app || only.entry !== entry)) continue;
      for (const slot of moments.reserved ?? []) if (state.nodes.has(slot.node)) held.push({ app: rollout.app, env: app.env, entry, ...slot });
    }
  }
  return held;
}

/** The extra instances a strategy starts beside the old ones, which the rollout must be sure of. */
export function extraNeeded(spec: EntrySpec): number {
  const { update, replicas } = spec;
  if (update.strategy === 'blue-green') return replicas;
  if (update.strategy === 'canary') return Math.max(1, Math.min(replicas, resolveCount(update.canary, replicas, 'up')));
  if (update.strategy === 'rolling') return Math.min(replicas, resolveCount(update.maxSurge, replicas, 'up'));
  return 0; // in-place reuses each instance's own place
}

/** Plans `count` more instances of an entry (for `each`: whatever each matching node lacks). */
export function planEntry(snapshot: Snapshot, app: AppRecord, entry: string, count: number): PlanResult {
  const spec = app.spec.entrypoints[entry]!;
  const { strategy, perNode } = spec.placement;
  if (strategy !== 'each') return plan(snapshot, entryRequest(app.spec, entry, { count }));
  // `each` is a daemon set: top every matching node up to perNode, whatever the replica count.
  const request = entryRequest(app.spec, entry, { strategy: { kind: 'fill', perNode: perNode ?? 1 } });
  delete request.count;
  return plan(snapshot, request);
}

export interface NewInstances {
  instances: Instance[];
  ops: TxnOp[];
  compares: Compare[];
}

/** Instance records for a plan's placements, with the guard on each node they land on. */
export function instancesFor(state: ClusterState, app: AppRecord, entry: string, result: PlanResult, serving = true): NewInstances {
  const spec = app.spec.entrypoints[entry]!;
  const out: NewInstances = { instances: [], ops: [], compares: [] };
  for (const placement of result.placements) {
    const instance: Instance = {
      id: `${app.name}-${entry}-${randomBytes(4).toString('hex')}`,
      app: app.name,
      env: app.env,
      entry,
      release: app.release,
      node: placement.node,
      runtime: entryRuntime(spec),
      spec,
      ports: placement.ports,
      cpu: placement.cpu,
      ...(serving ? {} : { serving: false }),
      desired: 'running',
      createdAt: Date.now(),
    };
    out.instances.push(instance);
    out.ops.push({ type: 'put', key: STORE.instances.key(app.name, instance.id), value: JSON.stringify(instance) });
  }
  guardNodes(state, result.placements.map((p) => p.node), out);
  return out;
}

/** Adds the guard of each of these nodes (once per node) to a write. */
export function guardNodes(state: ClusterState, nodes: Iterable<string>, write: { compares: Compare[]; ops: TxnOp[] }): void {
  for (const node of new Set(nodes)) {
    const guard = nodeGuard(state, node);
    write.compares.push(...guard.compares);
    write.ops.push(...guard.ops);
  }
}

/** The node's allocation must be what this cache saw; the write bumps it for everyone else. */
function nodeGuard(state: ClusterState, node: string): { compares: Compare[]; ops: TxnOp[] } {
  const key = STORE.alloc.key(node);
  return {
    compares: [{ key, target: 'modRevision', op: '==', value: state.allocRevisions.get(node) ?? 0 }],
    ops: [{ type: 'put', key, value: JSON.stringify({ at: Date.now() }) }],
  };
}
