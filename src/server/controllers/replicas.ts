// Keeps every entry at its desired replica count: places missing instances, removes extras,
// replaces instances of an older release once enough of the new one are healthy, and forgets
// instances whose removal the agent confirmed. Runs on the leader only.
import type { Compare, Store, TxnOp } from '../../store/store.js';
import type { Note, PassWrites } from './pass.js';
import { PortMover } from './ports.js';
import { handOverRoom, reserveRoom } from './room.js';
import type { AppRecord, Instance, InstanceStatus, RemovalRecord, ReservedSlot } from '../../model/types.js';
import type { EntrySpec } from '../../model/spec.js';
import type { Snapshot } from '../../scheduler/index.js';
import { isDeepStrictEqual } from 'node:util';
import { clusterSnapshot, guardNodes, instancesFor, planEntry } from './placement.js';
import { RolloutDriver } from './rollouts.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import type { EventLog } from '../services/events.js';

export interface Unplaced {
  entry: string;
  count: number;
  reason: string;
}

export class ReplicaController {
  /** Per app, what could not be placed in the last pass and why. */
  readonly unplaced = new Map<string, Unplaced[]>();
  private readonly lastUnplacedMessage = new Map<string, string>();
  readonly rollouts: RolloutDriver;
  private readonly ports: PortMover;

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
  ) {
    this.rollouts = new RolloutDriver(store, state);
    this.ports = new PortMover(state);
  }

  private chain: Promise<void> = Promise.resolve();

  /** One pass at a time: API calls and the periodic loop queue behind each other. */
  reconcile(): Promise<void> {
    const pass = this.chain.then(() => this.pass());
    this.chain = pass.catch(() => {});
    return pass;
  }

  private async pass(attempt = 1): Promise<void> {
    const ops: TxnOp[] = [];
    const compares: Compare[] = [];
    const notes: Note[] = [];
    const pass: PassWrites = { ops, compares, notes, desired: new Map() };
    const snapshot = clusterSnapshot(this.state);
    this.unplaced.clear();
    for (const app of this.state.apps.values()) {
      for (const [entry, spec] of Object.entries(app.spec.entrypoints)) this.reconcileEntry(app, entry, spec, snapshot, pass);
    }
    for (const instance of this.state.instances.values()) {
      const app = this.state.apps.get(instance.app);
      const entryGone = !app || !app.spec.entrypoints[instance.entry];
      // Dependents go first: an instance waits while an instance depending on its entry remains.
      if (entryGone && instance.desired !== 'removed' && !this.hasLiveDependents(instance.app, instance.entry)) this.setDesired(instance, 'removed', pass);
      if ((pass.desired.get(instance.id) ?? instance.desired) === 'removed' && this.removalDone(instance)) {
        if (app && !entryGone) handOverRoom(this.state, this.rollouts, app, instance, snapshot, pass);
        ops.push({ type: 'delete', key: STORE.instances.key(instance.app, instance.id) }, { type: 'delete', key: STORE.statuses.key(instance.id) });
        // Its node did not confirm (it is down): it must be told to remove it when it returns,
        // since a node removes only what it is told to.
        if (this.state.statuses.get(instance.id)?.state !== 'removed') ops.push(removalOf(instance));
        notes.push({ level: 'info', type: 'instance.removed', app: instance.app, entry: instance.entry, instance: instance.id, node: instance.node, message: `removed from ${instance.node}` });
      }
    }
    await this.rollouts.finish(pass);
    if (ops.length > 0) {
      const result = await this.store.txn({ compare: compares, success: ops });
      if (!result.succeeded) {
        // Another server (or writer) placed on one of these nodes meanwhile: plan again on fresh data.
        await this.state.waitFor(await this.state.currentRevision());
        if (attempt < 3) return this.pass(attempt + 1);
        throw new Error('placement kept conflicting with concurrent placements; will retry');
      }
      await this.state.waitFor(result.revision);
    }
    // The pass has landed: an event the store cannot take must not fail it (see EventLog).
    for (const note of notes) this.events.note(note);
  }

  private reconcileEntry(app: AppRecord, entry: string, spec: EntrySpec, snapshot: Snapshot, pass: PassWrites): void {
    const { ops, notes } = pass;
    const live = this.state.instancesOf(app.name, entry).filter((i) => i.desired !== 'removed');
    for (const instance of live) {
      const node = this.state.nodes.get(instance.node);
      if (!node || node.state === 'down') {
        this.setDesired(instance, 'removed', pass);
        ops.push({ type: 'put', key: STORE.statuses.key(instance.id), value: JSON.stringify(lostStatus(instance, this.state.statuses.get(instance.id))) });
        notes.push({ level: 'warning', type: 'instance.lost', app: app.name, entry, instance: instance.id, node: instance.node, message: `node ${instance.node} is down; replacing the instance` });
      }
    }
    const alive = live.filter((i) => this.state.nodes.get(i.node)?.state !== 'down' && this.state.nodes.has(i.node));
    if (app.stopped) {
      // Stop order is the reverse of start order: dependents first.
      if (this.hasLiveDependents(app.name, entry)) return;
      for (const instance of alive) if (instance.desired === 'running') this.setDesired(instance, 'stopped', pass);
      return;
    }
    const waitingFor = this.unreadyDependency(app, spec);
    for (const instance of alive) if (instance.desired === 'stopped') this.setDesired(instance, 'running', pass);

    // An instance of an older release whose entry did not change just joins the new release.
    for (const [n, instance] of alive.entries()) {
      if (instance.release !== app.release && sameEntry(instance.spec, spec)) {
        alive[n] = { ...instance, release: app.release, spec };
        ops.push({ type: 'put', key: STORE.instances.key(app.name, instance.id), value: JSON.stringify({ ...alive[n], desired: pass.desired.get(instance.id) ?? instance.desired }) });
      }
    }
    for (const [n, instance] of alive.entries()) alive[n] = this.ports.moveIfTaken(instance, snapshot, pass) ?? instance;
    const rollout = this.rollouts.active(app);
    const oldRelease = alive.filter((i) => i.release !== app.release);
    if (waitingFor && alive.length === 0) {
      this.noteUnplaced(app.name, entry, spec.replicas, `waiting for ${waitingFor} to be healthy (dependsOn)`, notes);
      return;
    }
    // Under a rollout every entry is stepped until the rollout says it is done: even once nothing
    // old is left (in-place rebuilds), the new instances must still prove healthy.
    if (rollout) {
      const lock = rollout.entries[entry]?.reserved === undefined ? reserveRoom(app, entry, spec, snapshot) : undefined;
      // Held room is allocated like a placement: guarded against a concurrent writer on its nodes.
      if (lock && 'reserved' in lock) guardNodes(this.state, lock.reserved.map((r) => r.node), pass);
      const decision = this.rollouts.step(app, rollout, entry, spec, oldRelease, alive.filter((i) => i.release === app.release), lock);
      if (!decision) return; // paused: nothing moves
      let created = 0;
      if (decision.create > 0) {
        // New instances go into the room the rollout holds first (already counted in the
        // snapshot), then wherever the scheduler finds more.
        const held = decision.state.reserved ?? [];
        const used = held.slice(0, decision.create);
        decision.state.reserved = held.slice(used.length);
        if (used.length > 0) this.createInto(app, entry, used, pass, decision.serving);
        created = used.length;
        if (decision.create > used.length) created += this.place(app, entry, decision.create - used.length, snapshot, pass, decision.serving);
      }
      const fresh = alive.filter((i) => i.release === app.release).length;
      const stillToStart = spec.update.strategy === 'in-place' || decision.failure ? 0 : spec.replicas - fresh - created - (decision.state.reserved?.length ?? 0);
      this.rollouts.setRoomWanted(app.name, entry, stillToStart);
      for (const instance of decision.remove) this.setDesired(instance, 'removed', pass);
      for (const instance of decision.rebuild) ops.push({ type: 'put', key: STORE.instances.key(app.name, instance.id), value: JSON.stringify({ ...instance, release: app.release, spec }) });
      for (const [list, serving] of [[decision.serve, true], [decision.unserve, false]] as const) {
        for (const instance of list) ops.push({ type: 'put', key: STORE.instances.key(app.name, instance.id), value: JSON.stringify({ ...instance, serving, desired: pass.desired.get(instance.id) ?? instance.desired }) });
      }
      return;
    }

    // Instances of an older release, or on a draining node, are replaced before they go.
    const movable = (i: Instance) => i.release !== app.release || this.state.nodes.get(i.node)?.state === 'draining';
    const current = alive.filter((i) => !movable(i));
    const old = alive.filter(movable);
    const each = spec.placement.strategy === 'each';
    const missing = each ? 1 : spec.replicas - current.length;
    if (missing > 0) this.place(app, entry, missing, snapshot, pass);
    if (missing < 0) {
      for (const instance of [...current].sort(removalOrder(this.state.statuses)).slice(0, -missing)) this.setDesired(instance, 'removed', pass);
    }
    // Old-release instances go once enough new ones are healthy, so the entry never dips below its count.
    const healthyCurrent = current.filter((i) => this.state.statuses.get(i.id)?.state === 'running').length;
    const wanted = each ? current.length : spec.replicas;
    const removable = Math.max(0, healthyCurrent + old.length - wanted);
    for (const instance of [...old].sort(removalOrder(this.state.statuses)).slice(0, wanted === 0 ? old.length : removable)) {
      this.setDesired(instance, 'removed', pass);
    }
  }

  /** Instances in places already held for them (a rollout's reserved room). */
  private createInto(app: AppRecord, entry: string, slots: ReservedSlot[], pass: PassWrites, serving: boolean): void {
    const placements = slots.map((slot) => ({ app: app.name, env: app.env, entry, ...slot }));
    const created = instancesFor(this.state, app, entry, { placements, unplaced: [], wanted: placements.length }, serving);
    pass.ops.push(...created.ops);
    pass.compares.push(...created.compares);
    for (const instance of created.instances) {
      pass.notes.push({ level: 'info', type: 'instance.placed', app: app.name, entry, instance: instance.id, node: instance.node, message: `placed on ${instance.node} in room held by the rollout, release ${app.release}` });
    }
  }

  /** Places up to `count` new instances; returns how many found room. */
  private place(app: AppRecord, entry: string, count: number, snapshot: Snapshot, pass: PassWrites, serving = true): number {
    const result = planEntry(snapshot, app, entry, count);
    const created = instancesFor(this.state, app, entry, result, serving);
    snapshot.commit(result.placements); // later entries of this pass see these placements
    pass.ops.push(...created.ops);
    pass.compares.push(...created.compares);
    for (const instance of created.instances) {
      pass.notes.push({ level: 'info', type: 'instance.placed', app: app.name, entry, instance: instance.id, node: instance.node, message: `placed on ${instance.node}, release ${app.release}` });
    }
    const unplaced = result.unplaced.reduce((n, u) => n + u.count, 0);
    if (unplaced > 0) this.noteUnplaced(app.name, entry, unplaced, result.unplaced.map((u) => (u.node ? `${u.node}: ${u.reason}` : u.reason)).join('; '), pass.notes);
    else this.lastUnplacedMessage.delete(`${app.name}/${entry}`);
    return result.placements.length;
  }

  private noteUnplaced(app: string, entry: string, count: number, reason: string, notes: Note[]): void {
    this.unplaced.set(app, [...(this.unplaced.get(app) ?? []), { entry, count, reason }]);
    const key = `${app}/${entry}`;
    if (this.lastUnplacedMessage.get(key) === reason) return;
    this.lastUnplacedMessage.set(key, reason);
    notes.push({ level: 'warning', type: 'instance.unplaced', app, entry, message: `${count} instance(s) cannot be placed: ${reason}` });
  }

  /** The first dependency of an entry that has not all its replicas healthy yet. */
  private unreadyDependency(app: AppRecord, spec: EntrySpec): string | undefined {
    return spec.dependsOn.find((dependency) => {
      const wanted = app.spec.entrypoints[dependency]?.replicas ?? 0;
      const healthy = this.state.instancesOf(app.name, dependency).filter((i) => i.desired === 'running' && this.state.statuses.get(i.id)?.state === 'running').length;
      return healthy < Math.max(1, wanted);
    });
  }

  /** Whether an instance of an entry that depends on `entry` still runs (or has not confirmed it stopped). */
  private hasLiveDependents(app: string, entry: string): boolean {
    return this.state.instancesOf(app).some((i) => {
      if (i.entry === entry || !(i.spec.dependsOn ?? []).includes(entry)) return false;
      const state = this.state.statuses.get(i.id)?.state;
      return state !== undefined && !['exited', 'removed', 'failed', 'lost'].includes(state);
    });
  }

  private setDesired(instance: Instance, desired: Instance['desired'], pass: PassWrites): void {
    pass.desired.set(instance.id, desired);
    pass.ops.push({ type: 'put', key: STORE.instances.key(instance.app, instance.id), value: JSON.stringify({ ...instance, desired }) });
  }

  /** The agent said it is gone, or nobody is left to say so. */
  private removalDone(instance: Instance): boolean {
    const status = this.state.statuses.get(instance.id);
    const node = this.state.nodes.get(instance.node);
    return status?.state === 'removed' || status?.state === 'lost' || !node || node.state === 'down';
  }
}

