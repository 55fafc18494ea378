// Rollouts inside a reconcile pass: asks stepEntry (rollout-step.ts) what to do per entry of an
// app moving from release A to B, keeps the rollout record (phase, steps, progress deadline,
// held room), and rolls back to A when B fails. One RolloutPass lives for one reconcile call:
// what it decides goes into that pass's plan, so a server killed mid-rollout resumes from the
// store where it was.
import type { AppRecord, Instance, PrepullState, ReservedSlot, RolloutRecord } from '../../model/types.js';
import type { EntrySpec } from '../../model/spec.js';
import { formatDuration } from '../../model/units.js';
import { stepEntry, type RolloutDecision } from './rollout-step.js';
import { isActive } from './snapshot.js';
import { prepullSummary, prepullWaiting, startPrepull } from './prepull.js';
import type { PlanBuilder } from './plan.js';
import type { ReconcileContext, ReconcileView } from './view.js';

export class RolloutPass {
  private readonly decisions = new Map<string, Map<string, RolloutDecision>>();
  /** Per app/entry: the pre-pull this pass started or concluded (the record gets it). */
  private readonly prepulls = new Map<string, PrepullState>();
  /** Per app/entry: new instances still to come that no held room covers yet. */
  private readonly roomWanted = new Map<string, number>();

  constructor(
    private readonly view: ReconcileView,
    private readonly ctx: ReconcileContext,
    private readonly plan: PlanBuilder,
  ) {}

  /** The rollout this app is in, if one is under way towards its current release. */
  active(app: AppRecord): RolloutRecord | undefined {
    const rollout = this.view.rollouts.get(app.name);
    return rollout && rollout.to === app.release && isActive(rollout.phase) ? rollout : undefined;
  }

  /** Decides this pass's step for one entry of an app under rollout; undefined while paused. */
  step(app: AppRecord, rollout: RolloutRecord, entry: string, spec: EntrySpec, old: Instance[], fresh: Instance[], lock?: { reserved: ReservedSlot[] } | { failure: string }): RolloutDecision | undefined {
    if (rollout.phase === 'paused') return undefined;
    const decision =
      lock && 'failure' in lock
        ? lockFailure(rollout, entry, lock.failure)
        : this.prepullStep(rollout, entry, spec, old, fresh, lock) ??
          stepEntry({ replicas: spec.replicas, update: spec.update, old, fresh, status: (id) => this.view.statuses.get(id), state: rollout.entries[entry] ?? {}, now: this.ctx.now });
    // The pre-pull (over or not) stays in the record: it is started once per rollout.
    const prepull = this.prepulls.get(`${app.name}/${entry}`) ?? rollout.entries[entry]?.prepull;
    if (prepull) decision.state = { ...decision.state, prepull };
    if (lock && 'reserved' in lock) {
      decision.state.reserved = lock.reserved;
      if (lock.reserved.length > 0) decision.note = `${decision.note ? `${decision.note}; ` : ''}holding room for ${lock.reserved.length} new instance(s) on ${[...new Set(lock.reserved.map((r) => r.node))].join(', ')} until the rollout ends`;
    }
    if (!this.decisions.has(app.name)) this.decisions.set(app.name, new Map());
    this.decisions.get(app.name)!.set(entry, decision);
    return decision;
  }

  /**
   * While the entry's new images are pre-pulled: a step that holds everything where it is. When
   * the pre-pull is over, undefined (the strategy steps), with a note of how it went, once.
   */
  private prepullStep(rollout: RolloutRecord, entry: string, spec: EntrySpec, old: Instance[], fresh: Instance[], lock: { reserved: ReservedSlot[] } | undefined): RolloutDecision | undefined {
    const now = this.ctx.now;
    const before = rollout.entries[entry] ?? {};
    const reserved = lock?.reserved ?? before.reserved ?? [];
    const ready = (node: string) => this.view.nodes.get(node)?.state === 'ready';
    const prepull = before.prepull ?? (fresh.length === 0 ? startPrepull(spec, old, reserved, now, ready) : undefined);
    if (!prepull || prepull.concludedAt !== undefined) return undefined;
    const { mark, failed } = prepullSummary(prepull);
    if (prepullWaiting(prepull, now, ready)) {
      const note = before.prepull ? undefined : `pre-pulling ${prepull.images.join(', ')} on ${Object.keys(prepull.nodes).join(', ')} before the first wave`;
      this.prepulls.set(`${rollout.app}/${entry}`, prepull);
      return { create: 0, serving: true, remove: [], rebuild: [], serve: [], unserve: [], awaitingPromotion: false, done: false, state: { ...before }, mark, ...(note ? { note } : {}) };
    }
    // Over: the strategy steps from this pass on; the record says how the pre-pull went.
    const late = Object.entries(prepull.nodes).filter(([, n]) => n.state === 'pending').map(([name]) => name);
    const concluded = { ...prepull, concludedAt: now };
    const summary = [`${mark} node(s)`, ...(failed.length > 0 ? [`failed on ${failed.join('; ')}`] : []), ...(late.length > 0 ? [`no answer from ${late.join(', ')} (they pull when their instances start)`] : [])].join('; ');
    this.prepulls.set(`${rollout.app}/${entry}`, concluded);
    this.plan.note({ level: failed.length > 0 || late.length > 0 ? 'warning' : 'info', type: 'rollout.prepulled', app: rollout.app, entry, message: `release ${rollout.to}: ${entry}: pre-pull over after ${formatDuration(now - prepull.startedAt)}: ${summary}` });
    return undefined;
  }

