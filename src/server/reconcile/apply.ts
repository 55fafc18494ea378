// The one write path of reconciliation: a Plan becomes one store transaction. Every record the
// plan changes is guarded by the modRevision the view saw it at, and every node it allocates
// on by that node's allocation mark, so a pass racing another writer (a restart request, an
// operator's cordon, a second server) fails as a whole and is planned again on fresh data,
// rather than overwriting what it did not see.
import type { Compare, TxnOp } from '../../store/store.js';
import { STORE } from '../keys.js';
import type { RemovalRecord } from '../../model/types.js';
import type { Plan } from './plan.js';

export interface Revisions {
  /** The modRevision the view saw the record at `key` with (0: it saw none). */
  of(key: string): number;
  /** The modRevision of a node's allocation mark as the view saw it. */
  alloc(node: string): number;
}

export function writesOf(plan: Plan, seen: Revisions, now: number): { compares: Compare[]; ops: TxnOp[] } {
  const compares: Compare[] = [];
  const ops: TxnOp[] = [];
  const guarded = (key: string, op: TxnOp) => {
    compares.push({ key, target: 'modRevision', op: '==', value: seen.of(key) });
    ops.push(op);
  };
  for (const instance of plan.creates) {
    const key = STORE.instances.key(instance.app, instance.id);
    guarded(key, { type: 'put', key, value: STORE.instances.encode(instance) });
  }
  for (const instance of plan.updates) {
    const key = STORE.instances.key(instance.app, instance.id);
    guarded(key, { type: 'put', key, value: STORE.instances.encode(instance) });
  }
  // A status set and a forgetting of the same instance in one pass: the forgetting comes last.
  for (const status of plan.statuses) {
    const key = STORE.statuses.key(status.id);
    guarded(key, { type: 'put', key, value: STORE.statuses.encode(status) });
  }
  for (const { instance, unconfirmed } of plan.deletes) {
    const key = STORE.instances.key(instance.app, instance.id);
    guarded(key, { type: 'delete', key });
    ops.push({ type: 'delete', key: STORE.statuses.key(instance.id) });
    if (unconfirmed) {
      const removal: RemovalRecord = { id: instance.id, node: instance.node, app: instance.app, entry: instance.entry, reason: `removed while node ${instance.node} was away`, at: now };
      ops.push({ type: 'put', key: STORE.removals.key(instance.node, instance.id), value: STORE.removals.encode(removal) });
    }
  }
  for (const rollout of plan.rollouts) {
    const key = STORE.rollouts.key(rollout.app);
    guarded(key, { type: 'put', key, value: STORE.rollouts.encode(rollout) });
  }
  for (const app of plan.apps) {
    const key = STORE.apps.key(app.name);
    guarded(key, { type: 'put', key, value: STORE.apps.encode(app) });
  }
  const guards = allocGuards(plan.guards, seen, now);
  return { compares: [...compares, ...guards.compares], ops: [...ops, ...guards.ops] };
}

/** The allocation guard of each node: it must be as the view saw it, and the write bumps it for everyone else. */
export function allocGuards(nodes: Iterable<string>, seen: Pick<Revisions, 'alloc'>, now: number): { compares: Compare[]; ops: TxnOp[] } {
  const compares: Compare[] = [];
  const ops: TxnOp[] = [];
  for (const node of new Set(nodes)) {
    const key = STORE.alloc.key(node);
    compares.push({ key, target: 'modRevision', op: '==', value: seen.alloc(node) });
    ops.push({ type: 'put', key, value: STORE.alloc.encode({ at: now }) });
  }
  return { compares, ops };
}
