// The live snapshot: nodes, pools and the usage of every placement the server has stored. The
// server keeps one in memory, plans against it (plans work on a Draft, see draft.ts) and commits
// placements after they are durably stored.
import type { AssignedPort, HostPort, Placement, PoolInfo, SchedNode } from './types.js';
import { blockPorts, movePorts } from './ports.js';
import { cpuFree, poolCores, refreshCpu } from './cpu.js';
import { applyTo, checkPlacement, PlacementConflict, releaseFrom } from './apply.js';
import { bumpMap, NodeUsage, type CountMap, type NodeEntry, type View } from './state.js';
import { hashString } from './rng.js';

export { PlacementConflict };

export interface SnapshotInput {
  nodes: Iterable<SchedNode>;
  pools?: Iterable<PoolInfo>;
  /** Placements of the instances that exist; loaded as they are, conflicts are listed, not thrown. */
  placements?: Iterable<Placement>;
}

export function buildSnapshot(input: SnapshotInput): Snapshot {
  const snap = new Snapshot(input.pools);
  for (const node of input.nodes) snap.setNode(node);
  for (const p of input.placements ?? []) {
    const why = snap.check(p);
    if (why) snap.conflicts.push(`${p.app}/${p.env}/${p.entry} on ${p.node}: ${why}`);
    if (snap.has(p.node)) applyTo(snap, p);
  }
  return snap;
}

export class Snapshot implements View {
  readonly entries: NodeEntry[] = [];
  readonly pools = new Map<string, PoolInfo>();
  /** Problems found while loading placements (overcommitted cores, double ports...). */
  readonly conflicts: string[] = [];
  private readonly byName = new Map<string, number>();
  private poolIndex: Map<string, number[]> | null = null;
  /** Nodes passing the static filters, per Ctx.staticKey; dropped whenever node facts or pools change. */
  private readonly matchCache = new Map<string, Int32Array>();
  private readonly entryMaps = new Map<string, Map<number, number>>();
  private readonly appMaps = new Map<string, Map<number, number>>();
  private liveCount = 0;

  constructor(pools?: Iterable<PoolInfo>) {
    for (const p of pools ?? []) this.pools.set(p.name, p);
  }

