// Reconciliation as a pure function: given a read-only view of the cluster, the scheduler's
// snapshot of it, the time and an id source, decide everything one pass does — as a Plan
// (plan.ts) that the applier writes in one guarded transaction. In order:
//   1. every entry of every app (entry.ts): lost instances, stop/start, placement, scaling,
//      replacement of older releases, rollout steps (rollouts.ts), moved ports (ports.ts);
//   2. instances whose entry is gone are removed (dependents first), and instances whose
//      removal is done are forgotten — the room an old one frees handed to the rollout that
//      wants it (room.ts), and an unconfirmed one left as an instruction to its node;
//   3. each rollout under way gets its new record, or is rolled back.
// A pass may be limited to some apps (`scope`): the server passes the apps something happened
// to since its last pass, so a pass with little to do costs little, whatever the fleet's size.
import type { Instance } from '../../model/types.js';
import type { Snapshot } from '../../scheduler/index.js';
import { reconcileEntry, hasLiveDependents, type EntryPass } from './entry.js';
import { PlanBuilder, type Plan } from './plan.js';
import { handOverRoom } from './room.js';
import { RolloutPass } from './rollouts.js';
import type { ReconcileContext, ReconcileView } from './view.js';

export function reconcile(view: ReconcileView, snapshot: Snapshot, ctx: ReconcileContext, scope?: ReadonlySet<string>): Plan {
  const plan = new PlanBuilder(view);
  const rollouts = new RolloutPass(view, ctx, plan);
  const pass: EntryPass = { view, ctx, plan, snapshot, rollouts };
  // Apps named in the scope may be gone: their instances are then removed below.
  const apps = scope ? [...scope].flatMap((name) => view.apps.get(name) ?? []) : [...view.apps.values()];
  const instances = scope ? [...scope].flatMap((name) => view.instancesOf(name)) : view.instances.values();

  for (const app of apps) {
    for (const [entry, spec] of Object.entries(app.spec.entrypoints)) reconcileEntry(pass, app, entry, spec);
  }

  for (const instance of instances) {
    const app = view.apps.get(instance.app);
    const entryGone = !app || !Object.hasOwn(app.spec.entrypoints, instance.entry);
    // Dependents go first: an instance waits while an instance depending on its entry remains.
    if (entryGone && plan.current(instance).desired !== 'removed' && !hasLiveDependents(view, instance.app, instance.entry)) plan.update(instance, { desired: 'removed' });
    if (plan.current(instance).desired !== 'removed' || !removalDone(view, instance)) continue;
    if (app && !entryGone) handOverRoom(view, rollouts, app, instance, snapshot, plan);
    const confirmed = view.statuses.get(instance.id)?.state === 'removed';
    plan.delete(instance, !confirmed);
    const about = { app: instance.app, entry: instance.entry, instance: instance.id, node: instance.node };
    if (confirmed) plan.note({ level: 'info', type: 'instance.removed', ...about, message: `removed from ${instance.node}` });
    // Its node did not confirm (it is down): it is told to remove it when it returns.
    else plan.note({ level: 'warning', type: 'instance.replaced', ...about, message: `lost with node ${instance.node} and replaced elsewhere; ${instance.node} removes it when it is back` });
  }

  rollouts.finish(apps);
  return plan.build();
}

/** The agent said it is gone, or nobody is left to say so. */
function removalDone(view: ReconcileView, instance: Instance): boolean {
  const status = view.statuses.get(instance.id);
  const node = view.nodes.get(instance.node);
  return status?.state === 'removed' || status?.state === 'lost' || !node || node.state === 'down';
}
