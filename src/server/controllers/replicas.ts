// Runs reconciliation: one pass at a time, it reads the cluster cache (and the releases a
// rollback may need), asks the pure `reconcile` what to do, writes the plan in one guarded
// transaction (planning again on fresh data if another writer got there first), and records
// the plan's events in one write. Runs on the leader only.
//
// A pass costs what changed, not the fleet's size: it looks only at the apps something happened
// to since the last pass (their record, instances, statuses or rollout; the nodes they run on),
// those with a rollout under way (rollouts have deadlines) and those still waiting for room;
// and the scheduler's snapshot follows instances and nodes as they come, go and change (it is
// rebuilt only after a pool or rollout changed, a node's capacity did, or a pass moved things
// it cannot follow). Once a
// minute a pass looks at everything, whatever was heard.
import type { LogSinkSpec } from '../../model/log-shipping.js';
import { randomBytes } from 'node:crypto';
import type { Store } from '../../store/store.js';
import type { AppRecord, Instance, NodeRecord, ReleaseRecord } from '../../model/types.js';
import type { Placement, Snapshot } from '../../scheduler/index.js';
import type { ChangeKind, ClusterState } from '../state.js';
import { STORE, lastSegment } from '../keys.js';
import type { EventLog } from '../services/events.js';
import { reconcile } from '../reconcile/reconcile.js';
import { countedSnapshotOf, isActive, placementOf, samePlacement, schedNodeOf, updatableInPlace } from '../reconcile/snapshot.js';
import { writesOf } from '../reconcile/apply.js';
import type { Note, Plan, Unplaced } from '../reconcile/plan.js';
import type { ReconcileContext } from '../reconcile/view.js';

export type { Unplaced } from '../reconcile/plan.js';

/** Notes a pass makes again and again while nothing changes: said once, until they change or stop. */
const REPEATING = new Set(['instance.unplaced', 'instance.port_taken']);
/** How often a pass looks at every app, whatever changed. */
const FULL_PASS_EVERY_MS = 60_000;
/** How many recent passes the figures (GET /v1/server/reconcile) are taken from. */
const RECENT_PASSES = 200;

/** What the recent passes cost: for operators, and for benchmarks (the server's own timing). */
export interface PassFigures {
  passes: number;
  /** Passes that looked at every app. */
  fullPasses: number;
  /** Passes that found nothing changed and did nothing. */
  idlePasses: number;
  /** Of the last RECENT_PASSES passes that looked at something: milliseconds, planning and writing. */
  recentMs: { n: number; p50: number; p99: number; max: number };
  last?: { at: number; ms: number; apps: number | 'all'; instances: number; wrote: number };
}

export class ReplicaController {
  /** Per app, what could not be placed in the last pass and why. */
  readonly unplaced = new Map<string, Unplaced[]>();
  /** The last message of each repeating note (by type, app, entry, instance). */
  private readonly said = new Map<string, string>();
  /** Releases rollbacks may need, by `app/release` (immutable: kept once read). */
  private readonly releases = new Map<string, ReleaseRecord | undefined>();
  private chain: Promise<void> = Promise.resolve();
  /** Apps something happened to since the last pass. */
  private dirty = new Set<string>();
  /** Every app, next pass (at start, after a pool changed, and once a minute). */
  private everything = true;
  private lastFullPass = 0;
  /** The scheduler's view of the fleet, kept current instance by instance; undefined: rebuild it. */
  private snapshot: Snapshot | undefined;
  /** What the snapshot counts for each instance (to take it back when the instance goes or moves). */
  private counted = new Map<string, Placement>();
  private readonly unsubscribe: () => void;
  private readonly figures: Omit<PassFigures, 'recentMs'> = { passes: 0, fullPasses: 0, idlePasses: 0 };
  private readonly recentMs: number[] = [];
  /** Told of each pass that looked at something (its milliseconds, the instances it placed): the server's metrics. */
  onPass: (ms: number, placed: number) => void = () => {};

