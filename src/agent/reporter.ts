// What the agent tells the server it saw: instance statuses and events. Both go out as soon as
// they happen (batched per turn of the event loop), not at the next tick; while the server cannot
// be reached they wait (statuses: the latest of each instance; events: the last MAX_QUEUED_EVENTS)
// and go out on reconnection. The statuses are also kept in the agent's cache, so an agent
// restarted while the server is down still knows restart counts and start times; the file is
// rewritten only when a status changed, not when the same statuses are sent again.
import type { AgentToServer } from '../model/agent-protocol.js';
import type { GantryEvent, InstanceStatus } from '../model/types.js';
import type { AgentCache } from './cache.js';

const MAX_QUEUED_EVENTS = 2000;
/**
 * Every status goes out again with every this many heartbeats (about half a minute). A connection
 * loses nothing while it is up, and a new one begins with every status in its hello; this only
 * repairs what a server lost otherwise, and at every heartbeat it would be the server's biggest
 * load (a 150,000-instance fleet resending 30,000 statuses a second).
 */
export const RESEND_EVERY_HEARTBEATS = 6;

export interface ReporterOptions {
  send(message: AgentToServer): boolean;
  cache: AgentCache;
  /** Every status the node has now, for the cache. */
  statuses(): InstanceStatus[];
  nodeName(): string;
}

export class Reporter {
  private readonly unsent = new Map<string, InstanceStatus>();
  private readonly events: GantryEvent[] = [];
  private unsaved = false;
  private flushScheduled = false;
  private heartbeats = 0;

  constructor(private readonly options: ReporterOptions) {}

  status(status: InstanceStatus): void {
    this.unsent.set(status.id, status);
    this.unsaved = true;
    this.flushSoon();
  }

  event(event: Omit<GantryEvent, 'time'>): void {
    this.events.push({ ...event, node: this.options.nodeName(), time: Date.now() });
    if (this.events.length > MAX_QUEUED_EVENTS) this.events.splice(0, this.events.length - MAX_QUEUED_EVENTS);
    this.flushSoon();
  }

  /** At a heartbeat: now and then every status again, so a report the server lost is repaired. */
  heartbeat(statuses: () => Iterable<InstanceStatus>): void {
    if (++this.heartbeats % RESEND_EVERY_HEARTBEATS !== 0) return;
    for (const status of statuses()) this.unsent.set(status.id, status);
  }

  flush(): void {
    if (this.unsaved) this.unsaved = !this.options.cache.saveStatuses(this.options.statuses());
    if (this.unsent.size > 0 && this.options.send({ type: 'status', statuses: [...this.unsent.values()] })) this.unsent.clear();
    if (this.events.length > 0 && this.options.send({ type: 'events', events: this.events })) this.events.length = 0;
  }

  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }
}
