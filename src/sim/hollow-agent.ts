// One hollow node: the real agent protocol (src/model/agent-protocol.ts) on a WebSocket of its
// own, with nothing behind it. It says hello with its node info, heartbeats at the interval the
// welcome announces (resending every status every few heartbeats, as the real agent does, so the
// server does the same work), takes assignments into its instance table (hollow-instances.ts) and sends
// what that table reports: statuses batched per turn of the event loop, one registry message per
// endpoint. It answers the server's pings itself (`autoPong: false`), so that it can go silent:
// a silenced node sends nothing, answers no ping and reads nothing, like a frozen agent or a cut
// link, until it is unsilenced. A connection the server or the network ends is opened again with
// backoff, as the real agent does, plus jitter so that 5,000 nodes do not come back in step.
import WebSocket from 'ws';
import { AGENT_ACCEPTS, type AgentToServer, type EndpointRef, type ServerToAgent } from '../model/agent-protocol.js';
import type { Endpoint } from '../model/registry.js';
import type { InstanceStatus, NodeInfo } from '../model/types.js';
import type { FleetCounters } from './counters.js';
import { HollowInstances, type CrashKind, type InstanceTiming } from './hollow-instances.js';
import { RESEND_EVERY_HEARTBEATS } from '../agent/reporter.js';
import { HollowUsage } from './hollow-usage.js';

export interface HollowAgentOptions {
  /** The server's URL (http:// or https://). */
  server: string;
  /** An admin token (may say hello as any node) or a join token (then the node's own token, given on welcome, is used from there on). */
  token: string;
  info: NodeInfo;
  /** The local address to connect from (a loopback address of its own keeps the server's per-address cap away). */
  localAddress?: string;
  /** PEM CA certificate(s) that verify an https:// server. */
  ca?: string | Buffer;
  timing: InstanceTiming;
  counters: FleetCounters;
  /** Send a usage message for the running instances this often, as the real agent does (absent: never). */
  usageIntervalMs?: number;
}

const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 5000;

export class HollowAgent {
  readonly instances: HollowInstances;
  private socket: WebSocket | undefined;
  private token: string;
  /** The cluster of the last welcome: said in the next hello, as the real agent does. */
  private cluster: string | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeats = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  private silent = false;
  private closed = false;
  private welcomed = false;
  private connectedBefore = false;
  private readonly dirty = new Map<string, InstanceStatus>();
  private readonly usage: HollowUsage;
  private flushScheduled = false;
  private requestSeq = 0;
  /** Settles start(): on the first welcome, or when the first attempt fails. */
  private settleStart: (() => void) | undefined;

  constructor(private readonly options: HollowAgentOptions) {
    this.token = options.token;
    this.usage = new HollowUsage(options.usageIntervalMs, () => this.instances.runningIds(), (message) => this.send(message), options.counters);
    this.instances = new HollowInstances(
      () => ({ node: options.info.name, address: options.info.address }),
      {
        status: (status) => this.report(status),
        register: (endpoint) => this.sendRegistry([endpoint], []),
        withdraw: (ref) => this.sendRegistry([], [ref]),
        removed: (ids) => {
          if (this.send({ type: 'removed', ids })) options.counters.removedMessages++;
        },
      },
      options.timing,
      options.counters,
    );
  }

  get name(): string {
    return this.options.info.name;
  }

  get isSilent(): boolean {
    return this.silent;
  }

