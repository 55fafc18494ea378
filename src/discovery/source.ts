// What discovery front ends (DNS, upstream renderer, Prometheus SD) read: the registered
// endpoints, kept current in memory, and a signal when they change.
import type { Endpoint } from '../model/registry.js';

export interface EndpointSource {
  /** Every registered endpoint, in key order. */
  list(): Endpoint[];
  /** Endpoints of one entrypoint of one app in one environment. */
  find(app: string, env: string, entry: string): Endpoint[];
  /** Store revision the current view reflects. */
  readonly revision: number;
  /** Called after every change (possibly several changes at once); returns an unsubscribe. */
  subscribe(listener: (revision: number) => void): () => void;
}

/** An in-memory source that tests and benchmarks can fill by hand. */
export class StaticEndpointSource implements EndpointSource {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly listeners = new Set<(revision: number) => void>();
  revision = 0;

  list(): Endpoint[] {
    return [...this.endpoints.values()];
  }

  find(app: string, env: string, entry: string): Endpoint[] {
    return this.list().filter((e) => e.app === app && e.env === env && e.entry === entry);
  }

  set(endpoint: Endpoint): void {
    this.endpoints.set(`${endpoint.app}/${endpoint.env}/${endpoint.entry}/${endpoint.id}`, endpoint);
    this.changed();
  }

  delete(endpoint: Pick<Endpoint, 'app' | 'env' | 'entry' | 'id'>): void {
    this.endpoints.delete(`${endpoint.app}/${endpoint.env}/${endpoint.entry}/${endpoint.id}`);
    this.changed();
  }

  subscribe(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    this.revision++;
    for (const listener of this.listeners) listener(this.revision);
  }
}
