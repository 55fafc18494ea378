// Drives each app's rollout (release A → B) inside the replica controller's pass: asks
// stepEntry what to do per entrypoint, keeps the rollout record (phase, steps, progress
// deadline), and rolls back to A when B fails. Everything it decides goes into the pass's one
// transaction, so a server killed mid-rollout resumes from the store where it was.
import type { Store, TxnOp } from '../../store/store.js';
import type { AppRecord, Instance, ReservedSlot, RolloutRecord } from '../../model/types.js';
import type { EntrySpec } from '../../model/spec.js';
import { formatDuration } from '../../model/units.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import type { EventLog } from '../services/events.js';
import { stepEntry, type RolloutDecision } from './rollout.js';

export const ACTIVE_PHASES: RolloutRecord['phase'][] = ['progressing', 'paused', 'awaiting-promotion'];

export interface RolloutPass {
  ops: TxnOp[];
  notes: Parameters<EventLog['record']>[0][];
}

export class RolloutDriver {
  private readonly decisions = new Map<string, Map<string, RolloutDecision>>();
  /** Per app/entry: new instances still to come that no held room covers yet (this pass). */
  private readonly roomWanted = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
  ) {}

  /** The rollout this app is in, if any is under way towards its current release. */
  active(app: AppRecord): RolloutRecord | undefined {
    const rollout = this.state.rollouts.get(app.name);
    return rollout && rollout.to === app.release && ACTIVE_PHASES.includes(rollout.phase) ? rollout : undefined;
  }

  /** Decides this pass's step for one entry of an app under rollout. */
  step(app: AppRecord, rollout: RolloutRecord, entry: string, spec: EntrySpec, old: Instance[], fresh: Instance[], lock?: { reserved: ReservedSlot[] } | { failure: string }): RolloutDecision | undefined {
    if (rollout.phase === 'paused') return undefined;
    const decision = lock && 'failure' in lock ? lockFailure(rollout, entry, lock.failure) : stepEntry({
      replicas: spec.replicas,
      update: spec.update,
      old,
      fresh,
      status: (id) => this.state.statuses.get(id),
      state: rollout.entries[entry] ?? {},
      now: Date.now(),
    });
    if (lock && 'reserved' in lock) {
      decision.state.reserved = lock.reserved;
      if (lock.reserved.length > 0) decision.note = `${decision.note ? `${decision.note}; ` : ''}holding room for ${lock.reserved.length} new instance(s) on ${[...new Set(lock.reserved.map((r) => r.node))].join(', ')} until the rollout ends`;
    }
    if (!this.decisions.has(app.name)) this.decisions.set(app.name, new Map());
    this.decisions.get(app.name)!.set(entry, decision);
    return decision;
  }

  /**
   * After the step's new instances were created: how many more the entry's rollout will start
   * that no held room covers. In-place rebuilds reuse each instance's own place: none.
   */
  setRoomWanted(app: string, entry: string, count: number): void {
    this.roomWanted.set(`${app}/${entry}`, Math.max(0, count));
  }

  /** Whether the rollout of this entry still needs room it does not hold (asked in the same pass as step). */
  wantsRoom(app: string, entry: string): boolean {
    return (this.roomWanted.get(`${app}/${entry}`) ?? 0) > 0;
  }

  /**
   * Keeps room an old instance freed for the rollout's next new instance, in the rollout record
   * written by this pass: another deploy cannot take it between two steps.
   */
  holdRoom(app: string, entry: string, slot: ReservedSlot): void {
    const decision = this.decisions.get(app)?.get(entry);
    if (!decision || !this.wantsRoom(app, entry)) throw new Error(`rollout of ${app}/${entry} does not want room now`);
    decision.state.reserved = [...(decision.state.reserved ?? []), slot];
    this.roomWanted.set(`${app}/${entry}`, this.roomWanted.get(`${app}/${entry}`)! - 1);
    decision.note = `${decision.note ? `${decision.note}; ` : ''}holding the room an old instance freed on ${slot.node} for the next new one`;
  }

  /** After every entry was stepped: the new rollout record, or a rollback. */
  async finish(pass: RolloutPass): Promise<void> {
    const now = Date.now();
    for (const app of this.state.apps.values()) {
      const appName = app.name;
      const current = this.active(app);
      if (!current || current.phase === 'paused') continue;
      // An app none of whose entries had anything left to replace is done.
      const byEntry = this.decisions.get(appName) ?? new Map<string, RolloutDecision>();
      const rollout = structuredClone(this.state.rollouts.get(appName)!);
      const log = (message: string, level: 'info' | 'warning' | 'error' = 'info') => {
        rollout.steps = [...rollout.steps, { time: now, message }].slice(-50);
        pass.notes.push({ level, type: 'rollout.step', app: appName, message: `release ${rollout.from} → ${rollout.to}: ${message}`, data: { from: rollout.from, to: rollout.to } });
      };
      for (const [entry, d] of byEntry) {
        rollout.entries[entry] = d.state;
        if (d.note) log(`${entry}: ${d.note}`);
      }
      const failures = [...byEntry].filter(([, d]) => d.failure).map(([entry, d]) => `${entry}: ${d.failure}`);
      const mark = [...byEntry].map(([entry, d]) => `${entry}=${d.mark}`).join(' ');
      const waiting = [...byEntry.values()].some((d) => d.awaitingPromotion);
      if (mark !== rollout.progressMark || waiting) {
        rollout.progressMark = mark;
        rollout.lastProgressAt = now;
      }
      const deadline = Math.min(...Object.values(app.spec.entrypoints).map((e) => e.update.progressDeadline));
      if (failures.length === 0 && now - rollout.lastProgressAt > deadline) failures.push(`no progress for ${formatDuration(now - rollout.lastProgressAt)} (deadline ${formatDuration(deadline)}): ${mark}`);

      if (failures.length > 0) {
        const autoRollback = Object.values(app.spec.entrypoints).every((e) => e.update.autoRollback);
        rollout.reason = failures.join('; ');
        if (autoRollback) {
          await this.rollBack(app, rollout, `release ${rollout.to} failed: ${rollout.reason}`, 'rolled-back', pass);
          log(`rolled back to release ${rollout.from}: ${rollout.reason}`, 'error');
        } else {
          rollout.phase = 'paused';
          log(`paused: ${rollout.reason} (autoRollback is off: fix and resume, or roll back)`, 'error');
        }
      } else if ([...byEntry.values()].every((d) => d.done)) {
        rollout.phase = 'succeeded';
        log(`release ${rollout.to} is out: every instance runs it`);
      } else {
        const next = waiting ? 'awaiting-promotion' : 'progressing';
        if (rollout.phase !== next) log(next === 'awaiting-promotion' ? 'canaries healthy; waiting for gantry promote (or abort)' : 'progressing');
        rollout.phase = next;
      }
      rollout.updatedAt = now;
      pass.ops.push({ type: 'put', key: STORE.rollouts.key(appName), value: JSON.stringify(rollout) });
    }
    this.decisions.clear();
    this.roomWanted.clear();
  }

  /**
   * Back to release `from`: its spec is the app's again (replica counts kept), its instances —
   * which kept serving throughout — get traffic if a blue-green switch had taken it away, and
   * the replica controller then removes the failed release's instances.
   */
  async rollBack(app: AppRecord, rollout: RolloutRecord, reason: string, phase: 'rolled-back' | 'aborted', pass: RolloutPass): Promise<void> {
    const kv = await this.store.get(STORE.releases.key(app.name, rollout.from));
    if (!kv) throw new Error(`cannot roll ${app.name} back: release ${rollout.from} is gone`);
    const previous = STORE.releases.decode(kv.value);
    const spec = structuredClone(previous.spec);
    for (const [name, entry] of Object.entries(spec.entrypoints)) entry.replicas = app.spec.entrypoints[name]?.replicas ?? entry.replicas;
    const record: AppRecord = { ...app, spec, release: rollout.from, updatedAt: Date.now(), updatedBy: 'gantry (rollback)' };
    pass.ops.push({ type: 'put', key: STORE.apps.key(app.name), value: JSON.stringify(record) });
    for (const instance of this.state.instancesOf(app.name)) {
      if (instance.release === rollout.from && instance.serving === false) pass.ops.push({ type: 'put', key: STORE.instances.key(app.name, instance.id), value: JSON.stringify({ ...instance, serving: true }) });
    }
    rollout.phase = phase;
    rollout.reason = reason;
    pass.notes.push({ level: 'error', type: phase === 'aborted' ? 'rollout.aborted' : 'rollout.rolled_back', app: app.name, message: reason, data: { from: rollout.to, to: rollout.from } });
  }
}

function lockFailure(rollout: RolloutRecord, entry: string, failure: string): RolloutDecision {
  return { create: 0, serving: true, remove: [], rebuild: [], serve: [], unserve: [], awaitingPromotion: false, done: false, state: { ...(rollout.entries[entry] ?? {}) }, mark: 'no room', failure };
}
