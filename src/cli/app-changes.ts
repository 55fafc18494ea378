// When to look at an app again during a wait: as soon as the server's watch stream (GET /v1/watch,
// Server-Sent Events, store revisions as ids) shows a change to the app's record, its instances
// or their statuses, rather than on a fixed poll. The wait still reads the app itself (GET
// /v1/apps/:app) to decide; this only says when.
//
// The stream follows one prefix per connection, and the keys of a status (/status/<id>) do not
// name the app, so: /apps/ opens first, and its snapshot gives the store revision R (the only
// snapshot taken: apps are few); /instances/ and /status/ then resume from R, which replays every
// later change and sends no snapshot. A read of the app after R plus every change after R misses
// nothing. A connection that drops resumes from the last revision it saw (Last-Event-ID), so a
// server that restarts loses no change either. A server without the stream (or refusing it)
// leaves the wait polling.
import type { GantryClient } from './client.js';
import { ApiRequestError, NotAnEventStreamError, TlsVerificationError } from './client.js';
import type { SseMessage } from './stream.js';

/** What a wait looks at besides the app's record. */
export type Followed = 'instances' | 'status';

interface Change {
  type: 'put' | 'delete';
  key: string;
}

export interface AppChangesOptions {
  /** Delay before reconnecting a dropped stream, doubling up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
}

/** Errors after which the stream will not come (or cannot be read): the wait polls instead. */
function permanent(err: unknown): boolean {
  if (err instanceof NotAnEventStreamError || err instanceof TlsVerificationError || err instanceof SyntaxError) return true;
  return err instanceof ApiRequestError && err.status < 500;
}

/** A delay that ends early when the wait is over, so that no timer holds the process. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export class AppChanges {
  private changed = false;
  private wake: (() => void) | undefined;
  private readonly abort = new AbortController();
  /** Instances of the app whose statuses count: those the last read showed, and those created since. */
  private readonly ids = new Set<string>();
  /** Streams asked for and not failed since (a resumed stream sends nothing until a change comes). */
  private readonly up = new Set<string>();
  private revision: string | undefined;
  private gaveUp = false;

  constructor(
    private readonly client: GantryClient,
    private readonly app: string,
    private readonly followed: readonly Followed[],
    private readonly options: AppChangesOptions = {},
  ) {
    void this.stream('apps');
  }

  /** Every stream is followed: a change will be told. While not, the waits poll. */
  get live(): boolean {
    return !this.gaveUp && this.revision !== undefined && this.up.size === 1 + this.followed.length;
  }

  /** The instance ids whose status changes matter, from a read of the app. */
  watchInstances(ids: Iterable<string>): void {
    for (const id of ids) this.ids.add(id);
  }

  /** Forgets the changes seen so far: called just before a read of the app, which shows them. */
  clear(): void {
    this.changed = false;
  }

  /**
   * Resolves at the first change (or loss or recovery of a stream) since clear(), or after `ms`.
   * A change that came while the app was being read resolves it at once.
   */
  next(ms: number): Promise<void> {
    if (this.changed || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  close(): void {
    this.gaveUp = true;
    this.abort.abort();
    this.wake?.();
  }

  private signal(): void {
    this.changed = true;
    this.wake?.();
  }

  private relevant(change: Change): boolean {
    const { key } = change;
    if (key === `/apps/${this.app}`) return true;
    if (key.startsWith(`/instances/${this.app}/`)) {
      if (change.type === 'put') this.ids.add(key.slice(key.lastIndexOf('/') + 1));
      return this.followed.includes('instances') || this.followed.includes('status');
    }
    return this.followed.includes('status') && key.startsWith('/status/') && this.ids.has(key.slice('/status/'.length));
  }

  private onMessage(prefix: string, message: SseMessage): void {
    if (message.event === 'snapshot') {
      // The first: R is known, the other streams start from it. A later one (the history to
      // resume from was compacted) may hide any change: look again.
      if (prefix === 'apps' && this.revision === undefined) {
        this.revision = message.id;
        for (const followed of this.followed) void this.stream(followed, this.revision);
      }
      this.signal();
      return;
    }
    if (message.event !== 'change') return;
    const { changes } = JSON.parse(message.data) as { changes: Change[] };
    if (changes.some((change) => this.relevant(change))) this.signal();
  }

  /** Follows one prefix until closed, reconnecting from the last revision seen. */
  private async stream(prefix: string, since?: string): Promise<void> {
    let delay = this.options.retryDelayMs ?? 250;
    let last = since;
    while (!this.gaveUp) {
      this.up.add(prefix);
      if (this.live) this.signal();
      try {
        for await (const message of this.client.watchConnection(prefix, { since: last, signal: this.abort.signal })) {
          if (message.id !== undefined) last = message.id;
          delay = this.options.retryDelayMs ?? 250;
          this.onMessage(prefix, message);
        }
      } catch (err) {
        if (this.gaveUp) return;
        if (permanent(err)) {
          this.gaveUp = true;
          this.abort.abort();
          this.signal();
          return;
        }
      }
      // Dropped (the server went away, or ended the stream): the wait polls until it is back.
      this.up.delete(prefix);
      this.signal();
      await pause(delay, this.abort.signal);
      delay = Math.min(delay * 2, this.options.maxRetryDelayMs ?? 5000);
    }
  }
}