  get size(): number {
    return this.liveCount;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  index(name: string): number | undefined {
    return this.byName.get(name);
  }

  node(name: string): SchedNode | undefined {
    const i = this.byName.get(name);
    return i === undefined ? undefined : this.entries[i]!.spec;
  }

  setPool(pool: PoolInfo): void {
    this.pools.set(pool.name, pool);
    this.matchCache.clear();
  }

  /** Cached list of nodes matching a request's static filters (computed by `compute` on a miss). */
  matching(key: string, compute: () => Int32Array): Int32Array {
    let list = this.matchCache.get(key);
    if (!list) {
      if (this.matchCache.size >= 512) this.matchCache.clear();
      this.matchCache.set(key, (list = compute()));
    }
    return list;
  }

  /** Adds a node or updates its facts, keeping its usage. Cores and shareBase of a used node cannot change. */
  setNode(spec: SchedNode): void {
    const i = this.byName.get(spec.name);
    const old = i === undefined ? undefined : this.entries[i]!;
    const S = spec.shareBase ?? 100;
    if (!(Number.isInteger(S) && S > 0)) throw new Error(`node ${spec.name}: shareBase must be a positive integer`);
    if (old && old.u.instances > 0 && (old.cores !== spec.cores || old.S !== S)) {
      throw new Error(`node ${spec.name}: cores or shareBase changed while instances run; rebuild the snapshot from placements`);
    }
    const first = Math.min(spec.cores, Math.max(0, spec.reserved?.cores ?? 0));
    const entry: NodeEntry = {
      i: i ?? this.entries.length,
      spec,
      live: true,
      name: spec.name,
      pool: spec.pool ?? 'default',
      cores: spec.cores,
      S,
      first,
      allocShares: (spec.cores - first) * S,
      allocMem: Math.max(0, spec.memoryBytes - (spec.reserved?.memoryBytes ?? 0)),
      lo: spec.portRange[0],
      hi: spec.portRange[1],
      nameHash: hashString(spec.name),
      u: old?.u ?? new NodeUsage(spec.cores),
    };
    if (old && (old.lo !== entry.lo || old.hi !== entry.hi)) recountPorts(entry);
    refreshCpu(entry, entry.u);
    if (old) this.entries[old.i] = entry;
    else {
      this.entries.push(entry);
      this.byName.set(spec.name, entry.i);
      this.liveCount++;
    }
    if (!old || old.pool !== entry.pool) this.poolIndex = null;
    this.matchCache.clear();
  }

  /** Forgets a node that runs nothing. */
  removeNode(name: string): void {
    const i = this.byName.get(name);
    if (i === undefined) return;
    const e = this.entries[i]!;
    if (e.u.instances > 0) throw new Error(`node ${name} still has ${e.u.instances} instances; release them first`);
    e.live = false;
    this.byName.delete(name);
    this.liveCount--;
    this.poolIndex = null;
    this.matchCache.clear();
  }

  /** Indexes of the live nodes of a pool. */
  poolNodes(pool: string): readonly number[] {
    if (!this.poolIndex) {
      this.poolIndex = new Map();
      for (const e of this.entries) {
        if (!e.live) continue;
        const list = this.poolIndex.get(e.pool);
        if (list) list.push(e.i);
        else this.poolIndex.set(e.pool, [e.i]);
      }
    }
    return this.poolIndex.get(pool) ?? [];
  }

  usage(i: number): NodeUsage {
    return this.entries[i]!.u;
  }

  writable(i: number): NodeUsage {
    return this.entries[i]!.u;
  }

  entryCounts(key: string): CountMap | undefined {
    return this.entryMaps.get(key);
  }

  appCounts(app: string): CountMap | undefined {
    return this.appMaps.get(app);
  }

  bump(kind: 'entry' | 'app', key: string, i: number, delta: number): void {
    const maps = kind === 'entry' ? this.entryMaps : this.appMaps;
    let map = maps.get(key);
    if (!map) maps.set(key, (map = new Map()));
    bumpMap(map, i, delta);
    if (map.size === 0) maps.delete(key);
  }

  /** Why a placement cannot be applied now (null when it can). */
  check(p: Placement): string | null {
    return checkPlacement(this, p);
  }

  /** Records a placement; throws PlacementConflict if it would hand out anything twice. */
  apply(p: Placement): void {
    const why = checkPlacement(this, p);
    if (why) throw new PlacementConflict(`${p.app}/${p.env}/${p.entry} on ${p.node}: ${why}`);
    applyTo(this, p);
  }

  /** Records a placement as it is, unchecked (an instance that exists); ignored on an unknown node. */
  load(p: Placement): void {
    if (this.has(p.node)) applyTo(this, p);
  }

  /** Forgets a placement (the instance is gone). */
  release(p: Placement): void {
    releaseFrom(this, p);
  }

  /** Applies placements all or nothing. */
  commit(placements: readonly Placement[]): void {
    let done = 0;
    try {
      for (const p of placements) {
        this.apply(p);
        done++;
      }
    } catch (err) {
      for (let k = done - 1; k >= 0; k--) this.release(placements[k]!);
      throw err;
    }
  }

  /** Counts host ports held by programs Gantry does not run as used: nothing is placed on them. */
  blockPorts(node: string, ports: readonly HostPort[]): void {
    const e = this.entry(node);
    blockPorts(e, e.u, ports);
  }

  /**
   * A placement's ports after some turned out to be taken outside Gantry (see movePorts in
   * ports.ts); the placement must be in the snapshot. Throws when no free port is left.
   */
  movePorts(p: Placement, taken: readonly HostPort[]): AssignedPort[] {
    const e = this.entry(p.node);
    return movePorts(e, e.u, p.ports, taken);
  }

  /** The shared-pool cpuset of a node now: what its unbound instances should run on. */
  sharedCpuset(node: string): number[] {
    const e = this.entry(node);
    return poolCores(e, e.u);
  }

  /** Free resources of a node, for display. */
  describe(node: string): NodeSummary {
    const e = this.entry(node);
    const u = e.u;
    let fragmentCores = 0;
    for (let c = e.first; c < e.cores; c++) if (u.excl[c] === 0 && u.frag[c]! > 0 && u.frag[c]! < e.S) fragmentCores++;
    return {
      node: e.name,
      cpuAllocatable: e.allocShares / e.S,
      cpuUsed: u.usedShares / e.S,
      cpuFree: cpuFree(e, u, false) / e.S,
      cpuBindable: cpuFree(e, u, true) / e.S,
      exclusiveCores: u.excl.reduce((n, x) => n + (x > 0 ? 1 : 0), 0),
      fragmentCores,
      memoryAllocatable: e.allocMem,
      memoryUsed: u.memUsed,
      portsUsed: u.ports.size,
      instances: u.instances,
      dedicatedApp: u.dedicatedApp ?? undefined,
    };
  }

  private entry(node: string): NodeEntry {
    const i = this.byName.get(node);
    if (i === undefined) throw new Error(`unknown node ${node}`);
    return this.entries[i]!;
  }
}

export interface NodeSummary {
  node: string;
  cpuAllocatable: number;
  cpuUsed: number;
  /** For unbound instances. */
  cpuFree: number;
  /** Largest bound instance that fits now. */
  cpuBindable: number;
  exclusiveCores: number;
  fragmentCores: number;
  memoryAllocatable: number;
  memoryUsed: number;
  portsUsed: number;
  instances: number;
  dedicatedApp?: string;
}

function recountPorts(e: NodeEntry): void {
  e.u.tcpInRange = 0;
  e.u.udpInRange = 0;
  for (const key of e.u.ports) {
    const port = key >> 1;
    if (port >= e.lo && port <= e.hi) {
      if (key & 1) e.u.udpInRange++;
      else e.u.tcpInRange++;
    }
  }
}