  /** After the step's new instances were created: how many more will start that no held room covers (in-place: none). */
  setRoomWanted(app: string, entry: string, count: number): void {
    this.roomWanted.set(`${app}/${entry}`, Math.max(0, count));
  }

  wantsRoom(app: string, entry: string): boolean {
    return (this.roomWanted.get(`${app}/${entry}`) ?? 0) > 0;
  }

  /** Keeps room an old instance freed for the rollout's next new instance (in the record this pass writes). */
  holdRoom(app: string, entry: string, slot: ReservedSlot): void {
    const decision = this.decisions.get(app)?.get(entry);
    if (!decision || !this.wantsRoom(app, entry)) throw new Error(`rollout of ${app}/${entry} does not want room now`);
    decision.state.reserved = [...(decision.state.reserved ?? []), slot];
    this.roomWanted.set(`${app}/${entry}`, this.roomWanted.get(`${app}/${entry}`)! - 1);
    decision.note = `${decision.note ? `${decision.note}; ` : ''}holding the room an old instance freed on ${slot.node} for the next new one`;
  }

  /** After every entry of `apps` was stepped: each active rollout's new record, or its rollback. */
  finish(apps: Iterable<AppRecord>): void {
    const now = this.ctx.now;
    for (const app of apps) {
      const current = this.active(app);
      if (!current || current.phase === 'paused') continue;
      const byEntry = this.decisions.get(app.name);
      // No entry was stepped (the app is stopped, or waits for a dependency): the rollout waits too.
      if (!byEntry) continue;
      const rollout = structuredClone(current);
      const log = (message: string, level: 'info' | 'warning' | 'error' = 'info') => {
        rollout.steps = [...rollout.steps, { time: now, message }].slice(-50);
        this.plan.note({ level, type: 'rollout.step', app: app.name, message: `release ${rollout.from} → ${rollout.to}: ${message}`, data: { from: rollout.from, to: rollout.to } });
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
        if (autoRollback && rollBack(this.view, this.ctx, this.plan, app, rollout, `release ${rollout.to} failed: ${rollout.reason}`, 'rolled-back')) {
          log(`rolled back to release ${rollout.from}: ${rollout.reason}`, 'error');
        } else {
          rollout.phase = 'paused';
          log(`paused: ${rollout.reason} (${autoRollback ? `release ${rollout.from} is gone, so it cannot be rolled back to` : 'autoRollback is off'}: fix and resume, or roll back)`, 'error');
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
      this.plan.rollouts.push(rollout);
    }
  }
}

/**
 * Back to release `from` (false when that release is gone): its spec is the app's again
 * (replica counts kept), its instances — which kept serving throughout — get traffic if a
 * blue-green switch had taken it away, and the failed release's instances are then removed by
 * the next pass. Sets the rollout's phase and reason; the caller writes the rollout record.
 */
export function rollBack(view: ReconcileView, ctx: ReconcileContext, plan: PlanBuilder, app: AppRecord, rollout: RolloutRecord, reason: string, phase: 'rolled-back' | 'aborted'): boolean {
  const previous = ctx.release(app.name, rollout.from);
  if (!previous) return false;
  const spec = structuredClone(previous.spec);
  for (const [name, entry] of Object.entries(spec.entrypoints)) entry.replicas = app.spec.entrypoints[name]?.replicas ?? entry.replicas;
  plan.apps.push({ ...app, spec, release: rollout.from, updatedAt: ctx.now, updatedBy: 'gantry (rollback)' });
  for (const instance of view.instancesOf(app.name)) {
    if (instance.release === rollout.from && instance.serving === false) plan.update(instance, { serving: true });
  }
  rollout.phase = phase;
  rollout.reason = reason;
  plan.note({ level: 'error', type: phase === 'aborted' ? 'rollout.aborted' : 'rollout.rolled_back', app: app.name, message: reason, data: { from: rollout.to, to: rollout.from } });
  return true;
}

function lockFailure(rollout: RolloutRecord, entry: string, failure: string): RolloutDecision {
  return { create: 0, serving: true, remove: [], rebuild: [], serve: [], unserve: [], awaitingPromotion: false, done: false, state: { ...(rollout.entries[entry] ?? {}) }, mark: 'no room', failure };
}
