// Terminal sessions relayed to agents: what the client types goes to the node's agent, what the
// shell prints comes back, under a session id this server made; until the shell ends, the client
// closes it, or the connection it was opened on closes (the agent ends its shells with it; a newer
// connection of the same node does not know them). An agent only ever speaks for sessions on its
// own node.
import { randomUUID } from 'node:crypto';
import type { AgentConnections, Session } from './connections.js';
import { MAX_TERMINALS_PER_NODE } from '../../model/terminal.js';

/** How long a closed session waits for its agent to say the shell ended. */
const CLOSE_CONFIRM_MS = 5000;

export interface TerminalHandlers {
  onOutput: (data: string) => void;
  /** Once: the shell's exit code, or why there is none (it could not start, the agent went away). */
  onExit: (code: number | null, error?: string) => void;
}

/** The client's side of an open session. */
export interface TerminalLink {
  input(data: string): void;
  resize(cols: number, rows: number): void;
  /** Hangs the shell up; onExit follows when the agent says it ended (or at once, when the agent is gone). */
  close(): void;
}

export class TerminalRelays {
  private readonly sessions = new Map<string, TerminalHandlers & { node: string; connection: Session }>();

  constructor(private readonly connections: AgentConnections) {}

  open(node: string, instanceId: string, size: { cols: number; rows: number; command?: string[] }, handlers: TerminalHandlers): TerminalLink | undefined {
    if (this.openOn(node) >= MAX_TERMINALS_PER_NODE) {
      handlers.onExit(null, `node ${node} has ${MAX_TERMINALS_PER_NODE} terminals open, the most it takes; close some first`);
      return undefined;
    }
    const sessionId = randomUUID();
    const connection = this.connections.byNode.get(node);
    if (!connection || !this.connections.send(node, { type: 'terminal.open', sessionId, instanceId, ...size })) {
      handlers.onExit(null, `the agent of node ${node} is not connected`);
      return undefined;
    }
    this.sessions.set(sessionId, { ...handlers, node, connection });
    // Only while the connection it was opened on is the node's: a newer one does not know the session.
    const live = () => this.sessions.has(sessionId) && this.connections.byNode.get(node) === connection;
    return {
      input: (data) => void (live() && this.connections.send(node, { type: 'terminal.input', sessionId, data })),
      resize: (cols, rows) => void (live() && this.connections.send(node, { type: 'terminal.resize', sessionId, cols, rows })),
      close: () => {
        if (!this.sessions.has(sessionId)) return;
        if (!live() || !this.connections.send(node, { type: 'terminal.close', sessionId })) return this.end(sessionId, null, `the agent of node ${node} is not connected`);
        // The agent answers with the shell's end; one that does not (gone quiet) still frees the session.
        setTimeout(() => this.end(sessionId, null, `the agent of node ${node} did not confirm the end`), CLOSE_CONFIRM_MS).unref();
      },
    };
  }

  output(node: string, sessionId: string, data: string): void {
    this.sessionOf(node, sessionId)?.onOutput(data);
  }

  exited(node: string, sessionId: string, code: number | null, error?: string): void {
    if (this.sessionOf(node, sessionId)) this.end(sessionId, code, error);
  }

  /** A connection of the node's agent closed: the sessions opened on it end (not those of a newer one). */
  disconnected(node: string, connection: Session): void {
    for (const [id, session] of this.sessions) if (session.node === node && session.connection === connection) this.end(id, null, `the agent of node ${node} disconnected`);
  }

  private end(sessionId: string, code: number | null, error?: string): void {
    const session = this.sessions.get(sessionId);
    if (!session) return;
    this.sessions.delete(sessionId);
    session.onExit(code, error);
  }

  private openOn(node: string): number {
    let open = 0;
    for (const session of this.sessions.values()) if (session.node === node) open++;
    return open;
  }

  private sessionOf(node: string, sessionId: string): (TerminalHandlers & { node: string }) | undefined {
    const session = this.sessions.get(sessionId);
    return session?.node === node ? session : undefined;
  }
}
