// A worker process of DnsServer (option `workers`): answers UDP queries on the socket its
// parent sends it, from its own copy of the registry: the whole of it once (a `sync`), then the
// changes the parent sends, applied to the names they touch. A message of changes that does
// not follow on from the revision it has means it missed some: it asks for a sync and keeps
// answering from what it has meanwhile. Exits when the parent goes away.
import type dgram from 'node:dgram';
import type { Endpoint } from '../model/registry.js';
import { keyOrder, type ChangeListener, type EndpointChange, type EndpointSource } from './source.js';
import { DnsResponder, serveUdp, type DnsWorkerMessage, type DnsWorkerReply } from './dns.js';

/** The parent's registry as far as its messages have told. */
class ReplicaSource implements EndpointSource {
  private endpoints = new Map<string, Endpoint>();
  private readonly listeners = new Set<ChangeListener>();
  revision = 0;

  list(): Endpoint[] {
    return this.entries().map(([, e]) => e);
  }

  entries(): [string, Endpoint][] {
    return [...this.endpoints].sort(keyOrder);
  }

  find(app: string, env: string, entry: string): Endpoint[] {
    return [...this.endpoints.values()].filter((e) => e.app === app && e.env === env && e.entry === entry);
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces everything; listeners are not told (whoever syncs rebuilds). */
  reset(revision: number, entries: [string, Endpoint][]): void {
    this.endpoints = new Map(entries);
    this.revision = revision;
  }

  /** Applies the changes after `from`; false when `from` is past what we have (a gap). */
  apply(from: number, revision: number, changes: EndpointChange[]): boolean {
    if (from > this.revision) return false;
    if (revision <= this.revision) return true; // nothing we do not have
    for (const change of changes) {
      if (change.type === 'put') this.endpoints.set(change.key, change.endpoint);
      else this.endpoints.delete(change.key);
    }
    this.revision = revision;
    for (const listener of this.listeners) listener(revision, changes);
    return true;
  }
}

const source = new ReplicaSource();
let responder: DnsResponder | undefined;
let resyncAsked = false;
const reply = (message: DnsWorkerReply) => process.send?.(message);

process.on('message', (message: DnsWorkerMessage, handle?: dgram.Socket) => {
  switch (message.type) {
    case 'init':
      responder = new DnsResponder(source, message.options);
      break;
    case 'sync':
      source.reset(message.revision, message.entries);
      responder?.rebuild();
      resyncAsked = false;
      break;
    case 'changes':
      if (source.apply(message.from, message.revision, message.changes) || resyncAsked) break;
      resyncAsked = true; // once: the sync covers every change until it arrives
      reply({ type: 'resync', revision: source.revision });
      break;
    case 'socket':
      if (!responder || !handle) return process.exit(1);
      serveUdp(handle, responder);
      reply({ type: 'ready' });
      break;
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
