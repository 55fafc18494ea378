// Reports a failure that repeats, such as the reconcile loop's while the store's disk is full:
// said when it starts and whenever its reason changes, and its end said once with how long it
// lasted; not once a second for as long as it lasts, burying everything else in the log.
import { formatDuration } from '../../model/units.js';

export type FailureSay = (level: 'error' | 'info', message: string, error?: unknown) => void;

export class RepeatedFailure {
  private reason: string | undefined;
  private since = 0;

  constructor(
    /** What fails, for the messages: "the reconcile pass". */
    private readonly what: string,
    private readonly say: FailureSay,
  ) {}

  failed(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (reason === this.reason) return;
    if (this.reason === undefined) this.since = Date.now();
    this.reason = reason;
    this.say('error', `${this.what} failed: ${reason} (said again only if the reason changes)`, error);
  }

  succeeded(): void {
    if (this.reason === undefined) return;
    this.reason = undefined;
    this.say('info', `${this.what} works again, after failing for ${formatDuration(Date.now() - this.since)}`);
  }
}
