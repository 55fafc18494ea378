// Marks a node down when its agent has not been heard from for `timeoutMs`. Liveness is messages
// received, not a socket that looks open: a frozen agent, a cut link or a powered-off host
// leaves a half-open TCP connection that says nothing, and such a node must be replaced all the
// same. What was heard and when is kept in memory by the agent hub (AgentContact); a server that
// just started gives every node the full timeout again, so a server restart never declares the
// fleet dead and reschedules it.
import type { Store } from '../../store/store.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import { ConflictError } from '../errors.js';
import type { EventLog } from '../services/events.js';

/** What this server process knows of a node's agent, by its own clock (ms since the epoch). */
export interface AgentContact {
  /** The last valid message from the agent (a heartbeat, a status, anything). */
  heardAt?: number;
  /** The last time its connection was closed by the agent or the network (not by us for silence). */
  closedAt?: number;
  /** A connection of the agent is open (it says nothing of whether the agent is alive). */
  connected: boolean;
}

export class NodeController {
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly contact: (node: string) => AgentContact,
    private readonly timeoutMs: number,
    /** The registry keys of the endpoints the node's agent registered. */
    private readonly endpointKeysOf: (node: string) => string[] = () => [],
  ) {}

  /**
   * The rule: a node is down once `now - lastAlive >= timeoutMs`, lastAlive being the latest of
   * the last message heard from its agent, the clean close of its connection, and this server's
   * start. The close counts because a killed or restarting agent was there until its socket
   * closed, possibly most of a heartbeat interval after its last heartbeat: counting only from
   * that heartbeat would declare a node with a 5 s timeout down 3.5 s after it died with 1.5 s
   * of a 5 s heartbeat interval gone. A frozen or cut-off agent closes nothing, so its silence
   * counts from its last message; it froze at most one heartbeat interval after that, so it is
   * declared between (timeout - heartbeat) and (timeout + one check period) after freezing.
   * check() runs every reconcile interval (1 s by default) plus the time the pass takes.
   */
  async check(now = Date.now()): Promise<void> {
    for (const node of [...this.state.nodes.values()]) {
      if (node.state === 'down') continue;
      const silentFor = now - this.lastAlive(node.name);
      if (silentFor >= this.timeoutMs) await this.markDown(node.name);
    }
  }

  private lastAlive(node: string): number {
    const { heardAt = 0, closedAt = 0 } = this.contact(node);
    return Math.max(heardAt, closedAt, this.startedAt);
  }

  private async markDown(name: string): Promise<void> {
    let silentFor = 0;
    // Compare-and-swap: a heartbeat written meanwhile must not be overwritten by a stale 'down'
    // (its instances would be replaced while it runs them). Its endpoints leave the registry in
    // the same write, so DNS and nginx stop sending traffic there at once, not when their lease lapses.
    const written = await casUpdate(this.store, STORE.nodes.key(name), STORE.nodes, (record) => {
      // Judged again after the read: a message may have come while an earlier node was written.
      silentFor = Date.now() - this.lastAlive(name);
      if (!record || record.state === 'down' || silentFor < this.timeoutMs) return UNCHANGED;
      return { ...record, state: 'down' as const };
    }, { also: () => this.endpointKeysOf(name).map((key) => ({ type: 'delete' as const, key })), attempts: 1, what: `node ${name}` }).catch((err: unknown) => {
      if (err instanceof ConflictError) return { revision: undefined };
      throw err;
    });
    if (written.revision === undefined) return;
    await this.state.waitFor(written.revision);
    const { connected } = this.contact(name);
    const why = connected ? ' (its connection is still open: the agent is frozen or cut off)' : '';
    this.events.note({ level: 'error', type: 'node.down', node: name, message: `node ${name} has not been heard from for ${(silentFor / 1000).toFixed(1)}s (node timeout ${this.timeoutMs / 1000}s)${why}; its endpoints left the registry` });
  }
}
