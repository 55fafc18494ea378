// What people do to a rollout: look at it, pause, resume, promote canaries, abort (roll back).
import type { Store } from '../../store/store.js';
import type { RolloutRecord } from '../../model/types.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import { casUpdate } from '../cas.js';
import { type AppService } from './apps.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { EventLog } from './events.js';
import { isActive } from '../reconcile/snapshot.js';
import { PlanBuilder } from '../reconcile/plan.js';
import { rollBack } from '../reconcile/rollouts.js';
import { writesOf } from '../reconcile/apply.js';
import type { ReplicaController } from '../controllers/replicas.js';
import type { RolloutStatusResponse } from '../../model/api.js';


export class RolloutService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly apps: AppService,
    private readonly replicas: ReplicaController,
    private readonly events: EventLog,
  ) {}

  status(app: string): RolloutStatusResponse {
    const record = this.apps.get(app);
    const rollout = this.state.rollouts.get(app) ?? null;
    const entries = Object.entries(record.spec.entrypoints).map(([entry, spec]) => {
      const instances = this.state.instancesOf(app, entry).filter((i) => i.desired !== 'removed');
      const updated = instances.filter((i) => i.release === record.release);
      return {
        entry,
        strategy: spec.update.strategy,
        replicas: spec.replicas,
        updated: updated.length,
        healthy: updated.filter((i) => this.state.statuses.get(i.id)?.state === 'running').length,
        old: instances.length - updated.length,
      };
    });
    return { rollout, entries };
  }

  pause(app: string, user: string): Promise<RolloutRecord> {
    return this.change(app, user, ['progressing', 'awaiting-promotion'], (r) => ({ ...r, phase: 'paused' }), 'paused');
  }

  resume(app: string, user: string): Promise<RolloutRecord> {
    return this.change(app, user, ['paused'], (r) => ({ ...r, phase: 'progressing', lastProgressAt: Date.now(), reason: undefined }), 'resumed');
  }

  promote(app: string, user: string): Promise<RolloutRecord> {
    const spec = this.apps.get(app).spec;
    return this.change(app, user, ['awaiting-promotion', 'progressing'], (r) => {
      const now = Date.now();
      const entries = { ...r.entries };
      for (const [name, entry] of Object.entries(spec.entrypoints)) if (entry.update.strategy === 'canary') entries[name] = { ...entries[name], promotedAt: now };
      return { ...r, phase: 'progressing', lastProgressAt: now, entries };
    }, 'promoted');
  }

  async abort(app: string, user: string): Promise<RolloutRecord> {
    const record = this.apps.get(app);
    const rollout = this.state.rollouts.get(app);
    if (!rollout || !isActive(rollout.phase) || rollout.to !== record.release) throw new ConflictError(`app ${app} has no rollout under way`);
    const previous = await this.replicas.release(app, rollout.from);
    const now = Date.now();
    const plan = new PlanBuilder(this.state);
    const aborted = structuredClone(rollout);
    if (!rollBack(this.state, { now, newId: () => '', release: () => previous }, plan, record, aborted, `aborted by ${user}; back to release ${rollout.from}`, 'aborted')) {
      throw new NotFoundError(`cannot abort: release ${rollout.from} of ${app} is gone`);
    }
    aborted.steps = [...aborted.steps, { time: now, message: `aborted by ${user}` }].slice(-50);
    aborted.updatedAt = now;
    plan.rollouts.push(aborted);
    const built = plan.build();
    // Guarded like a reconcile pass: a rollout or app that moved on meanwhile is not overwritten.
    const { compares, ops } = writesOf(built, { of: (key) => this.state.modRevision(key), alloc: (node) => this.state.allocRevisions.get(node) ?? 0 }, now);
    const result = await this.store.txn({ compare: compares, success: ops });
    if (!result.succeeded) throw new ConflictError(`the rollout of ${app} moved on meanwhile; look again and retry`);
    await this.state.waitFor(result.revision);
    for (const note of built.events) this.events.note(note);
    return aborted;
  }

  private async change(app: string, user: string, from: RolloutRecord['phase'][], update: (r: RolloutRecord) => RolloutRecord, verb: string): Promise<RolloutRecord> {
    this.apps.get(app);
    const written = await casUpdate(this.store, STORE.rollouts.key(app), STORE.rollouts, (current) => {
      if (!current) throw new NotFoundError(`app ${app} has never been rolled out`);
      if (!from.includes(current.phase)) throw new ConflictError(`the rollout of ${app} to release ${current.to} is ${current.phase}; cannot be ${verb}`);
      const next = update(current);
      const updatedAt = Date.now();
      return { ...next, updatedAt, steps: [...next.steps, { time: updatedAt, message: `${verb} by ${user}` }].slice(-50) };
    }, { what: `the rollout of ${app}` });
    const next = written.value!;
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: `rollout.${verb}`, app, message: `rollout to release ${next.to} ${verb} by ${user}` });
    return next;
  }
}
