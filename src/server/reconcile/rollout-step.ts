// One step of a rollout for one entrypoint: given its old and new instances and what their
// agents report, decide what to create, remove, put in or take out of traffic, and whether the
// new release is failing. Pure: the replica controller applies the decision in its pass.
import type { Instance, InstanceStatus, RolloutRecord } from '../../model/types.js';
import { resolveCount, type UpdateSpec } from '../../model/spec.js';
import { formatDuration } from '../../model/units.js';

export interface EntryRollout {
  replicas: number;
  update: UpdateSpec;
  /** Instances of other releases, still alive. */
  old: Instance[];
  /** Instances of the release being rolled out. */
  fresh: Instance[];
  status: (id: string) => InstanceStatus | undefined;
  state: RolloutRecord['entries'][string];
  now: number;
}

export interface RolloutDecision {
  /** New instances to place, and whether they get traffic at once. */
  create: number;
  serving: boolean;
  remove: Instance[];
  /** Old instances to rebuild in place with the new release. */
  rebuild: Instance[];
  serve: Instance[];
  unserve: Instance[];
  /** Why the new release is failing; the controller rolls back (or stops) on it. */
  failure?: string;
  awaitingPromotion: boolean;
  done: boolean;
  /** Changes to remember in the rollout record for this entry. */
  state: RolloutRecord['entries'][string];
  /** Counts that tell progress from standing still. */
  mark: string;
  note?: string;
}

const running = (s: InstanceStatus | undefined) => s?.state === 'running';

export function failureOf(instance: Instance, status: InstanceStatus | undefined): string | undefined {
  // A host port another program holds is the node's problem, not the release's: the instance is
  // moved to another port and tried again.
  if (!status || status.portsTaken?.length) return undefined;
  const bad = status.restarts > 0 || ['backoff', 'failed', 'unhealthy'].includes(status.state) || (status.state === 'exited' && instance.desired === 'running');
  if (!bad) return undefined;
  const exit = status.exitCode !== null ? `, exit code ${status.exitCode}` : '';
  return `instance ${instance.id} on ${instance.node}: ${status.message ?? status.state}${exit}${status.restarts ? ` (${status.restarts} restarts)` : ''}`;
}

export function stepEntry(input: EntryRollout): RolloutDecision {
  // A status reported for another release (an instance rebuilt in place) says nothing yet.
  const byId = new Map([...input.old, ...input.fresh].map((i) => [i.id, i]));
  const status = (id: string) => {
    const s = input.status(id);
    return s && (s.release === undefined || s.release === byId.get(id)?.release) ? s : undefined;
  };
  const view = { ...input, status };
  const { replicas, update, old, fresh, now } = view;
  const ready = (i: Instance) => {
    const s = status(i.id);
    return running(s) && now - (s?.healthySince ?? now) >= update.minHealthy;
  };
  const readyFresh = fresh.filter(ready);
  const decision: RolloutDecision = { create: 0, serving: true, remove: [], rebuild: [], serve: [], unserve: [], awaitingPromotion: false, done: false, state: { ...view.state }, mark: '' };
  for (const instance of fresh) {
    const failure = failureOf(instance, status(instance.id));
    if (failure) return { ...decision, failure, mark: 'failed' };
  }

  if (update.strategy === 'blue-green') blueGreen(view, readyFresh, decision);
  else if (update.strategy === 'in-place') inPlace(view, readyFresh, decision);
  else if (update.strategy === 'canary' && view.state.promotedAt === undefined) canary(view, readyFresh, decision);
  else rolling(view, readyFresh, decision);

  const oldLeft = old.length - decision.remove.length - decision.rebuild.length;
  decision.done = oldLeft === 0 && readyFresh.length >= replicas && !decision.awaitingPromotion;
  decision.mark = `${readyFresh.length}/${fresh.length}/${oldLeft}/${decision.state.switchedAt ?? ''}/${decision.state.promotedAt ?? ''}`;
  return decision;
}

function rolling({ replicas, update, old, fresh, status }: EntryRollout, readyFresh: Instance[], d: RolloutDecision): void {
  const surge = resolveCount(update.maxSurge, replicas, 'up');
  const unavailable = resolveCount(update.maxUnavailable, replicas, 'down');
  const total = old.length + fresh.length;
  d.create = Math.max(0, Math.min(replicas - fresh.length, replicas + surge - total));
  // Old instances that are not serving anyway can go at once; serving ones while enough stay available.
  const [idle, serving] = partition(old, (i) => !running(status(i.id)));
  const available = readyFresh.length + serving.length;
  const removable = Math.max(0, available - (replicas - unavailable));
  d.remove = [...idle, ...serving.slice(0, Math.min(serving.length, removable))];
  if (d.create > 0 || d.remove.length > 0) d.note = `rolling: ${readyFresh.length}/${replicas} new healthy, starting ${d.create}, stopping ${d.remove.length} old`;
}

function blueGreen({ replicas, update, old, fresh, now }: EntryRollout, readyFresh: Instance[], d: RolloutDecision): void {
  if (d.state.switchedAt === undefined) {
    d.create = Math.max(0, replicas - fresh.length);
    d.serving = false;
    if (readyFresh.length >= replicas) {
      d.serve = fresh.filter((i) => i.serving === false);
      d.unserve = old.filter((i) => i.serving !== false);
      d.state.switchedAt = now;
      d.note = `blue-green: ${replicas} new instances healthy; traffic switched to them, old set kept for ${formatDuration(update.keepOld)}`;
    }
    return;
  }
  // Switched: the new set serves; one of it lost since is replaced, serving at once.
  d.create = Math.max(0, replicas - fresh.length);
  if (now - d.state.switchedAt >= update.keepOld) {
    d.remove = old;
    if (old.length > 0) d.note = `blue-green: removing the ${old.length} old instances`;
  }
}

function inPlace({ replicas, update, old, fresh, status }: EntryRollout, readyFresh: Instance[], d: RolloutDecision): void {
  const atOnce = Math.max(1, resolveCount(update.maxUnavailable, replicas, 'down'));
  const underway = fresh.length - readyFresh.length;
  // Those not serving anyway first, then the rest, a few at a time.
  const order = [...old].sort((a, b) => Number(running(status(a.id))) - Number(running(status(b.id))));
  d.rebuild = order.slice(0, Math.max(0, atOnce - underway));
  if (d.rebuild.length > 0) d.note = `in-place: rebuilding ${d.rebuild.map((i) => i.id).join(', ')} (${readyFresh.length}/${replicas} done)`;
}

function canary(view: EntryRollout, readyFresh: Instance[], d: RolloutDecision): void {
  const { replicas, update, fresh, now } = view;
  const count = Math.max(1, Math.min(replicas, resolveCount(update.canary, replicas, 'up')));
  d.create = Math.max(0, count - fresh.length);
  if (readyFresh.length < count) return;
  d.state.canaryHealthyAt ??= now;
  if (update.autoPromote !== undefined && now - d.state.canaryHealthyAt >= update.autoPromote) {
    d.state.promotedAt = now;
    rolling(view, readyFresh, d);
    const promoted = `canary: ${count} healthy for ${formatDuration(update.autoPromote)}; promoted automatically`;
    d.note = d.note ? `${promoted}; ${d.note}` : promoted;
    return;
  }
  d.awaitingPromotion = true;
}

function partition<T>(items: T[], test: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (test(item) ? yes : no).push(item);
  return [yes, no];
}
