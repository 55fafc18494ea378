// Gantry's DNS server: answers A/AAAA and SRV for `{entry}.{app}.{env}.{domain}` (and
// `_{port}._tcp.{entry}...`, `{id}.{entry}...`) from an EndpointSource, over UDP and TCP.
// Authoritative for `domain` only (REFUSED elsewhere, RA=0), NXDOMAIN/NODATA with an SOA,
// FORMERR for malformed queries, EDNS(0) with the client's UDP size, TC when an answer does
// not fit.
//
// This file holds the options, the UDP socket, the optional UDP worker processes
// (dns-worker.ts), and DnsServer, which binds UDP and TCP on one port and starts and stops it
// all. A worker gets the whole registry once (at its start, or when it finds a gap in what it
// was sent) and after that only the changes, so a change costs the same whatever the size of
// the registry. TCP (framing, the connection table with its idle timeouts and eviction at the caps) is
// TcpDnsListener in dns-tcp.ts. The answers come from DnsResponder (dns-responder.ts), which
// answers from a name index with pre-encoded answers (dns-index.ts); the query parser and
// wire helpers are in dns-wire.ts.
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../model/registry.js';
import type { EndpointChange, EndpointSource } from './source.js';
import { DnsResponder, type DnsResponderOptions } from './dns-responder.js';
import { TcpDnsListener } from './dns-tcp.js';

export { DnsResponder, type DnsResponderOptions } from './dns-responder.js';
export { TcpFramer } from './dns-tcp.js';
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
   * of them), each with its own copy of the endpoints, kept current by the changes sent over
   * IPC (so they lag this process by an IPC hop). TCP stays here. Default 0.
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

/**
 * Messages from DnsServer to its worker processes (dns-worker.ts): the whole registry at a
 * revision (`sync`), or the changes made after revision `from` up to `revision`. A worker
 * applies changes when `from` is at most the revision it has (replaying a change it already
 * has is harmless: each sets a key to its latest state) and asks for a sync when `from` is past
 * it, i.e. it missed some.
 */
export type DnsWorkerMessage =
  | { type: 'init'; options: DnsResponderOptions }
  | { type: 'sync'; revision: number; entries: [string, Endpoint][] }
  | { type: 'changes'; from: number; revision: number; changes: EndpointChange[] }
  | { type: 'socket' };

/** Messages from a worker process to DnsServer. */
export type DnsWorkerReply = { type: 'ready' } | { type: 'resync'; revision: number };

const workerScript = fileURLToPath(import.meta.url).replace(/dns\.(ts|js)$/, 'dns-worker.$1');

/** A DNS server (UDP and TCP on the same port) answering from an EndpointSource. */
export class DnsServer {
  readonly responder: DnsResponder;
  private readonly host: string;
  private readonly port: number;
  private readonly udpRecvBufferSize: number;
  private udp: dgram.Socket | undefined;
  private readonly tcp: TcpDnsListener;
  private readonly workerCount: number;
  private readonly workers = new Set<ChildProcess>();
  private unsubscribeWorkers: (() => void) | undefined;
  /** Changes not sent to the workers yet, made after revision `sentRevision`. */
  private pending: EndpointChange[] = [];
  private sentRevision = 0;
  private syncScheduled = false;
  private stopping = false;

  constructor(private readonly source: EndpointSource, options: DnsOptions = {}) {
    this.responder = new DnsResponder(source, options);
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 5353;
    this.udpRecvBufferSize = options.udpRecvBufferSize ?? 4 * 1024 * 1024;
    this.workerCount = Math.max(0, Math.floor(options.workers ?? 0));
    this.tcp = new TcpDnsListener(this.responder, options);
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
        await this.tcp.listen(port, this.host);
        this.udp = udp;
      } catch (error) {
        udp.close();
        if (this.port !== 0 || attempt >= 10) throw error;
        continue;
      }
      this.stopping = false;
      if (this.workerCount > 0) {
        this.pending = [];
        this.sentRevision = this.source.revision;
        this.unsubscribeWorkers = this.source.subscribe((_revision, changes) => {
          for (const change of changes) this.pending.push(change);
          this.scheduleSync();
        });
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

  /** Process ids of the worker processes running now (tests, metrics). */
  get workerPids(): number[] {
    return [...this.workers].flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
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
    // A child process without an 'error' listener takes the server down when it cannot be
    // spawned or signalled; a worker that failed to start is said by the promise below.
    child.on('error', (err) => {
      if (!this.stopping) console.error(`gantry dns: DNS worker: ${err.message}`);
    });
    const send = (message: DnsWorkerMessage, handle?: dgram.Socket) => child.send(message, handle as never, () => {});
    send({ type: 'init', options: this.workerOptions() });
    this.sendSync(child);
    send({ type: 'socket' }, this.udp);
    child.on('message', (reply: DnsWorkerReply) => {
      if (reply.type === 'resync' && this.workers.has(child)) this.sendSync(child);
    });
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`DNS worker exited (${signal ?? code}) before it was ready`));
      child.once('exit', onExit);
      child.once('error', reject);
      const onReady = (reply: DnsWorkerReply) => {
        if (reply.type !== 'ready') return;
        child.off('message', onReady);
        child.off('exit', onExit);
        child.once('exit', () => {
          this.workers.delete(child);
          // Replace a worker that died while we run (the socket is still open here).
          if (!this.stopping && this.udp) {
            setTimeout(() => {
              // One try: a worker that cannot even start would only fail again, once a second.
              this.startWorker().catch((err: Error) => console.error(`gantry dns: a DNS worker died and could not be replaced (the server's own socket still answers): ${err.message}`));
            }, 1000).unref();
          }
        });
        resolve();
      };
      child.on('message', onReady);
    });
  }

  /** The whole registry, to a worker that starts or missed changes (the one full read). */
  private sendSync(child: ChildProcess): void {
    if (!child.connected) return;
    const message: DnsWorkerMessage = { type: 'sync', revision: this.source.revision, entries: this.source.entries() };
    child.send(message, undefined, undefined, () => {});
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      const message: DnsWorkerMessage = { type: 'changes', from: this.sentRevision, revision: this.source.revision, changes: this.pending };
      this.pending = [];
      this.sentRevision = this.source.revision;
      if (message.changes.length === 0 && message.revision === message.from) return;
      // A send that fails means the worker is going away; its replacement starts with a sync.
      for (const child of this.workers) if (child.connected) child.send(message, undefined, undefined, () => {});
    });
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    this.tcp.stopAccepting();
    this.stopping = true;
    this.unsubscribeWorkers?.();
    this.unsubscribeWorkers = undefined;
    this.pending = [];
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
    await Promise.all([udp && new Promise<void>((resolve) => udp.close(() => resolve())), this.tcp.close()]);
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
}
