// A hollow node's usage reports: every interval, a `usage` message for its running instances, as
// the real agent's sampler sends (agent/usage-sampler.ts), with figures a lightly loaded instance
// could have. Nothing runs, but the server parses, checks and keeps the same messages.
import type { UsageMessage } from '../model/usage.js';
import type { FleetCounters } from './counters.js';

export class HollowUsage {
  private timer: NodeJS.Timeout | undefined;
  private readonly bornAt = Date.now();

  constructor(
    private everyMs: number | undefined,
    private readonly runningIds: () => string[],
    /** False when the message could not go (silent, disconnected): it is not counted. */
    private readonly send: (message: UsageMessage) => boolean,
    private readonly counters: FleetCounters,
  ) {}

  /** From now on this often (undefined: none); started at once when `running`. */
  every(everyMs: number | undefined, running: boolean): void {
    this.stop();
    this.everyMs = everyMs;
    if (running) this.start();
  }

  /** The first report falls at a random point of the interval, like the heartbeats. */
  start(): void {
    const everyMs = this.everyMs;
    if (!everyMs || this.timer) return;
    this.timer = setTimeout(() => {
      this.report();
      this.timer = setInterval(() => this.report(), everyMs);
    }, Math.random() * everyMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private report(): void {
    const ids = this.runningIds();
    if (ids.length === 0 || !this.everyMs) return;
    const seconds = (Date.now() - this.bornAt) / 1000;
    const samples = ids.map((id) => ({
      id, cpuCores: 0.02, cpuSeconds: seconds * 0.02, periods: Math.round(seconds * 10), throttledPeriods: 0, throttledSeconds: 0,
      memoryBytes: 24 * 2 ** 20, memoryLimitBytes: 32 * 2 ** 20, oomKills: 0, netRxBytes: null, netTxBytes: null, blockReadBytes: 0, blockWriteBytes: 0,
    }));
    if (!this.send({ type: 'usage', at: Date.now(), intervalMs: this.everyMs, samples })) return;
    this.counters.usageMessages++;
    this.counters.usageSamples += samples.length;
  }
}
