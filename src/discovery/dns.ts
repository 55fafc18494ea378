// Gantry's DNS server: answers A/AAAA and SRV for `{entry}.{app}.{env}.{domain}` (and
// `_{port}._tcp.{entry}...`, `{id}.{entry}...`) from an EndpointSource, over UDP and TCP.
// Authoritative for `domain` only (REFUSED elsewhere, RA=0), NXDOMAIN/NODATA with an SOA,
// FORMERR for malformed queries, EDNS(0) with the client's UDP size, TC when an answer does
// not fit.
//
// This file holds the sockets: UDP and TCP on one port, and the optional UDP worker processes
// (dns-worker.ts). The answers come from DnsResponder (dns-responder.ts), which answers from
// a name index with pre-encoded answers (dns-index.ts); the query parser and wire helpers are
// in dns-wire.ts.
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
  /** A TCP connection with no query for this long is closed. Default 10 s. */
  tcpIdleTimeoutMs?: number;
  /** Default 1000. */
  maxTcpConnections?: number;
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

const workerScript = fileURLToPath(import.meta.url).replace(/dns\.(ts|js)$/, 'dns-worker.$1');

/** A DNS server (UDP and TCP on the same port) answering from an EndpointSource. */
export class DnsServer {
  readonly responder: DnsResponder;
  private readonly host: string;
  private readonly port: number;
  private readonly tcpIdleTimeoutMs: number;
  private readonly maxTcpConnections: number;
  private readonly udpRecvBufferSize: number;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
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
    this.maxTcpConnections = options.maxTcpConnections ?? 1000;
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
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
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
    const server = net.createServer({ noDelay: true }, (socket) => this.serveTcp(socket));
    server.maxConnections = this.maxTcpConnections;
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
    this.connections.add(socket);
    socket.setTimeout(this.tcpIdleTimeoutMs, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => this.connections.delete(socket));
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      let corked = false;
      while (buf.length - offset >= 2) {
        const length = (buf[offset]! << 8) | buf[offset + 1]!;
        if (buf.length - offset - 2 < length) break;
        const msg = buf.subarray(offset + 2, offset + 2 + length);
        offset += 2 + length;
        const out = this.responder.answer(msg, MAX_MESSAGE);
        if (out === undefined) continue;
        if (!corked) {
          socket.cork();
          corked = true;
        }
        const frame = Buffer.allocUnsafe(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        socket.write(frame);
      }
      if (corked) socket.uncork();
      // Keep only the incomplete rest (copied, so the big chunk can be freed).
      pending = offset < buf.length ? Buffer.from(buf.subarray(offset)) : undefined;
      // A client that sends without reading: stop reading until it catches up.
      if (socket.writableNeedDrain) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
  }
}
