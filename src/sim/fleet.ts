// A fleet of hollow nodes in one process (the kubemark idea): N hollow agents, each on its own
// WebSocket, named <prefix>-00001…, with realistic node info spread over label values and pools.
// The control plane under test cannot tell them from real hosts running nothing but sleeping
// instances; the process running them spends a few kilobytes and a little CPU per node.
//
// Each node connects from a loopback address of its own (127.77.x.y: all of 127/8 is local on
// Linux) when the server is on this host, so the server's cap of 256 sockets per client address
// (MAX_CONNECTIONS_PER_ADDRESS in src/server/http.ts) sees one socket per address, as it would
// from real hosts. The same address is what the node advertises for its endpoints.
import { GANTRY_VERSION } from '../version.js';
import type { NodeInfo } from '../model/types.js';
import { newCounters, type FleetCounters } from './counters.js';
import { HollowAgent } from './hollow-agent.js';
import type { CrashKind, InstanceTiming } from './hollow-instances.js';

export interface FleetOptions {
  server: string;
  /** An admin token (any node may say hello with it) or a join token (each node then joins once). */
  token: string;
  count: number;
  /** Node names are `<prefix>-00001`…; default "hollow". */
  namePrefix?: string;
  /** The number of the first node (fleets side by side take different ranges); default 1. */
  firstIndex?: number;
  cores?: number;
  memoryBytes?: number;
  /** Pools the nodes are spread over; default ["default"]. */
  pools?: string[];
  /** Label values spread over the nodes, e.g. { zone: ['a', 'b', 'c'] }. */
  labels?: Record<string, string[]>;
  startDelayMs?: number;
  stopDelayMs?: number;
  restartDelayMs?: number;
  /** Connection attempts under way at once while the fleet starts; default 64. */
  connectConcurrency?: number;
  ca?: string | Buffer;
  /** Each node sends a usage message for its running instances this often (absent: never). */
  usageIntervalMs?: number;
}

/** Most nodes that get a loopback address of their own (127.77.0.1 – 127.77.249.250). */
export const MAX_OWN_ADDRESSES = 250 * 250;

export class Fleet {
  readonly counters: FleetCounters;
  private readonly agents: HollowAgent[] = [];

  constructor(private readonly options: FleetOptions) {
    this.counters = newCounters(options.count);
    const first = options.firstIndex ?? 1;
    const local = isLoopbackServer(options.server);
    const timing: InstanceTiming = {
      startDelayMs: options.startDelayMs ?? 200,
      stopDelayMs: options.stopDelayMs ?? options.startDelayMs ?? 200,
      restartDelayMs: options.restartDelayMs ?? 1000,
    };
    for (let k = 0; k < options.count; k++) {
      const info = this.nodeInfo(k, first + k);
      this.agents.push(new HollowAgent({ server: options.server, token: options.token, info, timing, counters: this.counters, ca: options.ca, usageIntervalMs: options.usageIntervalMs, ...(local ? { localAddress: info.address } : {}) }));
    }
  }

  /** Connects every node, a bounded number at a time; resolves once each was welcomed or failed once (failed ones keep trying). */
  async start(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < this.agents.length) await this.agents[next++]!.start();
    };
    await Promise.all(Array.from({ length: Math.min(this.options.connectConcurrency ?? 64, this.agents.length) }, worker));
  }

  names(): string[] {
    return this.agents.map((a) => a.name);
  }

  /** `count` node names spread evenly over the fleet (not all of one zone or pool). */
  pick(count: number): string[] {
    const n = Math.min(count, this.agents.length);
    const step = this.agents.length / Math.max(1, n);
    return Array.from({ length: n }, (_, i) => this.agents[Math.floor(i * step)]!.name);
  }

  silence(names: readonly string[], on = true): void {
    const wanted = new Set(names);
    for (const agent of this.agents) if (wanted.has(agent.name)) agent.silence(on);
  }

  /** Crashes `count` running instances, one per node in turn; returns their ids. */
  /** Every node sends usage messages this often from now on (undefined: none). */
  reportUsageEvery(everyMs: number | undefined): void {
    for (const agent of this.agents) agent.reportUsageEvery(everyMs);
  }

  crash(count: number, kind: CrashKind): string[] {
    const crashed: string[] = [];
    const queues = this.agents.filter((a) => !a.isSilent).map((a) => ({ agent: a, ids: a.instances.runningIds() }));
    while (crashed.length < count && queues.some((q) => q.ids.length > 0)) {
      for (const { agent, ids } of queues) {
        const id = ids.shift();
        if (id !== undefined && agent.crash(id, kind)) crashed.push(id);
        if (crashed.length >= count) break;
      }
    }
    return crashed;
  }

  stats(): FleetCounters {
    return { ...this.counters };
  }

  close(): void {
    for (const agent of this.agents) agent.close();
  }

  /** Node k of the fleet (numbered `index`): each label key and the pool cycle at a different stride, so they do not move in step. */
  private nodeInfo(k: number, index: number): NodeInfo {
    const labels: Record<string, string> = {};
    let stride = 1;
    for (const [key, values] of Object.entries(this.options.labels ?? {})) {
      if (values.length === 0) continue;
      labels[key] = values[Math.floor(k / stride) % values.length]!;
      stride *= values.length;
    }
    const pools = this.options.pools?.length ? this.options.pools : ['default'];
    return {
      name: `${this.options.namePrefix ?? 'hollow'}-${String(index).padStart(5, '0')}`,
      address: loopbackAddress(index),
      labels,
      cores: this.options.cores ?? 32,
      memoryBytes: this.options.memoryBytes ?? 128 * 2 ** 30,
      runtimes: ['docker', 'process'],
      runtimeNotes: [],
      portRange: [20000, 29999],
      agentVersion: `${GANTRY_VERSION}-hollow`,
      pool: pools[Math.floor(k / stride) % pools.length]!,
      reserved: { cores: 0, memoryBytes: 0 },
      shareBase: 100,
    };
  }
}

/** 127.77.x.y for node `index` (beyond MAX_OWN_ADDRESSES they repeat: at most a few share one). */
export function loopbackAddress(index: number): string {
  const k = index % MAX_OWN_ADDRESSES;
  return `127.77.${Math.floor(k / 250)}.${(k % 250) + 1}`;
}

export function isLoopbackServer(server: string): boolean {
  const host = new URL(server).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}
