// What discovery front ends (DNS, upstream renderer, Prometheus SD) read: the registered
// endpoints, kept current in memory, and each change as the registry keys it touched, so that a
// front end can do work in proportion to what changed rather than to how much is registered
// (a fleet's registry is tens of thousands of endpoints; changes come every few ms).
import { registryKey, type Endpoint } from '../model/registry.js';

/** One key of the registry changing: put (with its new endpoint) or deleted. */
export type EndpointChange = { type: 'put'; key: string; endpoint: Endpoint } | { type: 'delete'; key: string };

/** Hears the changes of one revision (or of several, in order); called synchronously. */
export type ChangeListener = (revision: number, changes: readonly EndpointChange[]) => void;

export interface EndpointSource {
  /** Every registered endpoint, in key order. A full read: for start-up and rare resyncs. */
  list(): Endpoint[];
  /** list() with each endpoint's registry key (the key changes name). */
  entries(): [string, Endpoint][];
  /** Endpoints of one entrypoint of one app in one environment. */
  find(app: string, env: string, entry: string): Endpoint[];
  /** Store revision the current view reflects. */
  readonly revision: number;
  /**
   * Called after every change with what it changed; a key may appear more than once (apply in
   * order). list() already shows the changes when the listener runs. Returns an unsubscribe.
   */
  subscribe(listener: ChangeListener): () => void;
}

/** Orders [key, endpoint] pairs by key. */
export const keyOrder = (a: readonly [string, unknown], b: readonly [string, unknown]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** An in-memory source that tests and benchmarks can fill by hand, keyed like the registry. */
export class StaticEndpointSource implements EndpointSource {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly byEntry = new Map<string, Map<string, Endpoint>>();
  private readonly listeners = new Set<ChangeListener>();
  revision = 0;

  list(): Endpoint[] {
    return this.entries().map(([, e]) => e);
  }

  entries(): [string, Endpoint][] {
    return [...this.endpoints].sort(keyOrder);
  }

  find(app: string, env: string, entry: string): Endpoint[] {
    return [...(this.byEntry.get(`${app}/${env}/${entry}`)?.values() ?? [])];
  }

  set(endpoint: Endpoint): void {
    const key = registryKey(endpoint);
    this.forget(key);
    this.endpoints.set(key, endpoint);
    const entry = `${endpoint.app}/${endpoint.env}/${endpoint.entry}`;
    if (!this.byEntry.has(entry)) this.byEntry.set(entry, new Map());
    this.byEntry.get(entry)!.set(key, endpoint);
    this.changed({ type: 'put', key, endpoint });
  }

  delete(endpoint: Pick<Endpoint, 'app' | 'env' | 'entry' | 'id'>): void {
    const key = registryKey(endpoint);
    if (!this.forget(key)) return;
    this.changed({ type: 'delete', key });
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private forget(key: string): boolean {
    const old = this.endpoints.get(key);
    if (!old) return false;
    this.endpoints.delete(key);
    const entry = `${old.app}/${old.env}/${old.entry}`;
    this.byEntry.get(entry)?.delete(key);
    if (this.byEntry.get(entry)?.size === 0) this.byEntry.delete(entry);
    return true;
  }

  private changed(change: EndpointChange): void {
    this.revision++;
    const changes = [change];
    for (const listener of this.listeners) listener(this.revision, changes);
  }
}
