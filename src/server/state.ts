// The server's in-memory view of the cluster, fed by one store watch (the informer pattern):
// API reads and the controllers never query the store per request. Instances are indexed by
// app and by node, so a reader pays for what it asks about, not for the size of the fleet; each
// record's modRevision is kept, so a write of a record read from here can be guarded with it.
import { isDeepStrictEqual } from 'node:util';
import type { Store, WatchEvent } from '../store/store.js';
import type { AppRecord, Instance, InstanceStatus, NodeRecord, PoolRecord, RegistryLoginRecord, RemovalRecord, RolloutRecord, TeamRecord } from '../model/types.js';
import type { ConfigRecord, SecretRecord } from '../model/types.js';
import type { EntrySpec } from '../model/spec.js';
import { STORE, lastSegment } from './keys.js';

export type ChangeKind = 'app' | 'instance' | 'status' | 'node' | 'alloc' | 'pool' | 'rollout' | 'removal' | 'registry-login' | 'team' | 'secret' | 'config';
/** `before`: the value the cache held for the key until this change (undefined when new). */
type Listener = (kind: ChangeKind, key: string, before: unknown) => void;

const PREFIXES: [string, ChangeKind][] = [
  [STORE.apps.prefix, 'app'],
  [STORE.instances.prefix, 'instance'],
  [STORE.statuses.prefix, 'status'],
  [STORE.nodes.prefix, 'node'],
  [STORE.alloc.prefix, 'alloc'],
  [STORE.pools.prefix, 'pool'],
  [STORE.rollouts.prefix, 'rollout'],
  [STORE.removals.prefix, 'removal'],
  [STORE.registryLogins.prefix, 'registry-login'],
  [STORE.teams.prefix, 'team'],
  [STORE.secrets.prefix, 'secret'],
  [STORE.configs.prefix, 'config'],
];

/** A map of maps: one key's records by their id. */
class Index<T> {
  private readonly groups = new Map<string, Map<string, T>>();
  add(group: string, id: string, value: T): void {
    let members = this.groups.get(group);
    if (!members) this.groups.set(group, (members = new Map()));
    members.set(id, value);
  }
  remove(group: string, id: string): void {
    const members = this.groups.get(group);
    if (!members) return;
    members.delete(id);
    if (members.size === 0) this.groups.delete(group);
  }
  values(group: string): T[] {
    return [...(this.groups.get(group)?.values() ?? [])];
  }
  size(group: string): number {
    return this.groups.get(group)?.size ?? 0;
  }
}

/**
 * One copy of each entry spec that many instances share (all instances of an entry at a
 * release have the same): at a fleet's size, a decoded copy per instance is most of the
 * cache's memory. Records in the cache are read-only, so sharing is safe.
 */
class SpecPool {
  private readonly shared = new Map<string, { spec: EntrySpec; users: number }>();

  /** The instance with its spec replaced by the shared copy, when it is the same. */
  take(instance: Instance): Instance {
    const key = `${instance.app}/${instance.entry}/${instance.release}`;
    const entry = this.shared.get(key);
    if (!entry) {
      this.shared.set(key, { spec: instance.spec, users: 1 });
      return instance;
    }
    if (entry.spec !== instance.spec && !isDeepStrictEqual(entry.spec, instance.spec)) return instance;
    entry.users++;
    return entry.spec === instance.spec ? instance : { ...instance, spec: entry.spec };
  }

  /** The instance (as taken) is gone from the cache. */
  give(instance: Instance): void {
    const key = `${instance.app}/${instance.entry}/${instance.release}`;
    const entry = this.shared.get(key);
    if (!entry || entry.spec !== instance.spec) return;
    if (--entry.users === 0) this.shared.delete(key);
  }
}

export class ClusterState {
  readonly apps = new Map<string, AppRecord>();
  readonly instances = new Map<string, Instance>();
  readonly statuses = new Map<string, InstanceStatus>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly pools = new Map<string, PoolRecord>();
  readonly rollouts = new Map<string, RolloutRecord>();
  /** Pull credentials by registry host (passwords sealed). */
  readonly registryLogins = new Map<string, RegistryLoginRecord>();
  /** Teams by name, with their members' roles (the access check reads them on every request). */
  readonly teams = new Map<string, TeamRecord>();
  /** Team secrets by `team/name` (values sealed): who uses which is asked of the apps' specs. */
  readonly secrets = new Map<string, SecretRecord>();
  /** Team configs' current versions by `team/name`. */
  readonly configs = new Map<string, ConfigRecord>();
  /** By instance id: instances removed while their node was away, until the node confirms. */
  readonly removals = new Map<string, RemovalRecord>();
  /** Per node, the modRevision of its /alloc/ key as this cache last saw it (0: none yet). */
  readonly allocRevisions = new Map<string, number>();
  private readonly specs = new SpecPool();
  private readonly byApp = new Index<Instance>();
  private readonly byNode = new Index<Instance>();
  private readonly removalsByNode = new Index<RemovalRecord>();
  /** The modRevision of every record held, by key. */
  private readonly revisions = new Map<string, number>();
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

