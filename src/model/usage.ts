// What instances use, as agents report it (the `usage` message) and the server answers it
// (GET /v1/usage). One message per node per sample interval: the node's running instances, each
// with its rates over the interval and its counters since it started.
import { z } from 'zod';
import { instanceId } from './names.js';

/** Counters since the instance started (bytes, seconds), and the memory gauges, as a runtime reads them. */
export interface UsageCounters {
  cpuSeconds: number;
  /** CFS periods the instance ran in, and those in which it was throttled (0 without a CPU limit), and the time throttled. */
  periods: number;
  throttledPeriods: number;
  throttledSeconds: number;
  /** Memory in use without the inactive page cache (what the OOM killer weighs, as `docker stats` counts it). */
  memoryBytes: number;
  /** null: no memory limit. */
  memoryLimitBytes: number | null;
  oomKills: number;
  /** null: the instance has no network of its own (process runtime: the host's). */
  netRxBytes: number | null;
  netTxBytes: number | null;
  blockReadBytes: number;
  blockWriteBytes: number;
}

/** One instance in one sample. Rates are over the interval before `at`; counters since the instance started. */
export interface UsageSample extends UsageCounters {
  id: string;
  /** CPU used over the interval, in cores (1 = one core's time). */
  cpuCores: number;
}

const big = z.number().min(0).max(Number.MAX_SAFE_INTEGER);
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const UsageSampleSchema = z.object({
  id: instanceId(),
  cpuCores: z.number().min(0).max(4096),
  cpuSeconds: big,
  periods: counter,
  throttledPeriods: counter,
  throttledSeconds: big,
  memoryBytes: counter,
  memoryLimitBytes: counter.nullable(),
  oomKills: counter,
  netRxBytes: counter.nullable(),
  netTxBytes: counter.nullable(),
  blockReadBytes: counter,
  blockWriteBytes: counter,
});

/** The shortest and longest sample interval an agent may use. */
export const MIN_SAMPLE_INTERVAL_MS = 1000;
export const MAX_SAMPLE_INTERVAL_MS = 10 * 60_000;
export const DEFAULT_SAMPLE_INTERVAL_MS = 10_000;

/** Fields of the `usage` message beside its type (agent-protocol.ts adds it to the union). */
export const usageMessageFields = (maxInstances: number) => ({
  at: counter,
  intervalMs: z.number().int().min(MIN_SAMPLE_INTERVAL_MS).max(MAX_SAMPLE_INTERVAL_MS),
  samples: z.array(UsageSampleSchema).max(maxInstances),
});

export interface UsageMessage {
  type: 'usage';
  /** When the sample was taken (ms since the epoch, the agent's clock). */
  at: number;
  intervalMs: number;
  samples: UsageSample[];
}

/** Requests and limits of an instance as its spec gives them (in Gantry the reservation is the limit). */
export interface UsageResources {
  cpu: number;
  memoryBytes: number;
}

/** An instance in GET /v1/usage. */
export interface InstanceUsage {
  id: string;
  app: string;
  env: string;
  entry: string;
  node: string;
  team: string;
  state: string | null;
  restarts: number;
  requests: UsageResources;
  limits: UsageResources;
  /** The newest sample and when the server got it; null before the first. */
  latest: (UsageSample & { at: number }) | null;
  /** Oldest first: when, CPU cores and memory bytes of each kept sample (history=false: omitted). */
  history?: { at: number[]; cpuCores: number[]; memoryBytes: number[] };
}

export interface AppUsage {
  app: string;
  instances: number;
  cpuCores: number;
  memoryBytes: number;
  requests: UsageResources;
}

export interface UsageResponse {
  instances: InstanceUsage[];
  apps: AppUsage[];
}

/** A node's real use: the sum of its instances' newest samples. */
export interface NodeUsage {
  at: number;
  instances: number;
  cpuCores: number;
  memoryBytes: number;
}
