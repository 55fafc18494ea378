// One entrypoint of one app, in one pass: instances on a lost node are given up, a stopped app's
// instances stop (dependents first), instances a person stopped one by one stay stopped, missing instances are placed (after the entry's
// dependencies are healthy), extras are removed keeping the placement strategy's balance, an
// older release is replaced once enough of the new one is healthy — or, under a rollout, as its
// strategy says (rollouts.ts).
import type { AppRecord, Instance, InstanceStatus, ReservedSlot } from '../../model/types.js';
import type { EntrySpec } from '../../model/spec.js';
import { sameEntrySpec } from '../../model/spec.js';
import type { Snapshot } from '../../scheduler/index.js';
import { newInstances, planEntry } from './snapshot.js';
import { moveIfTaken } from './ports.js';
import { reserveRoom } from './room.js';
import type { RolloutPass } from './rollouts.js';
import type { PlanBuilder } from './plan.js';
import type { ReconcileContext, ReconcileView } from './view.js';

export interface EntryPass {
  view: ReconcileView;
  ctx: ReconcileContext;
  plan: PlanBuilder;
  snapshot: Snapshot;
  rollouts: RolloutPass;
}

export function reconcileEntry(pass: EntryPass, app: AppRecord, entry: string, spec: EntrySpec): void {
  const { view, plan, snapshot, rollouts } = pass;
  const live = view.instancesOf(app.name, entry).filter((i) => plan.current(i).desired !== 'removed');
  for (const instance of live) {
    const node = view.nodes.get(instance.node);
    if (!node || node.state === 'down') {
      plan.update(instance, { desired: 'removed' });
      plan.statuses.push(lostStatus(instance, view.statuses.get(instance.id), pass.ctx.now));
      plan.note({ level: 'warning', type: 'instance.lost', app: app.name, entry, instance: instance.id, node: instance.node, message: `node ${instance.node} is down; replacing the instance (it may still run there, cut off)` });
    }
  }
  const alive = live.filter((i) => view.nodes.get(i.node)?.state !== 'down' && view.nodes.has(i.node));
  if (app.stopped) {
    // Stop order is the reverse of start order: dependents first.
    if (hasLiveDependents(view, app.name, entry)) return;
    // The whole app stops: instances stopped one by one join it, and start with it.
    for (const instance of alive) {
      const { desired, stoppedByUser } = plan.current(instance);
      if (desired === 'running' || stoppedByUser) plan.update(instance, { desired: 'stopped', stoppedByUser: false });
    }
    return;
  }
  const waitingFor = unreadyDependency(view, app, spec);
  // An instance a person stopped on its own keeps its place, stopped, until they start it.
  for (const instance of alive) {
    const { desired, stoppedByUser } = plan.current(instance);
    if (desired === 'stopped' && !stoppedByUser) plan.update(instance, { desired: 'running' });
  }

  // An instance of an older release whose entry did not change just joins the new release.
  const current = alive.map((instance) => {
    const joined = instance.release !== app.release && sameEntrySpec(instance.spec, spec) ? plan.update(instance, { release: app.release, spec }) : plan.current(instance);
    return moveIfTaken(view, joined, snapshot, plan) ?? joined;
  });
  const rollout = rollouts.active(app);
  const oldRelease = current.filter((i) => i.release !== app.release);
  if (waitingFor && current.length === 0) {
    noteUnplaced(pass, app.name, entry, spec.replicas, `waiting for ${waitingFor} to be healthy (dependsOn)`);
    return;
  }
  // Under a rollout every entry is stepped until the rollout says it is done: even once nothing
  // old is left (in-place rebuilds), the new instances must still prove healthy.
  if (rollout) {
    if (rollout.phase === 'paused') return; // nothing moves, nothing is held
    // Room for the strategy's extra instances, once; an entry the release did not change (its
    // instances joined it above) creates none.
    const changed = oldRelease.length > 0;
    const lock = changed && rollout.entries[entry]?.reserved === undefined ? reserveRoom(app, entry, spec, snapshot) : undefined;
    // Held room is allocated like a placement: guarded against a concurrent writer on its nodes.
    if (lock && 'reserved' in lock) for (const slot of lock.reserved) plan.guard(slot.node);
    const decision = rollouts.step(app, rollout, entry, spec, oldRelease, current.filter((i) => i.release === app.release), lock);
    if (!decision) return; // paused: nothing moves
    let created = 0;
    if (decision.create > 0) {
      // New instances go into the room the rollout holds first (already counted in the
      // snapshot), then wherever the scheduler finds more.
      const held = decision.state.reserved ?? [];
      const used = held.slice(0, decision.create);
      decision.state.reserved = held.slice(used.length);
      if (used.length > 0) createInto(pass, app, entry, used, decision.serving);
      created = used.length;
      if (decision.create > used.length) created += place(pass, app, entry, decision.create - used.length, decision.serving);
    }
    const fresh = current.filter((i) => i.release === app.release).length;
    const stillToStart = spec.update.strategy === 'in-place' || decision.failure ? 0 : spec.replicas - fresh - created - (decision.state.reserved?.length ?? 0);
    rollouts.setRoomWanted(app.name, entry, stillToStart);
    for (const instance of decision.remove) plan.update(instance, { desired: 'removed' });
    for (const instance of decision.rebuild) plan.update(instance, { release: app.release, spec });
    for (const instance of decision.serve) plan.update(instance, { serving: true });
    for (const instance of decision.unserve) plan.update(instance, { serving: false });
    return;
  }

  // Instances of an older release, or on a draining node, are replaced before they go.
  const movable = (i: Instance) => i.release !== app.release || view.nodes.get(i.node)?.state === 'draining';
  const settled = current.filter((i) => !movable(i));
  const old = current.filter(movable);
  const each = spec.placement.strategy === 'each';
  const missing = each ? 1 : spec.replicas - settled.length;
  if (missing > 0) place(pass, app, entry, missing, true);
  if (missing < 0) for (const instance of extrasToRemove(view, spec, settled, -missing)) plan.update(instance, { desired: 'removed' });
  // Old-release instances go once enough new ones are healthy, so the entry never dips below its count.
  const healthyCurrent = settled.filter((i) => view.statuses.get(i.id)?.state === 'running').length;
  const wanted = each ? settled.length : spec.replicas;
  const removable = Math.max(0, healthyCurrent + old.length - wanted);
  for (const instance of [...old].sort(removalOrder(view.statuses)).slice(0, wanted === 0 ? old.length : removable)) plan.update(instance, { desired: 'removed' });
}

