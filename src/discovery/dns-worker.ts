// A worker process of DnsServer (option `workers`): answers UDP queries on the socket its
// parent sends it, from a copy of the endpoints that the parent sends on every change.
// Exits when the parent goes away.
import type dgram from 'node:dgram';
import type { Endpoint } from '../model/registry.js';
import type { EndpointSource } from './source.js';
import { DnsResponder, serveUdp, type DnsWorkerMessage } from './dns.js';

class SnapshotSource implements EndpointSource {
  private endpoints: Endpoint[] = [];
  private readonly listeners = new Set<(revision: number) => void>();
  revision = 0;

  list(): Endpoint[] {
    return this.endpoints;
  }

  find(app: string, env: string, entry: string): Endpoint[] {
    return this.endpoints.filter((e) => e.app === app && e.env === env && e.entry === entry);
  }

  subscribe(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  update(revision: number, endpoints: Endpoint[]): void {
    this.endpoints = endpoints;
    this.revision = revision;
    for (const listener of this.listeners) listener(revision);
  }
}

const source = new SnapshotSource();
let responder: DnsResponder | undefined;

process.on('message', (message: DnsWorkerMessage, handle?: dgram.Socket) => {
  switch (message.type) {
    case 'init':
      responder = new DnsResponder(source, message.options);
      break;
    case 'endpoints':
      source.update(message.revision, message.endpoints);
      break;
    case 'socket':
      if (!responder || !handle) return process.exit(1);
      serveUdp(handle, responder);
      process.send?.({ type: 'ready' });
      break;
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
