// The server's in-memory view of the cluster, fed by one store watch (the informer pattern):
// API reads and the controllers never query the store per request.
import type { Store, WatchEvent } from '../store/store.js';
import type { AppRecord, Instance, InstanceStatus, NodeRecord, PoolRecord, RemovalRecord, RolloutRecord } from '../model/types.js';

export const KEYS = {
  app: (name: string) => `/apps/${name}`,
  instance: (app: string, id: string) => `/instances/${app}/${id}`,
  status: (id: string) => `/status/${id}`,
  node: (name: string) => `/nodes/${name}`,
  /** Bumped with every placement on a node: the compare-and-swap guard against double allocation. */
  alloc: (node: string) => `/alloc/${node}`,
  pool: (name: string) => `/pools/${name}`,
  rollout: (app: string) => `/rollouts/${app}`,
  /** An instance removed without its node's confirmation (the node was down): the node is told to remove it. */
  removal: (node: string, id: string) => `/removals/${node}/${id}`,
};

export type ChangeKind = 'app' | 'instance' | 'status' | 'node' | 'alloc' | 'pool' | 'rollout' | 'removal';
type Listener = (kind: ChangeKind, key: string) => void;

const PREFIXES: [string, ChangeKind][] = [
  ['/apps/', 'app'],
  ['/instances/', 'instance'],
  ['/status/', 'status'],
  ['/nodes/', 'node'],
  ['/alloc/', 'alloc'],
  ['/pools/', 'pool'],
  ['/rollouts/', 'rollout'],
  ['/removals/', 'removal'],
];

export class ClusterState {
  readonly apps = new Map<string, AppRecord>();
  readonly instances = new Map<string, Instance>();
  readonly statuses = new Map<string, InstanceStatus>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly pools = new Map<string, PoolRecord>();
  readonly rollouts = new Map<string, RolloutRecord>();
  /** By instance id: instances removed while their node was away, until the node confirms. */
  readonly removals = new Map<string, RemovalRecord>();
  /** Per node, the modRevision of its /alloc/ key as this cache last saw it (0: none yet). */
  readonly allocRevisions = new Map<string, number>();
  private revision = 0;
  private readonly listeners = new Set<Listener>();
  private readonly waiters: { revision: number; resolve: () => void }[] = [];
  private closeWatch: (() => void) | undefined;

  private constructor(private readonly store: Store) {}

  static async load(store: Store): Promise<ClusterState> {
    const state = new ClusterState(store);
    let revision = 0;
    for (const [prefix, kind] of PREFIXES) {
      const { kvs, revision: rev } = await store.range(prefix);
      revision = Math.max(revision, rev);
      for (const kv of kvs) state.apply(kind, kv.key, kv.value, kv.modRevision);
    }
    state.revision = revision;
    const watcher = store.watch('/', (events) => state.onEvents(events), { fromRevision: revision + 1 });
    state.closeWatch = () => watcher.close();
    return state;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once the cache has seen every change up to `revision` (after a write of our own). */
  waitFor(revision: number): Promise<void> {
    if (this.revision >= revision) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ revision, resolve }));
  }

  /** The store's revision now (may be ahead of what this cache has seen). */
  currentRevision(): Promise<number> {
    return this.store.revision();
  }

  instancesOf(app: string, entry?: string): Instance[] {
    return [...this.instances.values()].filter((i) => i.app === app && (entry === undefined || i.entry === entry));
  }

  instancesOnNode(node: string): Instance[] {
    return [...this.instances.values()].filter((i) => i.node === node);
  }

  /** Ids of the instances `node` must remove although no assignment names them any more. */
  removalsOnNode(node: string): string[] {
    return [...this.removals.values()].filter((r) => r.node === node).map((r) => r.id);
  }

  close(): void {
    this.closeWatch?.();
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }

  private onEvents(events: WatchEvent[]): void {
    const changed: [ChangeKind, string][] = [];
    for (const event of events) {
      const match = PREFIXES.find(([prefix]) => event.kv.key.startsWith(prefix));
      if (match) {
        this.apply(match[1], event.kv.key, event.type === 'put' ? event.kv.value : undefined, event.kv.modRevision);
        changed.push([match[1], event.kv.key]);
      }
      this.revision = Math.max(this.revision, event.revision);
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.revision <= this.revision) this.waiters.splice(i, 1)[0]!.resolve();
    }
    for (const [kind, key] of changed) for (const listener of this.listeners) listener(kind, key);
  }

  private apply(kind: ChangeKind, key: string, value: string | undefined, modRevision: number): void {
    const id = key.slice(key.lastIndexOf('/') + 1);
    if (kind === 'alloc') {
      if (value === undefined) this.allocRevisions.delete(id);
      else this.allocRevisions.set(id, modRevision);
      return;
    }
    const map: Map<string, unknown> = { app: this.apps, instance: this.instances, status: this.statuses, node: this.nodes, pool: this.pools, rollout: this.rollouts, removal: this.removals }[kind];
    if (value === undefined) map.delete(id);
    else map.set(id, JSON.parse(value));
  }
}
