// Every sample interval (--sample-interval, 10 s by default) the agent reads what each instance it
// runs has used (the runtimes read cgroups and /proc: runtime/usage-counters.ts) and sends the
// server one `usage` message for the whole node. Counters are cumulative; the CPU rate is the
// difference between two readings of the same process, so an instance is reported from its second
// reading on, and a counter that went backwards (the instance restarted) starts it over.
import type { UsageSample } from '../model/usage.js';
import type { RuntimeName } from '../model/types.js';
import type { Runtime } from '../runtime/runtime.js';
import type { UsageCounters } from '../runtime/usage-counters.js';

export interface UsageSamplerOptions {
  intervalMs: number;
  /** The runtimes that work on this node now. */
  runtimes: () => readonly Runtime[];
  /** The instances assigned here, with the runtime each runs on. */
  instances: () => Iterable<{ id: string; runtime: RuntimeName }>;
  send: (message: { type: 'usage'; at: number; intervalMs: number; samples: UsageSample[] }) => void;
  /** How long a sample took and how many instances it covered (the agent's own metrics). */
  sampled?: (seconds: number, instances: number) => void;
  log: (line: string) => void;
}

interface Reading {
  at: number;
  cpuSeconds: number;
}

export class UsageSampler {
  private timer: NodeJS.Timeout | undefined;
  private readonly previous = new Map<string, Reading>();
  private running = false;

  constructor(private readonly options: UsageSamplerOptions) {}

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One round; a round still running when the next is due makes that one skip (a slow engine). */
  async sample(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const started = performance.now();
    try {
      const byRuntime = new Map<RuntimeName, string[]>();
      for (const { id, runtime } of this.options.instances()) byRuntime.set(runtime, [...(byRuntime.get(runtime) ?? []), id]);
      const counters = new Map<string, UsageCounters>();
      for (const runtime of this.options.runtimes()) {
        const ids = byRuntime.get(runtime.name);
        if (!ids || !runtime.usage) continue;
        try {
          for (const [id, c] of await runtime.usage(ids)) counters.set(id, c);
        } catch (err) {
          this.options.log(`usage sampling of the ${runtime.name} runtime failed: ${(err as Error).message}`);
        }
      }
      const at = Date.now();
      const samples = this.samplesOf(counters, at);
      if (samples.length > 0) this.options.send({ type: 'usage', at, intervalMs: this.options.intervalMs, samples });
      this.options.sampled?.((performance.now() - started) / 1000, counters.size);
    } finally {
      this.running = false;
    }
  }

  private samplesOf(counters: Map<string, UsageCounters>, at: number): UsageSample[] {
    const samples: UsageSample[] = [];
    for (const [id, c] of counters) {
      const before = this.previous.get(id);
      this.previous.set(id, { at, cpuSeconds: c.cpuSeconds });
      if (!before || c.cpuSeconds < before.cpuSeconds || at <= before.at) continue;
      const cpuCores = (c.cpuSeconds - before.cpuSeconds) / ((at - before.at) / 1000);
      samples.push({ id, cpuCores: Math.min(4096, Math.round(cpuCores * 1000) / 1000), ...whole(c) });
    }
    for (const id of this.previous.keys()) if (!counters.has(id)) this.previous.delete(id);
    return samples;
  }
}

/** Counters as the protocol takes them: whole bytes and periods, seconds as they are. */
function whole(c: UsageCounters): Omit<UsageSample, 'id' | 'cpuCores'> {
  const int = (n: number) => Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, Math.round(n)));
  const intOrNull = (n: number | null) => (n === null ? null : int(n));
  return {
    cpuSeconds: c.cpuSeconds,
    periods: int(c.periods),
    throttledPeriods: int(c.throttledPeriods),
    throttledSeconds: c.throttledSeconds,
    memoryBytes: int(c.memoryBytes),
    memoryLimitBytes: intOrNull(c.memoryLimitBytes),
    oomKills: int(c.oomKills),
    netRxBytes: intOrNull(c.netRxBytes),
    netTxBytes: intOrNull(c.netTxBytes),
    blockReadBytes: int(c.blockReadBytes),
    blockWriteBytes: int(c.blockWriteBytes),
  };
}
