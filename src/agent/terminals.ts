// Terminals the server opens in this node's instances (for the console and `gantry exec`): each
// a shell from the instance's runtime, its output sent back under the session's id, until the
// shell ends, the server closes the session, or the connection to the server drops (a session
// nobody can see any more is hung up).
import { MAX_TERMINAL_DATA, MAX_TERMINALS_PER_NODE, ServerTerminalMessageSchema, terminalChunks, type ServerTerminalMessage } from '../model/terminal.js';
import type { AgentToServer } from '../model/agent-protocol.js';
import type { Runtime, Terminal } from '../runtime/runtime.js';

interface Pending {
  closed: boolean;
  input: string;
  size?: { cols: number; rows: number };
}

export class AgentTerminals {
  private readonly open = new Map<string, Terminal>();
  /**
   * Sessions whose shell is being started: what comes meanwhile (input typed at once, a resize,
   * a close) is kept here and applied once it runs; input only up to one message's worth.
   */
  private readonly starting = new Map<string, Pending>();

  constructor(
    private readonly send: (message: AgentToServer) => boolean,
    /** The runtime the instance runs on, if it is on this node. */
    private readonly runtimeOf: (instanceId: string) => Runtime | undefined,
    private readonly nodeName: () => string,
  ) {}

  /** A terminal message from the server, checked like everything an agent acts on. */
  handle(raw: ServerTerminalMessage): void {
    const parsed = ServerTerminalMessageSchema.safeParse(raw);
    if (!parsed.success) {
      const sessionId = typeof (raw as { sessionId?: unknown }).sessionId === 'string' ? (raw as { sessionId: string }).sessionId.slice(0, 64) : undefined;
      if (sessionId) this.send({ type: 'terminal.exit', sessionId, code: null, error: `invalid terminal message: ${parsed.error.issues[0]?.message ?? 'malformed'}` });
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'terminal.open':
        return void this.start(message);
      case 'terminal.input': {
        const pending = this.starting.get(message.sessionId);
        if (pending && pending.input.length + message.data.length <= MAX_TERMINAL_DATA) pending.input += message.data;
        return this.open.get(message.sessionId)?.write(message.data);
      }
      case 'terminal.resize': {
        const pending = this.starting.get(message.sessionId);
        if (pending) pending.size = { cols: message.cols, rows: message.rows };
        return this.open.get(message.sessionId)?.resize(message.cols, message.rows);
      }
      case 'terminal.close': {
        const pending = this.starting.get(message.sessionId);
        if (pending) pending.closed = true;
        return this.open.get(message.sessionId)?.close();
      }
    }
  }

  /** Hangs up every terminal (the server connection dropped, or the agent stops). */
  closeAll(): void {
    for (const pending of this.starting.values()) pending.closed = true;
    for (const terminal of this.open.values()) terminal.close();
  }

  private async start(message: Extract<ServerTerminalMessage, { type: 'terminal.open' }>): Promise<void> {
    const { sessionId, instanceId } = message;
    const refuse = (error: string) => void this.send({ type: 'terminal.exit', sessionId, code: null, error });
    if (this.open.has(sessionId) || this.starting.has(sessionId)) return refuse('a terminal session with this id is open already');
    if (this.open.size + this.starting.size >= MAX_TERMINALS_PER_NODE) return refuse(`node ${this.nodeName()} has ${MAX_TERMINALS_PER_NODE} terminals open, the most it takes`);
    const runtime = this.runtimeOf(instanceId);
    if (!runtime) return refuse(`instance ${instanceId} is not on node ${this.nodeName()}`);
    const pending: Pending = { closed: false, input: '' };
    this.starting.set(sessionId, pending);
    let terminal: Terminal;
    try {
      terminal = await runtime.terminal(instanceId, { cols: message.cols, rows: message.rows, ...(message.command ? { command: message.command } : {}) });
    } catch (err) {
      return refuse(err instanceof Error ? err.message.slice(0, 4000) : String(err));
    } finally {
      this.starting.delete(sessionId);
    }
    this.open.set(sessionId, terminal);
    terminal.onData((data) => {
      for (const chunk of terminalChunks(data)) {
        // Nobody to read it any more: the shell is hung up rather than left running unseen.
        if (!this.send({ type: 'terminal.output', sessionId, data: chunk })) return terminal.close();
      }
    });
    terminal.onExit((code) => {
      this.open.delete(sessionId);
      this.send({ type: 'terminal.exit', sessionId, code });
    });
    if (pending.size) terminal.resize(pending.size.cols, pending.size.rows);
    if (pending.input) terminal.write(pending.input);
    if (pending.closed) terminal.close();
  }
}
