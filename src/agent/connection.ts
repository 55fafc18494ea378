// The agent's link to the server: one WebSocket, reconnected with backoff for as long as the
// agent runs. While it is down the agent keeps working; reports queue up and flush on return.
import WebSocket from 'ws';
import type { AgentToServer, ServerToAgent } from '../model/agent-protocol.js';

export interface ConnectionOptions {
  server: string;
  token: string;
  /** First message on every (re)connection. */
  hello: () => AgentToServer;
  onMessage: (message: ServerToAgent) => void;
  onState?: (connected: boolean, detail: string) => void;
}

export class ServerConnection {
  private socket: WebSocket | undefined;
  private closed = false;
  private retryMs = 250;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ConnectionOptions) {
    this.connect();
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** False when not connected: the caller keeps what it must resend. */
  send(message: AgentToServer): boolean {
    if (!this.connected) return false;
    this.socket!.send(JSON.stringify(message));
    return true;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.close(1001, 'agent stopping');
  }

  private connect(): void {
    const url = new URL('/v1/agent/connect', this.options.server.replace(/^http/, 'ws'));
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.options.token}` }, handshakeTimeout: 5000 });
    this.socket = socket;
    socket.on('open', () => {
      this.retryMs = 250;
      socket.send(JSON.stringify(this.options.hello()));
      this.options.onState?.(true, `connected to ${this.options.server}`);
    });
    socket.on('message', (data) => {
      try {
        this.options.onMessage(JSON.parse(String(data)) as ServerToAgent);
      } catch {
        // A message we cannot read is dropped; the next full assignment set repairs state.
      }
    });
    socket.on('unexpected-response', (_req, response) => {
      this.options.onState?.(false, `server refused the connection: HTTP ${response.statusCode}`);
      socket.terminate();
    });
    socket.on('error', () => {}); // 'close' follows and schedules the retry
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (this.closed) return;
      this.options.onState?.(false, `disconnected from ${this.options.server}`);
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    });
  }
}