  /** The modRevision of the record at `key` as this cache holds it (0: none). */
  modRevision(key: string): number {
    return this.revisions.get(key) ?? 0;
  }

  instancesOf(app: string, entry?: string): Instance[] {
    const all = this.byApp.values(app);
    return entry === undefined ? all : all.filter((i) => i.entry === entry);
  }

  instancesOnNode(node: string): Instance[] {
    return this.byNode.values(node);
  }

  countOnNode(node: string): number {
    return this.byNode.size(node);
  }

  /** Ids of the instances `node` must remove although no assignment names them any more. */
  removalsOnNode(node: string): string[] {
    return this.removalsByNode.values(node).map((r) => r.id);
  }

  close(): void {
    this.closeWatch?.();
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }

  private onEvents(events: WatchEvent[]): void {
    const changed: [ChangeKind, string, unknown][] = [];
    for (const event of events) {
      const match = PREFIXES.find(([prefix]) => event.kv.key.startsWith(prefix));
      if (match) {
        const before = this.apply(match[1], event.kv.key, event.type === 'put' ? event.kv.value : undefined, event.kv.modRevision);
        changed.push([match[1], event.kv.key, before]);
      }
      this.revision = Math.max(this.revision, event.revision);
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.revision <= this.revision) this.waiters.splice(i, 1)[0]!.resolve();
    }
    for (const [kind, key, before] of changed) for (const listener of this.listeners) listener(kind, key, before);
  }

  /** Applies one change; returns what the cache held for the key before it. */
  private apply(kind: ChangeKind, key: string, value: string | undefined, modRevision: number): unknown {
    const id = lastSegment(key);
    if (value === undefined) this.revisions.delete(key);
    else this.revisions.set(key, modRevision);
    switch (kind) {
      case 'alloc': {
        const before = this.allocRevisions.get(id);
        if (value === undefined) this.allocRevisions.delete(id);
        else this.allocRevisions.set(id, modRevision);
        return before;
      }
      case 'instance': {
        const before = this.instances.get(id);
        if (before) {
          this.byApp.remove(before.app, id);
          this.byNode.remove(before.node, id);
          this.specs.give(before);
        }
        if (value === undefined) this.instances.delete(id);
        else {
          const instance = this.specs.take(STORE.instances.decode(value));
          this.instances.set(id, instance);
          this.byApp.add(instance.app, id, instance);
          this.byNode.add(instance.node, id, instance);
        }
        return before;
      }
      case 'secret':
      case 'config': {
        // Keyed by team/name: a name alone is not unique across teams.
        const [map, codec] = kind === 'secret' ? [this.secrets as Map<string, unknown>, STORE.secrets] : [this.configs as Map<string, unknown>, STORE.configs];
        const ref = key.slice(codec.prefix.length);
        const before = map.get(ref);
        if (value === undefined) map.delete(ref);
        else map.set(ref, codec.decode(value));
        return before;
      }
      case 'removal': {
        const before = this.removals.get(id);
        if (before) this.removalsByNode.remove(before.node, id);
        if (value === undefined) this.removals.delete(id);
        else {
          const removal = STORE.removals.decode(value);
          this.removals.set(id, removal);
          this.removalsByNode.add(removal.node, id, removal);
        }
        return before;
      }
      default: {
        const map: Map<string, unknown> = { app: this.apps, status: this.statuses, node: this.nodes, pool: this.pools, rollout: this.rollouts, 'registry-login': this.registryLogins, team: this.teams }[kind];
        const codec = { app: STORE.apps, status: STORE.statuses, node: STORE.nodes, pool: STORE.pools, rollout: STORE.rollouts, 'registry-login': STORE.registryLogins, team: STORE.teams }[kind];
        const before = map.get(id);
        if (value === undefined) map.delete(id);
        else map.set(id, codec.decode(value));
        return before;
      }
    }
  }
}