/** Same entry spec apart from the replica count: no need to replace the instance. */
function sameEntry(a: EntrySpec, b: EntrySpec): boolean {
  return isDeepStrictEqual({ ...a, replicas: 0 }, { ...b, replicas: 0 });
}

/** Extras to remove first: not running, then the youngest. */
function removalOrder(statuses: Map<string, InstanceStatus>): (a: Instance, b: Instance) => number {
  const rank = (i: Instance) => (statuses.get(i.id)?.state === 'running' ? 1 : 0);
  return (a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt;
}

function lostStatus(instance: Instance, previous: InstanceStatus | undefined): InstanceStatus {
  return {
    id: instance.id,
    state: 'lost',
    healthy: null,
    restarts: previous?.restarts ?? 0,
    exitCode: previous?.exitCode ?? null,
    runtimeId: previous?.runtimeId ?? null,
    startedAt: previous?.startedAt ?? null,
    message: `node ${instance.node} stopped heartbeating`,
    updatedAt: Date.now(),
  };
}

/** The instruction, kept until its node confirms, to remove an instance the node could not be told about. */
function removalOf(instance: Instance): TxnOp {
  const record: RemovalRecord = { id: instance.id, node: instance.node, app: instance.app, entry: instance.entry, reason: `removed while node ${instance.node} was away`, at: Date.now() };
  return { type: 'put', key: STORE.removals.key(instance.node, instance.id), value: JSON.stringify(record) };
}
