// Counters (restarts, OOM kills) per instance over time, so a rule can ask "how many in the last
// 10 minutes". Kept in memory: samples older than the longest window any rule may ask about are
// dropped, and so are instances not seen for that long, so memory follows the fleet, not time.
import { MAX_ALERT_WINDOW_MS } from '../../model/spec-alerts.js';

/** Samples per instance at most: one per evaluation (every 5 s) over a day would be 17,280. */
const MAX_SAMPLES = 2_000;

export class CounterHistory {
  private readonly samples = new Map<string, { at: number; value: number }[]>();

  record(id: string, value: number, at: number): void {
    let list = this.samples.get(id);
    if (!list) this.samples.set(id, (list = []));
    const last = list[list.length - 1];
    // Only changes are kept (and the first value): a counter that does not move costs one sample.
    if (last && last.value === value) return;
    list.push({ at, value });
    if (list.length > MAX_SAMPLES) list.splice(0, list.length - MAX_SAMPLES);
  }

  /**
   * How much the counter rose within the window before `now`. An instance first seen inside the
   * window counts from its first sample, or from 0 when it started inside the window (`bornAt`);
   * a counter that went down was reset: it counts from 0.
   */
  increase(id: string, windowMs: number, now: number, bornAt?: number): number {
    const list = this.samples.get(id);
    if (!list || list.length === 0) return 0;
    const from = now - windowMs;
    let base = bornAt !== undefined && bornAt > from ? 0 : list[0]!.value;
    let rise = 0;
    let previous: number | undefined;
    for (const { at, value } of list) {
      if (at <= from) {
        base = value;
        continue;
      }
      const start = previous ?? base;
      rise += value >= start ? value - start : value;
      previous = value;
    }
    return rise;
  }

  /** Drops what no window can reach and instances gone that long. */
  sweep(now: number): void {
    for (const [id, list] of this.samples) {
      const keepFrom = list.findIndex((s) => s.at > now - MAX_ALERT_WINDOW_MS);
      if (keepFrom === -1) this.samples.delete(id);
      else if (keepFrom > 1) list.splice(0, keepFrom - 1);
    }
  }
}
