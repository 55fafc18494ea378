// Reconciliation's bridge to the scheduler: the scheduler's snapshot of a view (every node's
// capacity, what each instance and each rollout's held room take of it), plans for more
// instances of an entry, and the instance records for those plans.
import { teamOfSpec } from '../../model/spec.js';
import type { AppRecord, Instance, NodeRecord } from '../../model/types.js';
import { entryRuntime, resolveCount, type EntrySpec } from '../../model/spec.js';
import { buildSnapshot, entryRequest, instancePlacement, plan, type Placement, type PlanResult, type SchedNode, type Snapshot } from '../../scheduler/index.js';
import type { ReconcileContext, ReconcileView } from './view.js';

export const ACTIVE_PHASES = ['progressing', 'paused', 'awaiting-promotion'] as const;

export function isActive(phase: string): boolean {
  return (ACTIVE_PHASES as readonly string[]).includes(phase);
}

/** A node as the scheduler sees it. */
export function schedNodeOf(node: NodeRecord): SchedNode {
  return {
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
  };
}

/**
 * Whether a snapshot can take the node's new record as an update (setNode): its cores and
 * share base are what its instances' CPU plans were made against, and the ports programs
 * outside Gantry hold are counted in when the snapshot is built.
 */
export function updatableInPlace(before: NodeRecord, after: NodeRecord): boolean {
  return before.cores === after.cores && (before.shareBase ?? 100) === (after.shareBase ?? 100) && JSON.stringify(before.portsTaken ?? []) === JSON.stringify(after.portsTaken ?? []);
}

export function snapshotOf(view: ReconcileView): Snapshot {
  return countedSnapshotOf(view).snapshot;
}

/** The snapshot, and what it counts for each instance (to keep it current instance by instance). */
export function countedSnapshotOf(view: ReconcileView): { snapshot: Snapshot; counted: Map<string, Placement> } {
  const nodes = [...view.nodes.values()].map(schedNodeOf);
  const counted = new Map<string, Placement>();
  for (const instance of view.instances.values()) {
    const placement = placementOf(view, instance);
    if (placement) counted.set(instance.id, placement);
  }
  const snapshot = buildSnapshot({ nodes, pools: view.pools.values(), placements: [...counted.values(), ...reservations(view)] });
  // Ports programs outside Gantry hold (the agents found them): nothing new is put there.
  for (const node of view.nodes.values()) if (node.portsTaken?.length) snapshot.blockPorts(node.name, node.portsTaken);
  return { snapshot, counted };
}

/** What an instance takes of its node as the scheduler counts it; undefined when the node is unknown. */
export function placementOf(view: Pick<ReconcileView, 'nodes'>, instance: Instance): Placement | undefined {
  const node = view.nodes.get(instance.node);
  if (!node) return undefined;
  const placement = instancePlacement(instance, instance.cpu, node.shareBase ?? 100);
  // While a dedicated instance runs, its node takes no other app.
  return instance.spec.placement?.dedicated ? { ...placement, dedicated: true } : placement;
}

/** Whether two placements take the same of their node. */
export function samePlacement(a: Placement | undefined, b: Placement | undefined): boolean {
  if (!a || !b) return a === b;
  return a.node === b.node && a.memoryBytes === b.memoryBytes && a.dedicated === b.dedicated && JSON.stringify([a.cpu, a.ports]) === JSON.stringify([b.cpu, b.ports]);
}

/** The capacity held by rollouts under way (see ReservedSlot). */
export function reservations(view: ReconcileView): Placement[] {
  const held: Placement[] = [];
  for (const rollout of view.rollouts.values()) {
    const app = view.apps.get(rollout.app);
    if (!app || rollout.to !== app.release || !isActive(rollout.phase)) continue;
    for (const [entry, moments] of Object.entries(rollout.entries)) {
      for (const slot of moments.reserved ?? []) if (view.nodes.has(slot.node)) held.push({ app: rollout.app, env: app.env, entry, ...slot });
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

/** Instance records for placements of an entry of the app's current release. */
export function newInstances(ctx: ReconcileContext, app: AppRecord, entry: string, placements: readonly Placement[], serving = true): Instance[] {
  const spec = app.spec.entrypoints[entry]!;
  const ship = app.spec.logs ? app.spec.logs.ship : (ctx.defaultLogSinks ?? []);
  return placements.map((placement) => ({
    id: ctx.newId(app.name, entry),
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
    ...(ship.length ? { logShipping: { ship: [...ship], team: teamOfSpec(app.spec) } } : {}),
    desired: 'running' as const,
    createdAt: ctx.now,
  }));
}