/** Instances in places already held for them (a rollout's reserved room). */
function createInto(pass: EntryPass, app: AppRecord, entry: string, slots: ReservedSlot[], serving: boolean): void {
  const placements = slots.map((slot) => ({ app: app.name, env: app.env, entry, ...slot }));
  for (const instance of newInstances(pass.ctx, app, entry, placements, serving)) {
    pass.plan.create(instance);
    pass.plan.note({ level: 'info', type: 'instance.placed', app: app.name, entry, instance: instance.id, node: instance.node, message: `placed on ${instance.node} in room held by the rollout, release ${app.release}` });
  }
}

/** Places up to `count` new instances; returns how many found room. */
function place(pass: EntryPass, app: AppRecord, entry: string, count: number, serving: boolean): number {
  const result = planEntry(pass.snapshot, app, entry, count);
  pass.snapshot.commit(result.placements); // later entries of this pass see these placements
  for (const instance of newInstances(pass.ctx, app, entry, result.placements, serving)) {
    pass.plan.create(instance);
    pass.plan.note({ level: 'info', type: 'instance.placed', app: app.name, entry, instance: instance.id, node: instance.node, message: `placed on ${instance.node}, release ${app.release}` });
  }
  const unplaced = result.unplaced.reduce((n, u) => n + u.count, 0);
  if (unplaced > 0) noteUnplaced(pass, app.name, entry, unplaced, result.unplaced.map((u) => (u.node ? `${u.node}: ${u.reason}` : u.reason)).join('; '));
  return result.placements.length;
}

function noteUnplaced(pass: EntryPass, app: string, entry: string, count: number, reason: string): void {
  pass.plan.noteUnplaced(app, entry, count, reason);
  pass.plan.note({ level: 'warning', type: 'instance.unplaced', app, entry, message: `${count} instance(s) cannot be placed: ${reason}` });
}

/** The first dependency of an entry that has not all its replicas healthy yet. */
function unreadyDependency(view: ReconcileView, app: AppRecord, spec: EntrySpec): string | undefined {
  return spec.dependsOn.find((dependency) => {
    const wanted = app.spec.entrypoints[dependency]?.replicas ?? 0;
    const healthy = view.instancesOf(app.name, dependency).filter((i) => i.desired === 'running' && view.statuses.get(i.id)?.state === 'running').length;
    return healthy < Math.max(1, wanted);
  });
}

/** Whether an instance of an entry that depends on `entry` still runs (or has not confirmed it stopped). */
export function hasLiveDependents(view: ReconcileView, app: string, entry: string): boolean {
  return view.instancesOf(app).some((i) => {
    if (i.entry === entry || !(i.spec.dependsOn ?? []).includes(entry)) return false;
    const state = view.statuses.get(i.id)?.state;
    return state !== undefined && !['exited', 'removed', 'failed', 'lost'].includes(state);
  });
}

/**
 * Which of an entry's instances go when it has `count` too many. Those not running go first;
 * then, for a spread entry, one from the node holding the most of them each time, so a scale
 * down keeps the instances spread; otherwise the youngest.
 */
function extrasToRemove(view: ReconcileView, spec: EntrySpec, instances: Instance[], count: number): Instance[] {
  const order = removalOrder(view.statuses);
  if (spec.placement.strategy !== 'spread') return [...instances].sort(order).slice(0, count);
  const left = [...instances];
  const chosen: Instance[] = [];
  while (chosen.length < count && left.length > 0) {
    const perNode = new Map<string, number>();
    for (const i of left) perNode.set(i.node, (perNode.get(i.node) ?? 0) + 1);
    const notRunning = left.filter((i) => view.statuses.get(i.id)?.state !== 'running');
    const pool = notRunning.length > 0 ? notRunning : left;
    const most = Math.max(...pool.map((i) => perNode.get(i.node)!));
    const pick = pool.filter((i) => perNode.get(i.node) === most).sort(order)[0]!;
    chosen.push(pick);
    left.splice(left.indexOf(pick), 1);
  }
  return chosen;
}

/** Extras to remove first: not running, then the youngest. */
function removalOrder(statuses: ReadonlyMap<string, InstanceStatus>): (a: Instance, b: Instance) => number {
  const rank = (i: Instance) => (statuses.get(i.id)?.state === 'running' ? 1 : 0);
  return (a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt;
}

function lostStatus(instance: Instance, previous: InstanceStatus | undefined, now: number): InstanceStatus {
  return {
    id: instance.id,
    state: 'lost',
    healthy: null,
    restarts: previous?.restarts ?? 0,
    exitCode: previous?.exitCode ?? null,
    runtimeId: previous?.runtimeId ?? null,
    startedAt: previous?.startedAt ?? null,
    message: `node ${instance.node} stopped heartbeating`,
    updatedAt: now,
  };
}
