// Gantry's DNS server: answers A/AAAA and SRV for `{entry}.{app}.{env}.{domain}` (and
// `_{port}._tcp.{entry}...`, `{id}.{entry}...`) from an EndpointSource, over UDP and TCP.
// Authoritative for `domain` only (REFUSED elsewhere, RA=0), NXDOMAIN/NODATA with an SOA,
// FORMERR for malformed queries, EDNS(0) with the client's UDP size, TC when an answer does
// not fit.
//
// This file holds the sockets: UDP and TCP on one port, and the optional UDP worker processes
// (dns-worker.ts). TCP connections are managed as RFC 7766 §6.2 suggests: idle ones are closed
// (sooner when they never sent a query), and when the server or one client address is at its
// connection cap, a newcomer evicts the longest-idle connection instead of being refused, so
// idle connections cannot lock legitimate clients out. The answers come from DnsResponder
// (dns-responder.ts), which answers from a name index with pre-encoded answers (dns-index.ts);
// the query parser and wire helpers are in dns-wire.ts.
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../model/registry.js';
import type { EndpointSource } from './source.js';
import { DnsResponder, type DnsResponderOptions } from './dns-responder.js';
import { MAX_MESSAGE } from './dns-wire.js';

export { DnsResponder, type DnsResponderOptions } from './dns-responder.js';
export { RCODE, wireKey } from './dns-wire.js';

export interface DnsOptions {
  /** Zone we are authoritative for. Default 'gantry.local'. */
  domain?: string;
  /** TTL of every record, and the negative-caching TTL (SOA minimum), in seconds. Default 5. */
  ttl?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Same port for UDP and TCP. Default 5353; 0 picks a free one. */
  port?: number;
  /** Largest UDP answer we send whatever the client's EDNS size (and the size we advertise). Default 1232. */
  maxUdpSize?: number;
  /**
   * A TCP connection with no complete query for this long is closed. The bytes of an
   * unfinished query do not count as activity (a slowloris is idle); a client catching up on
   * answers it had not read does. Default 10 s.
   */
  tcpIdleTimeoutMs?: number;
  /**
   * A TCP connection that has not sent a complete query this long after it opened is closed.
   * Default 2 s (never more than tcpIdleTimeoutMs).
   */
  tcpFirstQueryTimeoutMs?: number;
  /**
   * Open TCP connections at most. At the cap a new connection is still accepted: the
   * connection that has been idle longest (preferring one with no answer still being
   * written) is closed to make room. Default 1000.
   */
  maxTcpConnections?: number;
  /**
   * Open TCP connections from one client address at most (IPv4-mapped IPv6 addresses count
   * as their IPv4 address). Past it, that client's own longest-idle connection is closed to
   * make room. Default 100.
   */
  maxTcpConnectionsPerClient?: number;
  /** Kernel receive buffer of the UDP socket, in bytes (absorbs bursts). Default 4 MiB (capped by net.core.rmem_max). */
  udpRecvBufferSize?: number;
  /**
   * Extra processes answering UDP on the same socket (the kernel hands each datagram to one
   * of them), each with its own copy of the endpoints sent over IPC on change (so they lag
   * this process by an IPC hop). TCP stays here. Default 0.
   */
  workers?: number;
}

/** Answers every datagram arriving on `socket` with `responder`. */
export function serveUdp(socket: dgram.Socket, responder: DnsResponder): void {
  socket.on('message', (msg, rinfo) => {
    const out = responder.answer(msg);
    if (out !== undefined) socket.send(out, rinfo.port, rinfo.address);
  });
  socket.on('error', () => {}); // e.g. ICMP unreachable surfacing on send: nothing to do
}

/** Messages from DnsServer to its worker processes (dns-worker.ts). */
export type DnsWorkerMessage =
  | { type: 'init'; options: DnsResponderOptions }
  | { type: 'endpoints'; revision: number; endpoints: Endpoint[] }
  | { type: 'socket' };

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

const workerScript = fileURLToPath(import.meta.url).replace(/dns\.(ts|js)$/, 'dns-worker.$1');

/** A DNS server (UDP and TCP on the same port) answering from an EndpointSource. */
export class DnsServer {
  readonly responder: DnsResponder;
  private readonly host: string;
  private readonly port: number;
  private readonly tcpIdleTimeoutMs: number;
  private readonly tcpFirstQueryTimeoutMs: number;
  private readonly maxTcpConnections: number;
  private readonly maxTcpConnectionsPerClient: number;
  private readonly udpRecvBufferSize: number;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  /** Open TCP connections, longest idle first (moved to the end on each query). */
  private readonly connections = new Map<net.Socket, TcpConnection>();
  /** The same per client address, in the same order. */
  private readonly clients = new Map<string, Map<net.Socket, TcpConnection>>();
  private readonly workerCount: number;
  private readonly workers = new Set<ChildProcess>();
  private unsubscribeWorkers: (() => void) | undefined;
  private syncScheduled = false;
  private stopping = false;

