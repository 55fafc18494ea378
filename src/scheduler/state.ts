// Internal working state: a node's fixed facts (NodeEntry) and its usage (NodeUsage), and the
// View both the live Snapshot and a plan's copy-on-write Draft offer to the allocators.
import type { SchedNode } from './types.js';

/** Port keys: port * 2 + (udp ? 1 : 0). */
export const portKey = (port: number, protocol: 'tcp' | 'udp'): number => port * 2 + (protocol === 'udp' ? 1 : 0);

export class NodeUsage {
  /** Shares held by fragments, per core. */
  frag: Int32Array;
  /** Bound instances holding the core exclusively (0 or 1 unless reality was inconsistent). */
  excl: Uint8Array;
  /** Every share handed out: exclusive cores (shareBase each), fragments and unbound quota. */
  usedShares = 0;
  unboundShares = 0;
  memUsed = 0;
  /** Host ports in use (portKey); shared with the base until written (portsOwned). */
  ports: Set<number>;
  portsOwned = true;
  /** Used ports inside the node's port range, per protocol. */
  tcpInRange = 0;
  udpInRange = 0;
  instances = 0;
  /** App of the dedicated instances on the node (null when none). */
  dedicatedApp: string | null = null;
  dedicatedCount = 0;
  // Derived from frag/excl by refreshCpu:
  /** Allocatable cores with no exclusive holder and no fragment. */
  empties = 0;
  /** Most free shares on a core that has fragments but is not full (0 when none). */
  maxPartialFree = 0;

  constructor(cores: number, ports?: Set<number>) {
    this.frag = new Int32Array(cores);
    this.excl = new Uint8Array(cores);
    this.ports = ports ?? new Set();
  }

  clone(): NodeUsage {
    const c = new NodeUsage(0, this.ports);
    c.frag = this.frag.slice();
    c.excl = this.excl.slice();
    c.usedShares = this.usedShares;
    c.unboundShares = this.unboundShares;
    c.memUsed = this.memUsed;
    c.portsOwned = false;
    c.tcpInRange = this.tcpInRange;
    c.udpInRange = this.udpInRange;
    c.instances = this.instances;
    c.dedicatedApp = this.dedicatedApp;
    c.dedicatedCount = this.dedicatedCount;
    c.empties = this.empties;
    c.maxPartialFree = this.maxPartialFree;
    return c;
  }

  /** The ports set, copied first if it is still shared with the base snapshot. */
  ownPorts(): Set<number> {
    if (!this.portsOwned) {
      this.ports = new Set(this.ports);
      this.portsOwned = true;
    }
    return this.ports;
  }
}

/** A node's fixed facts, normalised once per snapshot. */
export interface NodeEntry {
  i: number;
  spec: SchedNode;
  live: boolean;
  name: string;
  pool: string;
  cores: number;
  /** shareBase */
  S: number;
  /** First allocatable core (= reserved cores). */
  first: number;
  allocShares: number;
  allocMem: number;
  lo: number;
  hi: number;
  nameHash: number;
  u: NodeUsage;
}

export type CountMap = ReadonlyMap<number, number>;

/** What allocators read and write: the live snapshot itself, or a plan's draft over it. */
export interface View {
  readonly entries: readonly NodeEntry[];
  usage(i: number): NodeUsage;
  writable(i: number): NodeUsage;
  /** Instances per node of an entry key ("app/env/entry") or an app. */
  entryCounts(key: string): CountMap | undefined;
  appCounts(app: string): CountMap | undefined;
  bump(kind: 'entry' | 'app', key: string, i: number, delta: number): void;
}

export const entryKey = (app: string, env: string, entry: string): string => `${app}/${env}/${entry}`;

export function bumpMap(map: Map<number, number>, i: number, delta: number): void {
  const n = (map.get(i) ?? 0) + delta;
  if (n > 0) map.set(i, n);
  else map.delete(i);
}
