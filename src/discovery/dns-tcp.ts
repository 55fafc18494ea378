// DNS over TCP for DnsServer (dns.ts): the listening socket, RFC 1035 §4.2.2 framing
// (TcpFramer) and the connection table. Connections are managed as RFC 7766 §6.2 suggests:
// idle ones are closed (sooner when they never sent a query), and when the server or one
// client address is at its connection cap, a newcomer evicts the longest-idle connection
// instead of being refused, so idle connections cannot lock legitimate clients out. It lives
// apart from dns.ts because none of this concerns UDP or the worker processes (TCP stays in
// the main process); the answers come from the DnsResponder it is given.
import net from 'node:net';
import type { DnsOptions } from './dns.js';
import type { DnsResponder } from './dns-responder.js';
import { MAX_MESSAGE } from './dns-wire.js';

/** The TCP options of DnsOptions (documented, with their defaults, there). */
export type TcpDnsOptions = Pick<DnsOptions, 'tcpIdleTimeoutMs' | 'tcpFirstQueryTimeoutMs' | 'maxTcpConnections' | 'maxTcpConnectionsPerClient'>;

/** A TCP connection and the time of its last complete query (or of its opening). */
interface TcpConnection {
  readonly socket: net.Socket;
  /** The client's address, the key of its per-client table. */
  readonly client: string;
  /** performance.now() of the last complete query (or drain of its answers), or of the opening. */
  lastQuery: number;
  /** Whether it has sent a complete query yet (the idle timeout applies, not the first-query one). */
  queried: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** Two-byte length prefix and the largest message it can declare. */
const MAX_FRAME = 2 + 0xffff;

/**
 * Splits a TCP byte stream into DNS messages (RFC 1035 §4.2.2: a two-byte length, then the
 * message). Complete messages are handed out as views of the chunk that holds them; only an
 * incomplete frame is copied, into a buffer that grows by doubling up to its declared size,
 * so it never holds more than 2 + 65535 bytes, and a frame trickled byte by byte costs
 * linear copying, not quadratic.
 */
export class TcpFramer {
  private buf: Buffer | undefined;
  private used = 0;

  /** Bytes of the incomplete frame held (length prefix included): at most 2 + 65535. */
  get pending(): number {
    return this.used;
  }

  /** Feeds `chunk`, calling `onMessage` for each message it completes; returns how many. */
  push(chunk: Buffer, onMessage: (msg: Buffer) => void): number {
    let count = 0;
    let offset = 0;
    if (this.used > 0 && chunk.length > 0) {
      const buf = this.buf!;
      if (this.used === 1) {
        buf[1] = chunk[0]!;
        this.used = 2;
        offset = 1;
      }
      const total = 2 + buf.readUInt16BE(0);
      const take = Math.min(total - this.used, chunk.length - offset);
      this.reserve(this.used + take, total);
      chunk.copy(this.buf!, this.used, offset, offset + take);
      this.used += take;
      offset += take;
      if (this.used < total) return 0;
      const msg = this.buf!.subarray(2, total);
      this.buf = undefined;
      this.used = 0;
      onMessage(msg);
      count++;
    }
    while (chunk.length - offset >= 2) {
      const total = 2 + chunk.readUInt16BE(offset);
      if (chunk.length - offset < total) break;
      onMessage(chunk.subarray(offset + 2, offset + total));
      offset += total;
      count++;
    }
    if (offset < chunk.length) {
      // Keep the incomplete rest (copied, so the chunk can be freed).
      const rest = chunk.length - offset;
      this.buf = Buffer.allocUnsafe(Math.min(MAX_FRAME, Math.max(rest, 512)));
      chunk.copy(this.buf, 0, offset);
      this.used = rest;
    }
    return count;
  }

  /** Room for `needed` bytes in the buffer, doubling but not past the frame's `total`. */
  private reserve(needed: number, total: number): void {
    const buf = this.buf!;
    if (buf.length >= needed) return;
    const grown = Buffer.allocUnsafe(Math.min(total, Math.max(needed, 2 * buf.length)));
    buf.copy(grown, 0, 0, this.used);
    this.buf = grown;
  }
}

/** DnsServer's TCP side: answers DNS queries over TCP connections with `responder`. */
export class TcpDnsListener {
  private readonly tcpIdleTimeoutMs: number;
  private readonly tcpFirstQueryTimeoutMs: number;
  private readonly maxTcpConnections: number;
  private readonly maxTcpConnectionsPerClient: number;
  private server: net.Server | undefined;
  /** Whether newcomers are served (from listening until stopAccepting or close). */
  private accepting = false;
  /** Open TCP connections, longest idle first (moved to the end on each query). */
  private readonly connections = new Map<net.Socket, TcpConnection>();
  /** The same per client address, in the same order. */
  private readonly clients = new Map<string, Map<net.Socket, TcpConnection>>();

  constructor(private readonly responder: DnsResponder, options: TcpDnsOptions = {}) {
    this.tcpIdleTimeoutMs = options.tcpIdleTimeoutMs ?? 10_000;
    this.tcpFirstQueryTimeoutMs = Math.min(options.tcpFirstQueryTimeoutMs ?? 2_000, this.tcpIdleTimeoutMs);
    this.maxTcpConnections = Math.max(1, Math.floor(options.maxTcpConnections ?? 1000));
    this.maxTcpConnectionsPerClient = Math.max(1, Math.floor(options.maxTcpConnectionsPerClient ?? 100));
  }