  constructor(private readonly source: EndpointSource, options: DnsOptions = {}) {
    this.responder = new DnsResponder(source, options);
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 5353;
    this.tcpIdleTimeoutMs = options.tcpIdleTimeoutMs ?? 10_000;
    this.tcpFirstQueryTimeoutMs = Math.min(options.tcpFirstQueryTimeoutMs ?? 2_000, this.tcpIdleTimeoutMs);
    this.maxTcpConnections = Math.max(1, Math.floor(options.maxTcpConnections ?? 1000));
    this.maxTcpConnectionsPerClient = Math.max(1, Math.floor(options.maxTcpConnectionsPerClient ?? 100));
    this.udpRecvBufferSize = options.udpRecvBufferSize ?? 4 * 1024 * 1024;
    this.workerCount = Math.max(0, Math.floor(options.workers ?? 0));
  }

  async start(): Promise<{ port: number }> {
    if (this.udp) throw new Error('DNS server already started');
    this.responder.open();
    this.responder.rebuild();
    // Port 0: take a free UDP port, then the same for TCP; retry if TCP's is taken.
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(this.port);
      const port = udp.address().port;
      try {
        this.tcp = await this.listenTcp(port);
        this.udp = udp;
      } catch (error) {
        udp.close();
        if (this.port !== 0 || attempt >= 10) throw error;
        continue;
      }
      this.stopping = false;
      if (this.workerCount > 0) {
        this.unsubscribeWorkers = this.source.subscribe(() => this.scheduleSync());
        try {
          await Promise.all(Array.from({ length: this.workerCount }, () => this.startWorker()));
        } catch (error) {
          await this.stop();
          throw error;
        }
      }
      return { port };
    }
  }

  private workerOptions(): DnsResponderOptions {
    return { domain: this.responder.domain, ttl: this.responder.ttl, maxUdpSize: this.responder.maxUdpSize };
  }

  private startWorker(): Promise<void> {
    // From the TypeScript sources the worker needs tsx, which may have been registered in
    // code (bin/gantry) rather than by a flag that fork would pass on.
    const execArgv = workerScript.endsWith('.ts') && !process.execArgv.some((arg) => arg.includes('tsx')) ? [...process.execArgv, '--import', 'tsx'] : process.execArgv;
    const child = fork(workerScript, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.workers.add(child);
    const send = (message: DnsWorkerMessage, handle?: dgram.Socket) => child.send(message, handle as never, () => {});
    send({ type: 'init', options: this.workerOptions() });
    send({ type: 'endpoints', revision: this.source.revision, endpoints: this.source.list() });
    send({ type: 'socket' }, this.udp);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`DNS worker exited (${signal ?? code}) before it was ready`));
      child.once('exit', onExit);
      child.once('message', () => {
        child.off('exit', onExit);
        child.once('exit', () => {
          this.workers.delete(child);
          // Replace a worker that died while we run (the socket is still open here).
          if (!this.stopping && this.udp) setTimeout(() => void this.startWorker().catch(() => {}), 1000).unref();
        });
        resolve();
      });
    });
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      if (this.workers.size === 0) return;
      const message: DnsWorkerMessage = { type: 'endpoints', revision: this.source.revision, endpoints: this.source.list() };
      for (const child of this.workers) if (child.connected) child.send(message, undefined, undefined, () => {});
    });
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    this.stopping = true;
    this.unsubscribeWorkers?.();
    this.unsubscribeWorkers = undefined;
    await Promise.all(
      [...this.workers].map((child) => {
        this.workers.delete(child);
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        return exited;
      }),
    );
    this.responder.close();
    for (const connection of [...this.connections.values()]) this.dropTcp(connection);
    await Promise.all([
      udp && new Promise<void>((resolve) => udp.close(() => resolve())),
      tcp && new Promise<void>((resolve) => tcp.close(() => resolve())),
    ]);
  }

  private bindUdp(port: number): Promise<dgram.Socket> {
    const type = net.isIPv6(this.host) ? 'udp6' : 'udp4';
    // The lookup is only used for the client's address, always an IP literal: answer at once
    // instead of through dns.lookup (which defers to the next tick).
    const socket = dgram.createSocket({
      type,
      lookup: (address: string, _options: unknown, callback: (err: Error | null, address: string, family: number) => void) =>
        callback(null, address, type === 'udp6' ? 6 : 4),
    } as dgram.SocketOptions);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: this.host, exclusive: true }, () => {
        socket.off('error', reject);
        serveUdp(socket, this.responder);
        try {
          socket.setRecvBufferSize(this.udpRecvBufferSize);
        } catch {
          // the kernel's limit applies
        }
        resolve(socket);
      });
    });
  }

  private listenTcp(port: number): Promise<net.Server> {
    // No server.maxConnections: at the cap it refuses newcomers, which lets idle connections
    // lock everyone out. serveTcp makes room instead.
    const server = net.createServer({ noDelay: true }, (socket) => this.serveTcp(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: this.host, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', () => {});
        resolve(server);
      });
    });
  }

  private serveTcp(socket: net.Socket): void {
    socket.on('error', () => {});
    const address = socket.remoteAddress;
    if (address === undefined || this.tcp === undefined) {
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
