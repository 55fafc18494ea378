// How an instance's CPU is given to it: bound to cores, or on the node's shared pool.
// Decided by the scheduler, stored with the instance, applied by the agent's runtime.

/** A core given to a bound instance: `shares` of the node's shareBase. */
export interface CoreShare {
  core: number;
  shares: number;
}

/**
 * CPU of a bound (cpuBind) instance: whole exclusive cores plus at most one fragment core that
 * it shares with others. Runtime: cpuset = [...exclusive, fragment.core]; the fragment's weight
 * is fragment.shares / shareBase of that core.
 */
export interface BoundCpu {
  mode: 'bound';
  shareBase: number;
  /** Total shares: exclusive.length * shareBase + (fragment?.shares ?? 0). */
  shares: number;
  exclusive: number[];
  fragment?: CoreShare;
}

/**
 * CPU of an unbound instance: it runs on the node's shared pool (the non-reserved cores no bound
 * instance holds exclusively, see sharedCpuset) limited by a CFS quota of quotaMicros per periodMicros.
 */
export interface SharedCpu {
  mode: 'shared';
  shareBase: number;
  shares: number;
  quotaMicros: number;
  periodMicros: number;
}

export type CpuPlan = BoundCpu | SharedCpu;
