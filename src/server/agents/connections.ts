// The agent connections themselves: which socket speaks for which node, one message at a time per
// socket, checked against the protocol's schemas first (a malformed one closes that socket, with
// an event, and nothing it said is used).
//
// It also keeps, in memory, when each node's agent was last heard from (the node controller's
// liveness evidence: storing every message would cost too much), and pings every socket so one
// left half-open by a frozen agent, a cut link or a host powered off is terminated.
import type { WebSocket } from 'ws';
import { AgentToServerSchema, type ServerToAgent, type ValidAgentMessage } from '../../model/agent-protocol.js';
import type { NodeInfo, NodeRecord } from '../../model/types.js';
import { problemsFromZod } from '../../model/spec.js';
import type { Caller } from '../auth.js';
import { Refusal } from '../agent-trust.js';
import type { EventLog } from '../services/events.js';
import type { AgentContact } from '../controllers/nodes.js';

/** One agent connection: who opened it and, once admitted, the node it speaks for. */
export interface Session {
  socket: WebSocket;
  caller: Caller;
  node?: string;
  info?: NodeInfo;
  /** The last time anything (a message, a pong) came on this socket: the socket's liveness. */
  seenAt: number;
  /** Terminated by us for not answering pings: not a close that restarts the node's timeout. */
  unresponsive?: boolean;
  /** Its hello said it takes assignments.changed (else it gets the whole set each time). */
  takesChanges?: boolean;
  /** Its hello said it pre-pulls images on request. */
  prepulls?: boolean;
  /** Its hello said it resolves image tags through its engine on request. */
  resolves?: boolean;
  /** Its hello said it runs node inspection checks (it is sent the policy). */
  inspects?: boolean;
  /** Its hello said it opens terminals in its instances. */
  terminals?: boolean;
  /** When its inspection results were last stored. */
  inspectedAt?: number;
  /** What it last said of its node, and the record that was stored then: a heartbeat that says the same again is not compared field by field. */
  registered?: { info: string; record: NodeRecord | undefined };
}

/** What is done with what comes on the connections. */
export interface AgentMessageHandler {
  /** One valid message; a Refusal it throws closes the socket. */
  handle(session: Session, message: ValidAgentMessage): Promise<void>;
  /** Handling the message failed (other than by a Refusal), before the error is noted as an event. */
  failed(session: Session, message: ValidAgentMessage, err: Error): void;
  /** The socket of an admitted node closed; `current`: it was the node's connection, not one a newer connection replaced. */
  closed(node: string, current: boolean): void;
}

/**
 * A socket silent (no pong, no message) this long is terminated: three pings unanswered, but
 * never less than 5 s, so a loaded host's few-second stall costs no reconnection.
 */
export function unresponsiveAfterMs(heartbeatMs: number): number {
  return Math.max(3 * heartbeatMs, 5000);
}

export class AgentConnections {
  private readonly sessions = new Map<string, Session>();
  private readonly open = new Set<Session>();
  /** Per node: the last valid message from its agent. */
  private readonly heardAt = new Map<string, number>();
  /** Per node: when its current connection was last closed other than by us for silence. */
  private readonly closedAt = new Map<string, number>();
  private readonly pingEveryMs: number;
  private readonly pinger: NodeJS.Timeout;
  private lastPingRound = Date.now();

  constructor(
    private readonly events: EventLog,
    private readonly heartbeatMs: number,
    private readonly handler: AgentMessageHandler,
  ) {
    this.pingEveryMs = Math.max(250, heartbeatMs);
    this.pinger = setInterval(() => this.pingAll(), this.pingEveryMs);
    this.pinger.unref();
  }

  /** Per node, the admitted connection that speaks for it. */
  get byNode(): ReadonlyMap<string, Session> {
    return this.sessions;
  }

  isConnected(node: string): boolean {
    return this.sessions.has(node);
  }

  /** What this server heard of the node's agent since it started (the node controller's evidence). */
  contact(node: string): AgentContact {
    return { heardAt: this.heardAt.get(node), closedAt: this.closedAt.get(node), connected: this.sessions.has(node) };
  }

  /** Closes the connections opened with this token (it was revoked); returns how many. */
  disconnectToken(tokenName: string): number {
    let closed = 0;
    for (const session of this.open) {
      if (session.caller.name !== tokenName) continue;
      session.socket.close(4001, 'token revoked');
      closed++;
    }
    return closed;
  }

