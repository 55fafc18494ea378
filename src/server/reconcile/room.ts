// The resource lock of a rollout: the room its new instances need is taken before it starts,
// and the room its old instances free is kept for it, so a release on a busy day cannot strand
// an entry half-upgraded. Held room is kept in the rollout record (ReservedSlot) and counted by
// the snapshot like placements.
import type { AppRecord, Instance, ReservedSlot } from '../../model/types.js';
import type { EntrySpec } from '../../model/spec.js';
import { instancePlacement, type Snapshot } from '../../scheduler/index.js';
import { extraNeeded, planEntry } from './snapshot.js';
import type { PlanBuilder } from './plan.js';
import type { RolloutPass } from './rollouts.js';
import type { ReconcileView } from './view.js';

/**
 * Taken once when an entry's rollout starts: room for the extra instances its strategy runs
 * beside the old ones. If it cannot be had, the rollout fails before it starts anything.
 */
export function reserveRoom(app: AppRecord, entry: string, spec: EntrySpec, snapshot: Snapshot): { reserved: ReservedSlot[] } | { failure: string } {
  const need = extraNeeded(spec);
  if (need === 0) return { reserved: [] };
  const result = planEntry(snapshot, app, entry, need);
  const missing = result.unplaced.reduce((n, u) => n + u.count, 0);
  if (missing > 0) return { failure: `cannot reserve room for ${need} new instance(s) before starting: ${result.unplaced.map((u) => u.reason).join('; ')}` };
  snapshot.commit(result.placements);
  return { reserved: result.placements.map(({ node, cpu, memoryBytes, ports }) => ({ node, cpu, memoryBytes, ports })) };
}

/**
 * The room an old instance frees during a rollout goes to the rollout's next new instance, in
 * the same transaction that forgets the old one, so another deploy cannot take it between two
 * steps.
 */
export function handOverRoom(view: ReconcileView, rollouts: RolloutPass, app: AppRecord, instance: Instance, snapshot: Snapshot, plan: PlanBuilder): void {
  if (instance.release === app.release || !rollouts.active(app) || !rollouts.wantsRoom(app.name, instance.entry)) return;
  const node = view.nodes.get(instance.node);
  if (!node) return;
  snapshot.release(instancePlacement(instance, instance.cpu, node.shareBase ?? 100));
  const result = planEntry(snapshot, app, instance.entry, 1);
  const [placement] = result.placements;
  if (!placement) return; // the new release does not fit where anything was freed: placed when it can be
  snapshot.commit([placement]);
  plan.guard(placement.node);
  rollouts.holdRoom(app.name, instance.entry, { node: placement.node, cpu: placement.cpu, memoryBytes: placement.memoryBytes, ports: placement.ports });
}
