// Watches on the embedded store (see sqlite.ts): replay of history, live delivery of new
// revisions, and the watch from a compacted revision.
//
// - Watches are delivered asynchronously (microtasks), one onEvents call per revision, in
//   revision order, exactly once. Replay of history and the switch to live delivery happen
//   synchronously inside watch(), so nothing can slip in between.
// - Watch from a compacted revision: with `onCompacted`, the watch is returned already dead and
//   onCompacted(compactRevision) is called once, asynchronously (unless closed first). Without
//   it, watch() throws CompactedError synchronously.
import { CompactedError, type KeyValue, type WatchEvent, type Watcher, type WatchOptions } from './store.js';
import { prefixEnd, type HistoryRow, type MetaRow, type Statements } from './sqlite-schema.js';

function historyToEvent(row: HistoryRow): WatchEvent {
  const kv: KeyValue = {
    key: row.key,
    value: row.value,
    createRevision: row.create_rev,
    modRevision: row.revision,
    version: row.version,
  };
  if (row.lease !== null) kv.lease = row.lease;
  const event: WatchEvent = { type: row.type, kv, revision: row.revision };
  if (row.prev_version !== null) {
    const prevKv: KeyValue = {
      key: row.key,
      value: row.prev_value!,
      createRevision: row.prev_create_rev!,
      modRevision: row.prev_mod_rev!,
      version: row.prev_version,
    };
    if (row.prev_lease !== null) prevKv.lease = row.prev_lease;
    event.prevKv = prevKv;
  }
  return event;
}

class SqliteWatcher implements Watcher {
  closed = false;
  private queue: WatchEvent[][] = [];
  private scheduled = false;

  constructor(
    private readonly hub: WatchHub,
    readonly prefix: string,
    private readonly onEvents: (events: WatchEvent[]) => void,
    private readonly onError: (error: unknown) => void,
    /** Batches below this revision are dropped (watch from a future revision). */
    private readonly minRevision: number,
  ) {}

  /** `batch` holds the events of one revision. */
  enqueue(batch: WatchEvent[]): void {
    if (this.closed || batch[0]!.revision < this.minRevision) return;
    this.queue.push(batch);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batches = this.queue;
    this.queue = [];
    for (const batch of batches) {
      if (this.closed) return;
      try {
        this.onEvents(batch);
      } catch (error) {
        this.onError(error);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.hub.remove(this);
  }
}

/** The watcher returned for a compacted fromRevision when onCompacted is given: never delivers. */
class DeadWatcher implements Watcher {
  closed = false;
  close(): void {
    this.closed = true;
  }
}

/** The live watchers of one SqliteStore. */
export class WatchHub {
  private readonly watchers = new Set<SqliteWatcher>();

  constructor(
    private readonly s: Statements,
    private readonly onWatchError: (error: unknown) => void,
    /** Whether the store is closed (a pending onCompacted is then not called). */
    private readonly storeClosed: () => boolean,
  ) {}

  /** The store has checked that it is open; `meta` reads the current revisions. */
  watch(
    prefix: string,
    onEvents: (events: WatchEvent[]) => void,
    options: WatchOptions,
    meta: () => MetaRow,
  ): Watcher {
    const from = options.fromRevision !== undefined && options.fromRevision > 0 ? options.fromRevision : 0;
    const watcher = new SqliteWatcher(this, prefix, onEvents, this.onWatchError, from);
    if (from > 0) {
      // Replay and registration happen in this one synchronous block: no write can interleave,
      // so every revision >= from is delivered exactly once (history first, then live).
      const current = meta();
      if (from < current.compact_revision) {
        const onCompacted = options.onCompacted;
        if (!onCompacted) throw new CompactedError(current.compact_revision);
        const dead = new DeadWatcher();
        queueMicrotask(() => {
          if (!dead.closed && !this.storeClosed()) onCompacted(current.compact_revision);
        });
        return dead;
      }
      if (from <= current.revision) {
        const end = prefixEnd(prefix);
        const rows =
          end === undefined ? this.s.historyFrom.iterate(from, prefix) : this.s.historyBetween.iterate(from, prefix, end);
        let batch: WatchEvent[] = [];
        for (const row of rows) {
          if (batch.length > 0 && batch[0]!.revision !== row.revision) {
            watcher.enqueue(batch);
            batch = [];
          }
          batch.push(historyToEvent(row));
        }
        if (batch.length > 0) watcher.enqueue(batch);
      }
    }
    this.watchers.add(watcher);
    return watcher;
  }

  /** Hands the events of one committed revision to every watcher whose prefix matches. */
  publish(events: WatchEvent[]): void {
    for (const watcher of this.watchers) {
      const batch = watcher.prefix === '' ? events : events.filter((e) => e.kv.key.startsWith(watcher.prefix));
      if (batch.length > 0) watcher.enqueue(batch);
    }
  }

  remove(watcher: SqliteWatcher): void {
    this.watchers.delete(watcher);
  }

  closeAll(): void {
    for (const watcher of [...this.watchers]) watcher.close();
  }
}