  /** The cluster's log sinks for apps whose spec names none (set by the server's main). */
  defaultLogSinks: LogSinkSpec[] = [];

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
  ) {
    this.unsubscribe = state.onChange((kind, key, before) => this.heard(kind, key, before));
  }

  close(): void {
    this.unsubscribe();
  }

  /** What one change means for the next pass: which apps to look at, and whether capacity moved. */
  private heard(kind: ChangeKind, key: string, before: unknown): void {
    const id = lastSegment(key);
    switch (kind) {
      case 'app': {
        this.dirty.add(id);
        // A rollout's held room counts while the app is at the rollout's release.
        const release = this.state.apps.get(id)?.release;
        if (this.state.rollouts.has(id) && release !== (before as AppRecord | undefined)?.release) this.snapshot = undefined;
        return;
      }
      case 'rollout':
        this.dirty.add(id);
        this.snapshot = undefined;
        return;
      case 'instance': {
        const after = this.state.instances.get(id);
        const app = after?.app ?? (before as Instance | undefined)?.app;
        if (app) this.dirty.add(app);
        this.recount(id, after);
        return;
      }
      case 'status': {
        const app = this.state.instances.get(id)?.app;
        if (app) this.dirty.add(app);
        return;
      }
      case 'node': {
        // Its instances may be lost or moved, and what waited for room may find it there.
        for (const instance of this.state.instancesOnNode(id)) this.dirty.add(instance.app);
        for (const app of this.unplaced.keys()) this.dirty.add(app);
        const after = this.state.nodes.get(id);
        const was = before as NodeRecord | undefined;
        // A node new to the snapshot must run nothing it would have to count.
        const fresh = !was && !after?.portsTaken?.length && this.state.countOnNode(id) === 0;
        if (this.snapshot && after && (was ? updatableInPlace(was, after) : fresh)) this.snapshot.setNode(schedNodeOf(after));
        else this.snapshot = undefined;
        return;
      }
      case 'pool':
        this.everything = true;
        this.snapshot = undefined;
        return;
      case 'alloc':
      case 'removal':
        return;
    }
  }

  /** One pass at a time: API calls and the periodic loop queue behind each other. */
  reconcile(): Promise<void> {
    const pass = this.chain.then(() => this.pass());
    this.chain = pass.catch(() => {});
    return pass;
  }

  /** The release a rollback of `app` would go back to, read from the store if not yet known. */
  async release(app: string, release: number): Promise<ReleaseRecord | undefined> {
    const key = `${app}/${release}`;
    if (!this.releases.has(key)) {
      const kv = await this.store.get(STORE.releases.key(app, release));
      this.releases.set(key, kv ? STORE.releases.decode(kv.value) : undefined);
    }
    return this.releases.get(key);
  }

  /** The snapshot counts the instance as it is now (or no more, when it is gone). */
  private recount(id: string, instance: Instance | undefined): void {
    if (!this.snapshot) return;
    const was = this.counted.get(id);
    const now = instance && placementOf(this.state, instance);
    if (samePlacement(was, now)) return;
    if (was) this.snapshot.release(was);
    if (now) {
      this.snapshot.load(now);
      this.counted.set(id, now);
    } else this.counted.delete(id);
  }

  private currentSnapshot(): Snapshot {
    if (!this.snapshot) ({ snapshot: this.snapshot, counted: this.counted } = countedSnapshotOf(this.state));
    return this.snapshot;
  }

  /** The apps the next pass looks at (undefined: all); taking them clears the list. */
  private takeScope(now: number): Set<string> | undefined {
    const all = this.everything || now - this.lastFullPass >= FULL_PASS_EVERY_MS;
    const scope = this.dirty;
    this.dirty = new Set();
    this.everything = false;
    if (all) {
      this.lastFullPass = now;
      return undefined;
    }
    for (const rollout of this.state.rollouts.values()) if (isActive(rollout.phase)) scope.add(rollout.app);
    for (const app of this.unplaced.keys()) scope.add(app);
    return scope;
  }

  passFigures(): PassFigures {
    const sorted = [...this.recentMs].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return { ...this.figures, recentMs: { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 } };
  }

  private async pass(): Promise<void> {
    this.figures.passes++;
    let scope = this.takeScope(Date.now());
    if (scope?.size === 0) {
      this.figures.idlePasses++;
      return;
    }
    if (!scope) this.figures.fullPasses++;
    try {
      for (let attempt = 1; !(await this.passOver(scope, Date.now())); attempt++) {
        // Another writer changed what this pass read: plan again on fresh data, looking again
        // at what this pass looked at and at what changed since.
        if (attempt >= 3) throw new Error('the reconcile pass kept conflicting with concurrent writes; will retry');
        await this.state.waitFor(await this.state.currentRevision());
        const more = this.takeScope(Date.now());
        scope = scope && more ? new Set([...scope, ...more]) : undefined;
      }
    } catch (err) {
      // Whatever this pass did not finish is looked at again next time.
      if (scope) for (const app of scope) this.dirty.add(app);
      else this.everything = true;
      throw err;
    }
  }

  /** One plan and its write; false when a concurrent write got there first (nothing written). */
  private async passOver(scope: Set<string> | undefined, now: number): Promise<boolean> {
    for (const rollout of this.state.rollouts.values()) if (isActive(rollout.phase)) await this.release(rollout.app, rollout.from);
    const ctx: ReconcileContext = {
      now,
      newId: (app, entry) => `${app}-${entry}-${randomBytes(4).toString('hex')}`,
      release: (app, release) => this.releases.get(`${app}/${release}`),
      defaultLogSinks: this.defaultLogSinks,
    };
    const started = performance.now();
    const snapshot = this.currentSnapshot();
    let plan: Plan;
    try {
      plan = reconcile(this.state, snapshot, ctx, scope);
    } catch (err) {
      this.snapshot = undefined; // it may hold part of what the pass placed
      throw err;
    }
    const { compares, ops } = writesOf(plan, { of: (key) => this.state.modRevision(key), alloc: (node) => this.state.allocRevisions.get(node) ?? 0 }, ctx.now);
    if (ops.length > 0) {
      // The snapshot counts what the pass placed: when the new instances come back through the
      // watch, they are known. Room a rollout holds or hands over, and ports moved in place, it
      // cannot follow that way: rebuilt for the next pass.
      const followable = plan.rollouts.length === 0 && plan.apps.length === 0 && plan.updates.every((i) => samePlacement(placementOf(this.state, i), this.counted.get(i.id)));
      if (followable) for (const instance of plan.creates) this.counted.set(instance.id, placementOf(this.state, instance)!);
      else this.snapshot = undefined;
      let result: Awaited<ReturnType<Store['txn']>>;
      try {
        result = await this.store.txn({ compare: compares, success: ops });
      } catch (err) {
        this.snapshot = undefined;
        throw err;
      }
      if (!result.succeeded) {
        this.snapshot = undefined; // it counts placements that were not written
        return false;
      }
      await this.state.waitFor(result.revision);
    }
    const looked = (app: string) => !scope || scope.has(app);
    for (const app of this.unplaced.keys()) if (looked(app)) this.unplaced.delete(app);
    for (const [app, list] of plan.unplaced) this.unplaced.set(app, list);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    this.recentMs.push(ms);
    if (this.recentMs.length > RECENT_PASSES) this.recentMs.shift();
    const instances = scope ? [...scope].reduce((n, app) => n + this.state.instancesOf(app).length, 0) : this.state.instances.size;
    this.figures.last = { at: now, ms, apps: scope ? scope.size : 'all', instances, wrote: ops.length };
    this.onPass(ms, ops.length > 0 ? plan.creates.length : 0);
    await this.events.recordAll(this.fresh(plan.events, looked)).catch(() => {});
    // Releases of apps that are gone need not be kept.
    for (const key of this.releases.keys()) if (!this.state.apps.has(key.slice(0, key.lastIndexOf('/')))) this.releases.delete(key);
    return true;
  }

  /** The notes worth recording: a repeating one only when it is new or says something else. */
  private fresh(notes: Note[], looked: (app: string) => boolean): Note[] {
    const seen = new Set<string>();
    const out = notes.filter((note) => {
      if (!REPEATING.has(note.type)) return true;
      const key = `${note.type}/${note.app}/${note.entry}/${note.instance ?? ''}`;
      seen.add(key);
      if (this.said.get(key) === note.message) return false;
      this.said.set(key, note.message);
      return true;
    });
    // A repeating note this pass could have made and did not has stopped: said again if it comes back.
    for (const [key] of this.said) if (!seen.has(key) && looked(key.split('/')[1]!)) this.said.delete(key);
    return out;
  }
}
