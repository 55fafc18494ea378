// The server's own API types (src/model), so the console and the server cannot drift apart.
export type {
  ApiError,
  AppDetailResponse,
  AppListResponse,
  AppSummary,
  ApplyResponse,
  EntrySummary,
  EventListResponse,
  InstanceListResponse,
  InstanceView,
  NodeListResponse,
  NodeView,
  RolloutStatusResponse,
} from '../../../src/model/api.js';
export type { SpecProblem } from '../../../src/model/spec.js';
export type { AppRecord, AuditRecord, GantryEvent, Instance, InstanceStatus, NodeRecord, ReleaseRecord, RolloutRecord, TeamRole } from '../../../src/model/types.js';
export type { Change } from '../../../src/model/diff.js';
export type { CapacityResult } from '../../../src/scheduler/types.js';
