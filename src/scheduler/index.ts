// The placement module: pure, no I/O, no clock; randomness only from PlanOptions.seed.
export type {
  BoundCpu,
  CapacityResult,
  CoreShare,
  CpuPlan,
  HostPort,
  LabelSelector,
  LabelTerm,
  Placement,
  PlacementRequest,
  PlanOptions,
  PlanResult,
  PoolInfo,
  SchedNode,
  SchedNodeState,
  SharedCpu,
  Strategy,
  StrategyName,
  Unplaced,
} from './types.js';
export { buildSnapshot, Snapshot, PlacementConflict, type SnapshotInput, type NodeSummary } from './snapshot.js';
export { plan, planAll, planAndCommit, capacity } from './plan.js';
export { sharesFor, PERIOD_MICROS } from './cpu.js';
export { parseSelector, parseTerm } from './selectors.js';
export { formatBytes, formatCpu } from './reasons.js';
export { entryRequest, instancePlacement, type EntryRequestOptions } from './request.js';
