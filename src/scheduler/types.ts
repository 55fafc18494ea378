// Public data of the placement module: what the server supplies (nodes, pools, placements of
// running instances), what it asks (a PlacementRequest) and what it gets back (a PlanResult).
// Pure data; nothing here does I/O.
import type { AssignedPort, HostPort, NodeState, RuntimeName } from '../model/types.js';
import type { PortSpec } from '../model/spec.js';

export type { AssignedPort, HostPort, PortSpec, RuntimeName };

/** Only 'ready' nodes take new placements; 'draining' is like 'cordoned' (existing instances stay). */
export type SchedNodeState = NodeState | 'draining';

/** A node as the scheduler sees it (static facts; usage comes from placements). */
export interface SchedNode {
  name: string;
  state: SchedNodeState;
  labels: Record<string, string>;
  /** Node pool; default 'default'. */
  pool?: string;
  cores: number;
  memoryBytes: number;
  /** Kept for the host's own daemons, never handed out: the lowest-numbered `cores` cores and `memoryBytes`. */
  reserved?: { cores: number; memoryBytes: number };
  /** Inclusive range host ports are picked from when a port has no fixed host port. */
  portRange: [number, number];
  /** Pieces each core is divided into (default 100; 1000 for 0.001-CPU granularity). */
  shareBase?: number;
  /** When set, the node takes instances of this app only. */
  dedicatedTo?: string;
  /** When set and the request names a runtime, the node must offer it. */
  runtimes?: RuntimeName[];
}

/** A pool of nodes; a pool with a team only takes requests of that team, one without takes anyone's. */
export interface PoolInfo {
  name: string;
  team?: string;
}

export type { BoundCpu, CoreShare, CpuPlan, SharedCpu } from '../model/cpu.js';
import type { CpuPlan } from '../model/cpu.js';

/** One instance on one node, with everything the runtime must apply. Store it with the instance. */
export interface Placement {
  app: string;
  env: string;
  entry: string;
  node: string;
  cpu: CpuPlan;
  memoryBytes: number;
  ports: AssignedPort[];
  /** Placed by a dedicated request: while it runs the node takes no other app. */
  dedicated?: boolean;
}

export type { LabelTerm } from '../model/selector.js';
import type { LabelTerm } from '../model/selector.js';

/** A map means "every key equals its value"; a list of terms must all hold. */
export type LabelSelector = Record<string, string> | LabelTerm[];

export type Strategy =
  /** Even out the entry's instances (old plus new) across nodes. */
  | { kind: 'spread' }
  /** Fill the fullest node that fits. */
  | { kind: 'binpack' }
  /** Even out resource use (CPU and memory share) across nodes. */
  | { kind: 'balance' }
  /**
   * Top nodes up to perNode instances of the entry. With a count: place count instances, never
   * beyond perNode on a node, finishing the fullest nodes first. Without: bring every matching
   * node to perNode.
   */
  | { kind: 'fill'; perNode: number }
  /** perNode new instances on every matching node (the daemon-set case); count is ignored. */
  | { kind: 'each'; perNode: number };

export type StrategyName = Strategy['kind'];

export interface PlacementRequest {
  app: string;
  env?: string;
  entry: string;
  /** The app's team; needed to use a pool owned by a team. */
  team?: string;
  /** Default 'default'. */
  pool?: string;
  /** CPUs, e.g. 3.2. */
  cpu: number;
  /** Bind to cores (cpuset + shares) instead of the shared pool with a CFS quota. */
  cpuBind?: boolean;
  memoryBytes: number;
  ports?: readonly PortSpec[];
  runtime?: RuntimeName;
  selector?: LabelSelector;
  /** One project per host: only nodes with no other app's instances, and they then take no other app. */
  dedicated?: boolean;
  /** Default spread. */
  strategy?: Strategy | 'spread' | 'binpack' | 'balance';
  /** New instances wanted (default 1; ignored by each, optional for fill). */
  count?: number;
}

export interface PlanOptions {
  /** Breaks ties between equal nodes; same snapshot + request + seed gives the same plan. Default 0. */
  seed?: number;
}

/** Instances that could not be placed, with why (counted per cause over the nodes). */
export interface Unplaced {
  count: number;
  reason: string;
  /** For each/fill: the node the instances were meant for. */
  node?: string;
}

export interface PlanResult {
  placements: Placement[];
  unplaced: Unplaced[];
  /** Instances asked for in total (placements + unplaced counts). */
  wanted: number;
}

export interface CapacityResult {
  /** How many more instances of this request's shape fit (each node on its own). */
  total: number;
  /** Nodes that can take at least one, most first. */
  nodes: Array<{ node: string; count: number }>;
  /** Why the other nodes take none, e.g. "7/10 nodes take none: 5 insufficient memory (...), 2 label zone!=b". */
  blocked?: string;
}