  /** Connects; resolves once welcomed or once the first attempt failed (it keeps trying either way). */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.settleStart = resolve;
      this.connect();
    });
  }

  /** Silent: no heartbeat, no pong, no report, nothing read. Back: a fresh hello (on a new connection if the server closed the old one). */
  silence(on: boolean): void {
    if (on === this.silent || this.closed) return;
    this.silent = on;
    this.options.counters.silent += on ? 1 : -1;
    if (on) {
      clearTimeout(this.heartbeatTimer);
      return;
    }
    if (this.socket?.readyState === WebSocket.OPEN) this.hello();
    else if (!this.socket && !this.retryTimer) this.connect();
  }

  crash(id: string, kind: CrashKind): boolean {
    return this.instances.crash(id, kind);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.silent) this.options.counters.silent--;
    clearTimeout(this.heartbeatTimer);
    this.usage.stop();
    clearTimeout(this.retryTimer);
    this.instances.dispose();
    this.socket?.close(1001, 'hollow node stopping');
    this.settleStart?.();
  }

  private connect(): void {
    this.retryTimer = undefined;
    const { server, localAddress, ca, counters } = this.options;
    const url = new URL('/v1/agent/connect', server.replace(/^http/, 'ws'));
    const socket = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.token}` },
      handshakeTimeout: 10_000,
      autoPong: false,
      perMessageDeflate: false,
      ...(localAddress ? { localAddress } : {}),
      ...(ca !== undefined ? { ca } : {}),
    });
    this.socket = socket;
    counters.connects++;
    if (this.connectedBefore) counters.reconnects++;
    let opened = false;
    let failure: string | undefined;
    socket.on('open', () => {
      opened = true;
      this.connectedBefore = true;
      counters.connected++;
      this.retryMs = FIRST_RETRY_MS;
      this.hello();
    });
    socket.on('ping', (data) => {
      if (this.silent) counters.pingsIgnored++;
      else {
        socket.pong(data);
        counters.pongsSent++;
      }
    });
    socket.on('message', (data) => {
      if (!this.silent) this.onMessage(String(data));
    });
    socket.on('unexpected-response', (_request, response) => {
      failure = `server refused the connection: HTTP ${response.statusCode}`;
      socket.terminate();
    });
    socket.on('error', (err) => (failure ??= err.message));
    socket.on('close', (code, reason) => {
      if (opened) counters.connected--;
      if (this.socket === socket) this.socket = undefined;
      clearTimeout(this.heartbeatTimer);
      if (this.closed) return;
      counters.dropped++;
      counters.lastDropReason = failure ?? `closed (${code}${reason.length > 0 ? `: ${String(reason)}` : ''})`;
      this.settleStart?.();
      this.settleStart = undefined;
      // A silent node stays away until unsilenced; any other comes back, with backoff and jitter.
      if (this.silent) return;
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs * (1 + Math.random() / 2));
      this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
    });
  }

  private hello(): void {
    const { info, counters } = this.options;
    const hello: AgentToServer = {
      type: 'hello',
      node: info,
      statuses: this.instances.statuses(),
      endpoints: this.instances.endpoints(),
      unassigned: this.instances.unassigned(),
      accepts: [...AGENT_ACCEPTS],
      ...(this.cluster ? { cluster: this.cluster } : {}),
    };
    // The hello carries every status: what was waiting to be sent goes with it.
    if (this.send(hello)) {
      counters.helloSent++;
      this.dirty.clear();
    }
  }

  private onMessage(text: string): void {
    let message: ServerToAgent;
    try {
      message = JSON.parse(text) as ServerToAgent;
    } catch {
      return; // the next full assignment set repairs whatever it said
    }
    const { counters } = this.options;
    switch (message.type) {
      case 'welcome':
        if (!this.welcomed) counters.welcomed++;
        this.welcomed = true;
        this.cluster = message.cluster;
        if (message.token) this.token = message.token;
        this.startHeartbeat(message.heartbeatMs);
        this.usage.start();
        this.settleStart?.();
        this.settleStart = undefined;
        return;
      case 'assignments':
        counters.assignmentMessages++;
        this.instances.assign(message.instances, message.remove);
        return;
      case 'assignments.changed':
        counters.assignmentMessages++;
        this.instances.change(message.instances, message.gone, message.remove);
        return;
      case 'cluster':
        this.cluster = message.id;
        return;
      case 'ack':
        counters.acks++;
        return;
      case 'logs':
        this.send({ type: 'log.end', requestId: message.requestId, error: `node ${this.name} is a hollow node: it runs nothing and has no logs` });
        return;
      case 'logs.cancel':
        return;
    }
  }

  /** The first heartbeat falls at a random point of the interval: nodes started together do not beat together. */
  private startHeartbeat(intervalMs: number): void {
    clearTimeout(this.heartbeatTimer);
    if (!(intervalMs > 0)) return;
    this.heartbeatTimer = setTimeout(() => {
      this.beat();
      this.heartbeatTimer = setInterval(() => this.beat(), intervalMs);
    }, Math.random() * intervalMs);
  }

  /** From now on, usage messages this often (undefined: none). */
  reportUsageEvery(everyMs: number | undefined): void {
    this.usage.every(everyMs, this.welcomed && !this.closed);
  }

  private beat(): void {
    const { info, counters } = this.options;
    if (!this.send({ type: 'heartbeat', node: info, endpoints: this.instances.endpoints(), unassigned: this.instances.unassigned() })) return;
    counters.heartbeatsSent++;
    if (++this.heartbeats % RESEND_EVERY_HEARTBEATS === 0) for (const status of this.instances.statuses()) this.dirty.set(status.id, status);
    this.flush();
  }

  private report(status: InstanceStatus): void {
    this.dirty.set(status.id, status);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** What is not sent now (silent, disconnected) waits in `dirty` for the next flush or hello. */
  private flush(): void {
    if (this.dirty.size === 0) return;
    const statuses = [...this.dirty.values()];
    if (!this.send({ type: 'status', statuses })) return;
    this.dirty.clear();
    this.options.counters.statusMessages++;
    this.options.counters.statusesSent += statuses.length;
  }

  /** Unsent, it is repaired by the endpoint list of the next heartbeat or hello. */
  private sendRegistry(register: Endpoint[], withdraw: EndpointRef[]): void {
    if (this.send({ type: 'registry', requestId: String(++this.requestSeq), register, withdraw })) this.options.counters.registryMessages++;
  }

  private send(message: AgentToServer): boolean {
    const socket = this.socket;
    if (this.silent || this.closed || socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }
}