  accept(socket: WebSocket, caller: Caller): void {
    const session: Session = { socket, caller, seenAt: Date.now() };
    this.open.add(session);
    socket.on('pong', () => (session.seenAt = Date.now()));
    // One message at a time per agent: a withdrawal must not overtake the registration before it.
    let queue: Promise<void> = Promise.resolve();
    socket.on('message', (data, isBinary) => {
      const at = (session.seenAt = Date.now());
      const message = this.parse(session, data, isBinary);
      if (!message) return;
      // Heard when it arrived, not when the queue reaches it: a slow store must not make a live
      // node look silent. A hello names its node only once handled, hence the second call.
      this.heard(session, at);
      queue = queue
        .then(() => (session.socket.readyState === session.socket.OPEN ? this.handler.handle(session, message).then(() => this.heard(session, at)) : undefined))
        .catch((err: Error) => {
          if (err instanceof Refusal) return this.drop(session, err.message);
          this.handler.failed(session, message, err);
          this.events.note({ level: 'error', type: 'agent.error', node: session.node, message: `handling ${message.type} from ${this.who(session)}: ${err.message}` });
        });
    });
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      this.open.delete(session);
      const node = session.node;
      if (!node) return;
      const current = this.sessions.get(node) === session;
      if (current) {
        this.sessions.delete(node);
        // The agent was there until its socket closed (killed, restarting): its timeout counts
        // from now. Not so for a socket we terminated for silence: that agent was not there.
        if (!session.unresponsive) this.closedAt.set(node, Date.now());
      }
      this.handler.closed(node, current);
    });
  }

  /** The session speaks for `node` from now on: a connection that spoke for it before is closed. */
  admit(session: Session, node: string): void {
    const previous = this.sessions.get(node);
    if (previous && previous !== session) previous.socket.close(4000, 'replaced by a newer connection');
    this.sessions.set(node, session);
  }

  send(node: string, message: ServerToAgent): boolean {
    const socket = this.sessions.get(node)?.socket;
    if (!socket || socket.readyState !== socket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  close(): void {
    clearInterval(this.pinger);
    for (const session of this.open) session.socket.close(1001, 'server shutting down');
  }

  private heard(session: Session, at: number): void {
    const node = session.node;
    if (node !== undefined && at > (this.heardAt.get(node) ?? 0)) this.heardAt.set(node, at);
  }

  /**
   * Pings every socket and terminates one that answered nothing for unresponsiveAfterMs: the
   * kernel keeps a half-open connection to a frozen or unreachable agent for many minutes, and
   * `ws` answers pings from the agent's event loop, so a pong proves the agent process runs.
   */
  private pingAll(): void {
    const now = Date.now();
    // A round that comes late means this server was stalled: pongs may be waiting unread in its
    // buffers, so none is judged in this round.
    const late = now - this.lastPingRound > 2 * this.pingEveryMs;
    this.lastPingRound = now;
    const limitMs = unresponsiveAfterMs(this.heartbeatMs);
    for (const session of this.open) {
      const { socket } = session;
      if (socket.readyState !== socket.OPEN) continue;
      const silentMs = now - session.seenAt;
      if (!late && silentMs > limitMs) {
        session.unresponsive = true;
        this.events.note({ level: 'warning', type: 'agent.unresponsive', node: session.node, message: `terminated the connection of ${this.who(session)}: no answer to pings for ${(silentMs / 1000).toFixed(1)}s` });
        socket.terminate();
        continue;
      }
      socket.ping();
    }
  }

  /** The message, if it is one; otherwise the socket is closed with the reason. */
  private parse(session: Session, data: unknown, isBinary: boolean): ValidAgentMessage | undefined {
    let decoded: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      decoded = JSON.parse(String(data));
    } catch {
      this.drop(session, 'invalid message: not JSON text');
      return undefined;
    }
    const result = AgentToServerSchema.safeParse(decoded);
    if (result.success) return result.data;
    const problems = problemsFromZod(result.error).slice(0, 3).map((p) => `${p.path || '(message)'}: ${p.message}`).join('; ');
    this.drop(session, `invalid message: ${problems}`);
    return undefined;
  }

  private drop(session: Session, reason: string): void {
    this.events.note({ level: 'warning', type: 'agent.refused', node: session.node, message: `closed the connection of ${this.who(session)}: ${reason}` });
    // A close reason is at most 123 bytes.
    session.socket.close(1008, Buffer.from(reason).subarray(0, 120).toString());
  }

  private who(session: Session): string {
    return `${session.node ? `node ${session.node}` : 'an agent'} (token "${session.caller.name}")`;
  }
}
