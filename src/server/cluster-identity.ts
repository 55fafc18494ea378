// The cluster's identity: a random id made at the first start and kept in the store. Each agent
// remembers the id of the cluster that gave it its instances, so a server whose store is not
// that cluster's (emptied, started with --init, restored from another cluster's backup) is
// recognised as such: the agent keeps everything it runs and reports it for adoption, instead
// of taking "no assignments" as an instruction.
import { randomUUID } from 'node:crypto';
import type { Store } from '../store/store.js';
import { STORE, type ClusterIdentity } from './keys.js';

export type { ClusterIdentity } from './keys.js';

const KEY = STORE.cluster.key;

/** The stored identity, made (once, compare-and-swap) when the store has none. */
export async function clusterIdentity(store: Store): Promise<ClusterIdentity> {
  const current = await store.get(KEY);
  if (current) return STORE.cluster.decode(current.value);
  const identity: ClusterIdentity = { id: randomUUID(), createdAt: Date.now() };
  const result = await store.txn({ compare: [{ key: KEY, target: 'version', op: '==', value: 0 }], success: [{ type: 'put', key: KEY, value: STORE.cluster.encode(identity) }] });
  return result.succeeded ? identity : clusterIdentity(store);
}
