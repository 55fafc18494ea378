// What reconciliation reads: a read-only view of the cluster, the time, and where new instance
// ids come from. Nothing here can write, wait or read a clock, so `reconcile` is a function of
// its arguments and its tests are tables (the Nomad reconcile.go shape). The server's cluster
// cache is such a view; tests build small ones by hand.
import type { AppRecord, Instance, InstanceStatus, NodeRecord, PoolRecord, ReleaseRecord, RolloutRecord } from '../../model/types.js';

export interface ReconcileView {
  readonly apps: ReadonlyMap<string, AppRecord>;
  readonly instances: ReadonlyMap<string, Instance>;
  readonly statuses: ReadonlyMap<string, InstanceStatus>;
  readonly nodes: ReadonlyMap<string, NodeRecord>;
  readonly pools: ReadonlyMap<string, PoolRecord>;
  readonly rollouts: ReadonlyMap<string, RolloutRecord>;
  instancesOf(app: string, entry?: string): Instance[];
}

export interface ReconcileContext {
  /** The time of this pass (ms since the epoch). */
  now: number;
  /** A fresh id for a new instance of `app`/`entry`. */
  newId(app: string, entry: string): string;
  /**
   * The release a rollback goes back to: the `from` release of every rollout under way, read
   * before the pass (undefined when it is gone from the store).
   */
  release(app: string, release: number): ReleaseRecord | undefined;
  /** The cluster's log sinks for apps whose spec names none (`gantry server --log-sinks`). */
  defaultLogSinks?: readonly import('../../model/log-shipping.js').LogSinkSpec[];
}
