// When an instance's health checks run, and what their results add up to. The checks themselves
// (HTTP, TCP, a command) are in health.ts; the supervisor hears only two verdicts: passed (any
// check that passes) and failed (`retries` counted failures in a row).
//
// Timing: a watch begins when the instance is up (started, or adopted), and probes at once, so an
// instance that is ready is running within milliseconds rather than at the next tick or interval.
// Until its first pass it is probed after WARMING_FIRST_PROBE_MS, then twice as long each time up
// to min(interval, WARMING_PROBE_MS), so one that takes a few milliseconds to listen is found
// within a few more; from then on, every `interval` (measured from one probe's start to the
// next's), on its own timer, never the agent's tick.
//
// What counts: a failure within `startPeriod` of the instance's start does not (as the spec says);
// nor does one when the instance has exited meanwhile (the exit is what the supervisor hears of,
// at the next tick). Before the first pass the frequent probes may only pass: a failure counts at
// most once per interval, and not within FIRST_COUNT_AFTER_MS of the watch's start, the time the
// agent's 1 s tick used to give an instance before its first check.
import type { HealthSpec } from '../model/spec.js';
import type { CheckResult } from './health.js';

export const WARMING_PROBE_MS = 250;
export const WARMING_FIRST_PROBE_MS = 20;
export const FIRST_COUNT_AFTER_MS = 1000;

export interface HealthTarget {
  readonly spec: HealthSpec;
  probe(): Promise<CheckResult>;
  /** Asked after a failed probe: whether the instance still runs at all. */
  stillRunning(): Promise<boolean>;
  /** When the instance started (startPeriod is counted from it). */
  startedAt(): number | null;
  passed(detail: string): void;
  failed(detail: string): void;
  /** A probe that could not even be judged (never a rejection: the watch runs from timers). */
  broke(err: unknown): void;
}

export class HealthWatch {
  private target: HealthTarget | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by every begin and end: a probe of an earlier watch reports nothing. */
  private generation = 0;
  private failures = 0;
  private passedOnce = false;
  private begunAt = 0;
  private lastCountedAt = -Infinity;
  private warmingDelay = WARMING_FIRST_PROBE_MS;

  /** A new watch (the instance was just started or adopted): probes at once. */
  begin(target: HealthTarget): void {
    this.end();
    this.target = target;
    this.failures = 0;
    this.passedOnce = false;
    this.begunAt = Date.now();
    this.lastCountedAt = -Infinity;
    this.warmingDelay = WARMING_FIRST_PROBE_MS;
    this.probeLater(0);
  }

  end(): void {
    this.generation++;
    this.target = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private probeLater(delayMs: number): void {
    const generation = this.generation;
    this.timer = setTimeout(() => void this.probe(generation), delayMs);
    this.timer.unref();
  }

  private async probe(generation: number): Promise<void> {
    const target = this.target;
    if (!target || generation !== this.generation) return;
    const probedAt = Date.now();
    try {
      const result = await target.probe();
      if (generation !== this.generation) return;
      if (result.ok) {
        this.failures = 0;
        this.passedOnce = true;
        target.passed(result.detail);
      } else if (this.counts(target, probedAt) && (await target.stillRunning()) && generation === this.generation) {
        this.failures++;
        this.lastCountedAt = probedAt;
        if (this.failures >= target.spec.retries) {
          this.failures = 0;
          target.failed(result.detail);
        }
      }
    } catch (err) {
      if (generation === this.generation) target.broke(err);
    }
    if (generation !== this.generation) return;
    const every = this.passedOnce ? target.spec.interval : Math.min(target.spec.interval, WARMING_PROBE_MS, this.warmingDelay);
    if (!this.passedOnce) this.warmingDelay *= 2;
    this.probeLater(Math.max(0, probedAt + every - Date.now()));
  }

  private counts(target: HealthTarget, probedAt: number): boolean {
    const startedAt = target.startedAt();
    if (startedAt !== null && probedAt - startedAt < target.spec.startPeriod) return false;
    if (this.passedOnce) return true;
    return probedAt - this.begunAt >= FIRST_COUNT_AFTER_MS && probedAt - this.lastCountedAt >= target.spec.interval;
  }
}
