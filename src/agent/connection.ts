// The agent's link to the server: one WebSocket, reconnected with backoff for as long as the
// agent runs. While it is down the agent keeps working; reports queue up and flush on return.
// A link that only looks open (a cut network, a server host gone: the kernel keeps a half-open
// connection for many minutes) is noticed by silence: the server pings every heartbeat, so
// nothing at all from it for a few heartbeats ends the connection and a new one is tried.
import WebSocket from 'ws';
import type { AgentToServer, ServerToAgent } from '../model/agent-protocol.js';

export interface ConnectionOptions {
  server: string;
  /** Asked on every (re)connection: the server may hand a joining node a token of its own. */
  token: () => string;
  /** First message on every (re)connection. */
  hello: () => AgentToServer;
  onMessage: (message: ServerToAgent) => void;
  onState?: (connected: boolean, detail: string) => void;
  /** PEM CA certificate(s) the server's certificate must chain to (wss://); default: Node's CAs. */
  ca?: string | Buffer;
}

const REPEAT_FAILURE_MS = 60_000;
/** Silence that ends a connection before the server's welcome said how often it heartbeats. */
const SILENCE_BEFORE_WELCOME_MS = 30_000;
const SILENCE_CHECK_EVERY_MS = 1000;

/**
 * Silence (no message, no ping) that ends a connection once the server announced its heartbeat:
 * three of its pings missed, never less than 5 s (the server's own bound for our pongs).
 */
export function silenceLimitMs(heartbeatMs: number): number {
  return Math.max(3 * heartbeatMs, 5000);
}

/** OpenSSL's verification codes, as Node reports them on a failed TLS handshake. */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/;

/** Why a connection attempt failed, in a line; for a certificate the agent could not verify, what to do. */
export function describeConnectError(err: Error & { code?: string }, server: string): string {
  const code = err.code ?? '';
  if (CERT_ERROR.test(code)) {
    return `TLS: cannot verify the server's certificate (${code}: ${err.message}); give the CA that signed it with --ca FILE`;
  }
  if (code === 'EPROTO' && /wrong version number|packet length too long/i.test(err.message) && server.startsWith('https')) {
    return `TLS handshake failed (${err.message}): the server may not use TLS; try http://`;
  }
  const what = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  if (code === 'ECONNRESET' && !server.startsWith('https')) return `${what} (if the server uses TLS, use an https:// URL)`;
  return what;
}

export class ServerConnection {
  private socket: WebSocket | undefined;
  private closed = false;
  private retryMs = 250;
  private timer: NodeJS.Timeout | undefined;
  /** The failure last logged, so a repeat of it is not logged every few seconds. */
  private lastFailure: { reason: string; at: number } | undefined;

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
    const socket = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.options.token()}` },
      handshakeTimeout: 5000,
      ...(this.options.ca !== undefined ? { ca: this.options.ca } : {}),
    });
    this.socket = socket;
    let failure: string | undefined;
    let opened = false;
    let heardAt = Date.now();
    let limitMs = SILENCE_BEFORE_WELCOME_MS;
    let lastCheck = Date.now();
    const heard = () => (heardAt = Date.now());
    const watchdog = setInterval(() => {
      const now = Date.now();
      // A check that runs late means this process was stalled (frozen, starved of CPU): what the
      // server sent meanwhile may be waiting unread, so it is not judged silent until read.
      const late = now - lastCheck > 3 * SILENCE_CHECK_EVERY_MS;
      lastCheck = now;
      if (late || socket.readyState !== WebSocket.OPEN || now - heardAt <= limitMs) return;
      failure ??= `nothing from the server for ${((now - heardAt) / 1000).toFixed(1)}s (the network or the server is gone)`;
      socket.terminate();
    }, SILENCE_CHECK_EVERY_MS);
    watchdog.unref();
    socket.on('ping', heard);
    socket.on('pong', heard);
    socket.on('open', () => {
      opened = true;
      heard();
      this.lastFailure = undefined;
      this.retryMs = 250;
      socket.send(JSON.stringify(this.options.hello()));
      this.options.onState?.(true, `connected to ${this.options.server}`);
    });
    socket.on('message', (data) => {
      heard();
      try {
        const message = JSON.parse(String(data)) as ServerToAgent;
        if (message.type === 'welcome' && typeof message.heartbeatMs === 'number' && message.heartbeatMs > 0) limitMs = silenceLimitMs(message.heartbeatMs);
        this.options.onMessage(message);
      } catch {
        // A message we cannot read is dropped; the next full assignment set repairs state.
      }
    });
    socket.on('unexpected-response', (_req, response) => {
      failure = `server refused the connection: HTTP ${response.statusCode}`;
      socket.terminate();
    });
    // 'close' follows and schedules the retry; the first reason heard is kept for its message.
    socket.on('error', (err) => (failure ??= describeConnectError(err, this.options.server)));
    socket.on('close', (code, reason) => {
      clearInterval(watchdog);
      // The server says why it closed (a refused hello, a revoked token, an invalid message).
      if (opened && reason.length > 0) failure ??= `closed by the server (${code}: ${String(reason)})`;
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (this.closed) return;
      if (opened || failure === undefined) this.options.onState?.(false, `disconnected from ${this.options.server}${failure ? `: ${failure}` : ''}`);
      else if (failure !== this.lastFailure?.reason || Date.now() - this.lastFailure.at >= REPEAT_FAILURE_MS) {
        // The same failure again and again (a server down, a certificate not trusted) is said once a minute.
        this.options.onState?.(false, `cannot connect to ${this.options.server}: ${failure}`);
        this.lastFailure = { reason: failure, at: Date.now() };
      }
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    });
  }
}