  /** Listens on `port` (exclusively) of `host`; resolves to the port, rejects if it is taken. */
  listen(port: number, host: string): Promise<number> {
    // No server.maxConnections: at the cap it refuses newcomers, which lets idle connections
    // lock everyone out. serveTcp makes room instead.
    const server = net.createServer({ noDelay: true }, (socket) => this.serveTcp(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', () => {});
        this.server = server;
        this.accepting = true;
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  /**
   * From now on a new connection is closed at once. DnsServer calls it as soon as it starts
   * stopping; the open connections are still answered until close().
   */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Closes every open connection and the listening socket. */
  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.accepting = false;
    for (const connection of [...this.connections.values()]) this.dropTcp(connection);
    return server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
  }

  private serveTcp(socket: net.Socket): void {
    socket.on('error', () => {});
    const address = socket.remoteAddress;
    if (address === undefined || !this.accepting) {
      socket.destroy(); // already gone, or arriving while we stop
      return;
    }
    const client = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
    // Make room: first within this client's share, then within the whole.
    const mine = this.clients.get(client);
    if (mine !== undefined && mine.size >= this.maxTcpConnectionsPerClient) this.dropTcp(longestIdle(mine));
    if (this.connections.size >= this.maxTcpConnections) this.dropTcp(longestIdle(this.connections));
    let own = this.clients.get(client); // dropTcp deletes a table it empties
    if (own === undefined) this.clients.set(client, (own = new Map()));

    const connection: TcpConnection = { socket, client, lastQuery: performance.now(), queried: false, timer: undefined };
    this.connections.set(socket, connection);
    own.set(socket, connection);
    this.armIdleTimer(connection);
    socket.on('close', () => this.dropTcp(connection));

    const framer = new TcpFramer();
    let corked = false;
    let paused = false;
    const onMessage = (msg: Buffer) => {
      const out = this.responder.answer(msg, MAX_MESSAGE);
      if (out === undefined) return;
      if (!corked) {
        socket.cork();
        corked = true;
      }
      const frame = Buffer.allocUnsafe(2 + out.length);
      frame.writeUInt16BE(out.length, 0);
      out.copy(frame, 2);
      socket.write(frame);
    };
    socket.on('data', (chunk: Buffer) => {
      const queries = framer.push(chunk, onMessage);
      if (corked) {
        corked = false;
        socket.uncork();
      }
      if (queries > 0) this.touchTcp(connection);
      // A client that sends without reading: stop reading until it catches up.
      if (socket.writableNeedDrain && !paused) {
        paused = true;
        socket.pause();
        socket.once('drain', () => {
          paused = false;
          // The client read its answers: activity, like a query (it may have sent its last
          // query long ago, and been reading since).
          this.touchTcp(connection);
          socket.resume();
        });
      }
    });
  }

  /** A complete query on `connection` (or its answers read): it is now the most recently active. */
  private touchTcp(connection: TcpConnection): void {
    if (!this.connections.has(connection.socket)) return; // dropped
    connection.lastQuery = performance.now();
    connection.queried = true;
    // Move to the end of both tables (Maps keep insertion order).
    this.connections.delete(connection.socket);
    this.connections.set(connection.socket, connection);
    const own = this.clients.get(connection.client);
    if (own !== undefined) {
      own.delete(connection.socket);
      own.set(connection.socket, connection);
    }
  }

  /**
   * Closes `connection` once it has been idle too long: the timer fires at the deadline
   * computed when it was set and re-arms itself if a query came in since (cheaper than
   * resetting a timer on every query).
   */
  private armIdleTimer(connection: TcpConnection): void {
    const timeout = connection.queried ? this.tcpIdleTimeoutMs : this.tcpFirstQueryTimeoutMs;
    const delay = Math.max(0, connection.lastQuery + timeout - performance.now());
    connection.timer = setTimeout(() => {
      connection.timer = undefined;
      if (!this.connections.has(connection.socket)) return;
      const limit = connection.queried ? this.tcpIdleTimeoutMs : this.tcpFirstQueryTimeoutMs;
      if (performance.now() - connection.lastQuery >= limit) this.dropTcp(connection);
      else this.armIdleTimer(connection);
    }, Math.ceil(delay));
    connection.timer.unref();
  }

  /** Closes `connection` and forgets it at once (its 'close' event comes later). */
  private dropTcp(connection: TcpConnection): void {
    if (connection.timer !== undefined) clearTimeout(connection.timer);
    connection.timer = undefined;
    this.connections.delete(connection.socket);
    const own = this.clients.get(connection.client);
    if (own !== undefined && own.delete(connection.socket) && own.size === 0) this.clients.delete(connection.client);
    connection.socket.destroy();
  }
}

/**
 * The connection idle longest in `table` (ordered longest idle first): the first with no
 * answer still being written, else the first of all (a client that stops reading does not
 * make its connection unevictable).
 */
function longestIdle(table: Map<net.Socket, TcpConnection>): TcpConnection {
  let first: TcpConnection | undefined;
  for (const connection of table.values()) {
    if (connection.socket.writableLength === 0) return connection;
    first ??= connection;
  }
  return first!;
}
