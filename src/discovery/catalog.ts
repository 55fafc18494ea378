// The registry as discovery front ends see it: every endpoint in memory, indexed by
// app/env/entry, fed by one store watch on /registry/ and signalling each change.
import type { Store, Watcher, WatchEvent } from '../store/store.js';
import { REGISTRY_PREFIX, type Endpoint } from '../model/registry.js';
import type { EndpointSource } from './source.js';

export class EndpointCatalog implements EndpointSource {
  private readonly byKey = new Map<string, Endpoint>();
  private readonly byEntry = new Map<string, Map<string, Endpoint>>();
  private readonly leases = new Map<string, string>();
  private readonly listeners = new Set<(revision: number) => void>();
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
    return [...this.byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
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
    return [...this.byKey.values()].filter((e) => e.node === node);
  }

  subscribe(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.watcher?.close();
  }

  private apply(events: WatchEvent[]): void {
    for (const event of events) {
      if (event.type === 'put') this.put(event.kv.key, JSON.parse(event.kv.value) as Endpoint, event.kv.lease);
      else this.remove(event.kv.key);
      this.revision = event.revision;
    }
    for (const listener of this.listeners) listener(this.revision);
  }

  /** The lease holding a registry key, if any. */
  leaseOf(key: string): string | undefined {
    return this.leases.get(key);
  }

  private put(key: string, endpoint: Endpoint, lease: string | undefined): void {
    this.remove(key);
    this.byKey.set(key, endpoint);
    if (lease) this.leases.set(key, lease);
    const group = `${endpoint.app}/${endpoint.env}/${endpoint.entry}`;
    if (!this.byEntry.has(group)) this.byEntry.set(group, new Map());
    this.byEntry.get(group)!.set(key, endpoint);
  }

  private remove(key: string): void {
    const endpoint = this.byKey.get(key);
    if (!endpoint) return;
    this.byKey.delete(key);
    this.leases.delete(key);
    const group = `${endpoint.app}/${endpoint.env}/${endpoint.entry}`;
    this.byEntry.get(group)?.delete(key);
    if (this.byEntry.get(group)?.size === 0) this.byEntry.delete(group);
  }
}
