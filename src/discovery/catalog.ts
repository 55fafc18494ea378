// The registry as discovery front ends see it: every endpoint in memory, indexed by key,
// app/env/entry and node, fed by one store watch on /registry/. Each batch of store events is
// handed on as the keys it put or deleted, so a front end can apply just that; and the node
// index keeps onNode() (every agent heartbeat asks it) from reading the whole registry.
import type { Store, Watcher, WatchEvent } from '../store/store.js';
import { REGISTRY_PREFIX, type Endpoint } from '../model/registry.js';
import { keyOrder, type ChangeListener, type EndpointChange, type EndpointSource } from './source.js';

export class EndpointCatalog implements EndpointSource {
  private readonly byKey = new Map<string, Endpoint>();
  private readonly byEntry = new Map<string, Map<string, Endpoint>>();
  private readonly byNode = new Map<string, Map<string, Endpoint>>();
  private readonly leases = new Map<string, string>();
  private readonly listeners = new Set<ChangeListener>();
  private watcher: Watcher | undefined;
  revision = 0;

  static async load(store: Store): Promise<EndpointCatalog> {
    const catalog = new EndpointCatalog();
    const { kvs, revision } = await store.range(REGISTRY_PREFIX);
    for (const kv of kvs) catalog.put(kv.key, JSON.parse(kv.value) as Endpoint, kv.lease);
    catalog.revision = revision;
    catalog.watcher = store.watch(REGISTRY_PREFIX, (events) => catalog.apply(events), { fromRevision: revision + 1 });
    return catalog;
  }

  list(): Endpoint[] {
    return this.entries().map(([, e]) => e);
  }

  entries(): [string, Endpoint][] {
    return [...this.byKey].sort(keyOrder);
  }

  find(app: string, env: string, entry: string): Endpoint[] {
    return [...(this.byEntry.get(`${app}/${env}/${entry}`)?.values() ?? [])];
  }

  /** The endpoint under a registry key, if any. */
  get(key: string): Endpoint | undefined {
    return this.byKey.get(key);
  }

  /** Endpoints that an agent registered for a node. */
  onNode(node: string): Endpoint[] {
    return [...(this.byNode.get(node)?.values() ?? [])];
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.watcher?.close();
  }

  private apply(events: WatchEvent[]): void {
    const changes: EndpointChange[] = [];
    for (const event of events) {
      const key = event.kv.key;
      if (event.type === 'put') {
        const endpoint = JSON.parse(event.kv.value) as Endpoint;
        this.put(key, endpoint, event.kv.lease);
        changes.push({ type: 'put', key, endpoint });
      } else if (this.remove(key)) {
        changes.push({ type: 'delete', key });
      }
      this.revision = event.revision;
    }
    for (const listener of this.listeners) listener(this.revision, changes);
  }

  /** The lease holding a registry key, if any. */
  leaseOf(key: string): string | undefined {
    return this.leases.get(key);
  }

  private put(key: string, endpoint: Endpoint, lease: string | undefined): void {
    this.remove(key);
    this.byKey.set(key, endpoint);
    if (lease) this.leases.set(key, lease);
    add(this.byEntry, `${endpoint.app}/${endpoint.env}/${endpoint.entry}`, key, endpoint);
    if (typeof endpoint.node === 'string') add(this.byNode, endpoint.node, key, endpoint);
  }

  private remove(key: string): boolean {
    const endpoint = this.byKey.get(key);
    if (!endpoint) return false;
    this.byKey.delete(key);
    this.leases.delete(key);
    drop(this.byEntry, `${endpoint.app}/${endpoint.env}/${endpoint.entry}`, key);
    if (typeof endpoint.node === 'string') drop(this.byNode, endpoint.node, key);
    return true;
  }
}

function add(index: Map<string, Map<string, Endpoint>>, group: string, key: string, endpoint: Endpoint): void {
  let members = index.get(group);
  if (!members) index.set(group, (members = new Map()));
  members.set(key, endpoint);
}

function drop(index: Map<string, Map<string, Endpoint>>, group: string, key: string): void {
  const members = index.get(group);
  if (!members) return;
  members.delete(key);
  if (members.size === 0) index.delete(group);
}
