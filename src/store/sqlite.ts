// The embedded store: the etcd-like Store interface on one SQLite file (better-sqlite3, WAL).
// Tables and statements: sqlite-schema.ts; the steps of a write: sqlite-write.ts; watches:
// sqlite-watch.ts.
//
// Semantics worth knowing
// - Revisions start at 0 for an empty store; the first write gets revision 1. Every write
//   (put, delete of an existing key, txn with at least one change, lease revocation/expiry that
//   deletes keys) gets exactly one new revision, whatever the number of keys it touches.
//   Writes that change nothing (delete of a missing key, a txn with only gets) do not bump it.
// - Leases are checked every `leaseCheckIntervalMs`; a key whose lease has expired stays
//   visible until that check deletes it (at most one interval later). On open every lease gets
//   its full TTL again, as etcd does when a new leader is elected: the holders could not keep
//   their leases alive while the store was down, and must get the chance before their keys go. revokeLease of an
//   unknown lease is a no-op. put with an unknown or expired lease throws LeaseNotFoundError.
// - One process must own a store file: watches and lease timers only see writes made through
//   this SqliteStore object.
// - When the host fails the store (no space left, a failing disk, a file locked or read-only),
//   calls throw StoreFullError / StoreUnavailableError (sqlite-errors.ts), and a failed write
//   leaves nothing behind: its transaction is rolled back, no revision is used, no watcher hears
//   of it. The store goes on by itself once the host lets it write again. Meanwhile no lease
//   holder can keep its lease alive, so the lease clock stops: nothing expires, and the first
//   write that lands gives every lease its full TTL again, as on open.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { ensurePrivateFile, makePrivate, PRIVATE_DIR_MODE } from '../host/private-files.js';
import {
  StoreFullError,
  StoreUnavailableError,
  type KeyValue,
  type RangeOptions,
  type RangeResult,
  type Store,
  type TxnRequest,
  type TxnResult,
  type WatchEvent,
  type Watcher,
  type WatchOptions,
} from './store.js';
import { storeErrorOf } from './sqlite-errors.js';
import { migrate, prefixEnd, prepareStatements, toKv, type MetaRow, type Statements } from './sqlite-schema.js';
import { SqliteWrites, type WriteContext } from './sqlite-write.js';
import { WatchHub } from './sqlite-watch.js';

export { prefixEnd } from './sqlite-schema.js';
export { LeaseNotFoundError } from './sqlite-write.js';

export interface SqliteStoreOptions {
  /** How often expired leases are looked for. Default 500 ms. */
  leaseCheckIntervalMs?: number;
  /** Automatic compaction keeps at least this many revisions of history. Default 10000. */
  historyRetention?: number;
  /** Clock used for lease expiry (ms since the epoch). Default Date.now. */
  now?: () => number;
  /** Called when a watch callback throws. Default: console.error. Delivery goes on. */
  onWatchError?: (error: unknown) => void;
}

/**
 * The store holds secrets (env values): the directories it creates are 0700, and the db file is
 * created 0600 before SQLite opens it (SQLite gives its -wal and -shm the db file's mode). A db
 * file, -wal, -shm or -journal an older version left 0644 is made 0600. The directory itself is
 * never chmod'ed when it exists: it may be one the user named, shared with other files (the
 * server makes its own data dir private).
 */
function preparePrivateFiles(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
  ensurePrivateFile(path);
  for (const suffix of ['-wal', '-shm', '-journal']) makePrivate(`${path}${suffix}`);
}

/** How long a keep-alive waits for others to share its transaction. */
const KEEP_ALIVE_WINDOW_MS = 5;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly historyRetention: number;
  private readonly compactSlack: number;
  private readonly now: () => number;
  private readonly onWatchError: (error: unknown) => void;
  private leaseTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Where the store's files live: the directory that needs space when the store is full. */
  private readonly dir: string;
  /** A write failed for want of a working store: leases do not expire until one lands (see the header). */
  private leaseClockStopped = false;
  private readonly keepAlives: { lease: string; resolve: (alive: boolean) => void; reject: (err: unknown) => void }[] = [];
  private keepAliveTimer: NodeJS.Timeout | undefined;
  /** The last reason the lease check failed, so that it is said once rather than twice a second. */
  private leaseFailure: string | undefined;

  private readonly s: Statements;
  private readonly w: SqliteWrites;
  private readonly hub: WatchHub;

  private readonly runWrite: (fn: () => unknown) => unknown;
  private readonly runRead: (fn: () => unknown) => unknown;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    const leaseCheckIntervalMs = options.leaseCheckIntervalMs ?? 500;
    const historyRetention = options.historyRetention ?? 10000;
    if (!Number.isInteger(historyRetention) || historyRetention < 1) {
      throw new RangeError(`historyRetention must be a positive integer, got ${historyRetention}`);
    }
    if (!(leaseCheckIntervalMs > 0)) {
      throw new RangeError(`leaseCheckIntervalMs must be positive, got ${leaseCheckIntervalMs}`);
    }
    this.historyRetention = historyRetention;
    this.compactSlack = Math.max(1, Math.min(1000, Math.floor(historyRetention / 10)));
    this.now = options.now ?? Date.now;
    this.onWatchError =
      options.onWatchError ?? ((error) => console.error('gantry store: watch callback threw:', error));

    const onDisk = path !== ':memory:' && path !== '';
    this.dir = onDisk ? dirname(resolve(path)) : '(memory)';
    if (onDisk) preparePrivateFiles(path);
    const db = new Database(path);
    this.db = db;
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }

    this.s = prepareStatements(db);
    this.w = new SqliteWrites(this.s, this.now);
    this.hub = new WatchHub(this.s, this.onWatchError, () => this.closed);

    const write = db.transaction((fn: () => unknown) => fn());
    this.runWrite = (fn) => write.immediate(fn);
    this.runRead = db.transaction((fn: () => unknown) => fn());

    try {
      this.writing(() => this.s.refreshLeases.run(this.now()));
    } catch (error) {
      // A store on a full disk still opens (it can be read, and writes work once there is
      // room): writing() stopped the lease clock, so the first write that lands gives the
      // leases their TTL. Anything else, a file another process holds locked above all, is
      // refused as before: one process must own a store file.
      if (!(error instanceof StoreFullError)) {
        db.close();
        throw error;
      }
    }
    this.leaseTimer = setInterval(() => this.checkLeases(), leaseCheckIntervalMs);
    this.leaseTimer.unref();
  }

  // ---- internals -------------------------------------------------------------------------

  private assertOpen(): void {
    // Unavailable rather than a plain error: a request that races the server's shutdown is told to retry.
    if (this.closed) throw new StoreUnavailableError('store is closed');
  }

  /** Runs a read; SQLite's errors become the store's (see sqlite-errors.ts). */
  private reading<T>(fn: () => T): T {
    this.assertOpen();
    try {
      return fn();
    } catch (error) {
      throw storeErrorOf(error, this.dir);
    }
  }

  /**
   * Runs a write (a transaction, or one statement). better-sqlite3 rolls a failed transaction
   * back; should that rollback fail too, it is done here, or every later write would nest in
   * the dead transaction as a savepoint and never be committed. A failure of the store itself
   * stops the lease clock.
   */
  private writing<T>(fn: () => T): T {
    this.assertOpen();
    try {
      return fn();
    } catch (error) {
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // the connection itself is broken: the next call reports it
        }
      }
      const mapped = storeErrorOf(error, this.dir);
      if (mapped instanceof StoreUnavailableError) this.leaseClockStopped = true;
      throw mapped;
    }
  }

  private meta(): MetaRow {
    return this.s.meta.get()!;
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction; whatever it changes through the ctx helpers gets one
   * new revision. Publishes the events to watchers after the commit.
   */
  private write<T>(fn: (ctx: WriteContext) => T): { result: T; revision: number; events: WatchEvent[] } {
    let ctx: WriteContext | undefined;
    let result!: T;
    // The revision is read and bumped inside the transaction, and watchers hear of the events
    // only after the commit: a write that fails anywhere leaves both as they were.
    this.writing(() =>
      this.runWrite(() => {
        if (this.leaseClockStopped) this.s.refreshLeases.run(this.now());
        const meta = this.meta();
        ctx = { revision: meta.revision + 1, events: [] };
        result = fn(ctx);
        if (ctx.events.length > 0) {
          this.s.setRevision.run(ctx.revision);
          this.autoCompact(ctx.revision, meta.compact_revision);
        }
      }),
    );
    this.leaseClockStopped = false;
    const { revision, events } = ctx!;
    if (events.length === 0) return { result, revision: revision - 1, events };
    this.hub.publish(events);
    return { result, revision, events };
  }

  private autoCompact(revision: number, compactRevision: number): void {
    if (revision - compactRevision < this.historyRetention + this.compactSlack) return;
    const target = revision - this.historyRetention + 1;
    this.s.compactHistory.run(target);
    this.s.setCompactRevision.run(target);
  }

  /** The lease timer's tick: never throws; a failure is said once per distinct reason. */
  private checkLeases(): void {
    try {
      this.reapExpiredLeases();
      if (this.leaseFailure !== undefined) console.error('gantry store: lease expiry works again');
      this.leaseFailure = undefined;
    } catch (error) {
      if (this.closed) return;
      const reason = error instanceof Error ? error.message : String(error);
      if (reason !== this.leaseFailure) console.error(`gantry store: lease expiry failed (said again only if the reason changes): ${reason}`);
      this.leaseFailure = reason;
    }
  }

  private reapExpiredLeases(): void {
    if (this.closed) return;
    // After failed writes, no lease expires before the clock runs again: this empty write gives
    // every lease its TTL back (unless another write did so first), or throws while the store
    // still cannot be written. Else the endpoints of every node would vanish the moment the
    // disk had room again, before their agents' next heartbeat could keep them.
    if (this.leaseClockStopped) this.write(() => undefined);
    const expired = this.reading(() => this.s.expiredLeases.all(this.now()));
    for (const { id } of expired) {
      this.write((ctx) => {
        // Re-check inside the transaction: a keepAlive may have run in between.
        const row = this.s.getLease.get(id);
        if (row && row.expires_at <= this.now()) this.w.revokeIn(ctx, id);
      });
    }
  }

  // ---- Store -----------------------------------------------------------------------------

  async get(key: string): Promise<KeyValue | undefined> {
    const row = this.reading(() => this.s.getKv.get(key));
    return row ? toKv(row) : undefined;
  }

  async range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    const limit = options.limit !== undefined && options.limit > 0 ? Math.floor(options.limit) : -1;
    const prefixBound = prefixEnd(prefix);
    const end = options.before !== undefined && (prefixBound === undefined || options.before < prefixBound) ? options.before : prefixBound;
    const [from, between] = options.newestFirst ? [this.s.rangeFromReverse, this.s.rangeBetweenReverse] : [this.s.rangeFrom, this.s.rangeBetween];
    let out!: RangeResult;
    this.reading(() =>
      this.runRead(() => {
        const rows = end === undefined ? from.all(prefix, limit) : between.all(prefix, end, limit);
        out = { kvs: rows.map(toKv), revision: this.meta().revision };
      }),
    );
    return out;
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<number> {
    return this.write((ctx) => this.w.putIn(ctx, key, value, options.lease)).revision;
  }

  async delete(key: string): Promise<number | undefined> {
    const { result, revision } = this.write((ctx) => this.w.deleteIn(ctx, key));
    return result ? revision : undefined;
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    const { result, revision } = this.write((ctx) => {
      const succeeded = request.compare.every((c) => this.w.compareOne(c));
      const gets: (KeyValue | undefined)[] = [];
      this.w.runOps(ctx, succeeded ? request.success : (request.failure ?? []), gets);
      return { succeeded, gets };
    });
    return { succeeded: result.succeeded, revision, gets: result.gets };
  }

  watch(prefix: string, onEvents: (events: WatchEvent[]) => void, options: WatchOptions = {}): Watcher {
    return this.reading(() => this.hub.watch(prefix, onEvents, options, () => this.meta()));
  }

  async grantLease(ttlMs: number): Promise<string> {
    this.assertOpen();
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`lease TTL must be positive, got ${ttlMs}`);
    const ttl = Math.ceil(ttlMs);
    return this.writing(() => {
      for (;;) {
        const id = randomBytes(8).toString('hex');
        if (this.s.getLease.get(id)) continue;
        this.s.insertLease.run(id, ttl, this.now() + ttl);
        return id;
      }
    });
  }

  /**
   * Keep-alives asked for within a few milliseconds go in one transaction (a fleet's heartbeats
   * keep thousands of leases alive; a transaction each would be most of the store's work).
   */
  async keepAlive(lease: string): Promise<boolean> {
    this.assertOpen();
    return new Promise((resolve, reject) => {
      this.keepAlives.push({ lease, resolve, reject });
      this.keepAliveTimer ??= setTimeout(() => this.flushKeepAlives(), KEEP_ALIVE_WINDOW_MS);
    });
  }

  private flushKeepAlives(): void {
    this.keepAliveTimer = undefined;
    const batch = this.keepAlives.splice(0);
    let results: boolean[];
    try {
      results = this.write((ctx) =>
        batch.map(({ lease }) => {
          const row = this.s.getLease.get(lease);
          if (!row) return false;
          const now = this.now();
          if (row.expires_at <= now) {
            this.w.revokeIn(ctx, lease);
            return false;
          }
          this.s.extendLease.run(now + row.ttl_ms, lease);
          return true;
        }),
      ).result;
    } catch (err) {
      for (const waiter of batch) waiter.reject(err);
      return;
    }
    batch.forEach((waiter, i) => waiter.resolve(results[i]!));
  }

  async revokeLease(lease: string): Promise<void> {
    this.write((ctx) => this.w.revokeIn(ctx, lease));
  }

  /** The remaining time to live of a lease in ms, or undefined when unknown or expired. */
  async leaseTimeToLive(lease: string): Promise<number | undefined> {
    const row = this.reading(() => this.s.getLease.get(lease));
    if (!row) return undefined;
    // The clock is stopped: the next write that lands gives the lease its whole TTL.
    if (this.leaseClockStopped) return row.ttl_ms;
    const left = row.expires_at - this.now();
    return left > 0 ? left : undefined;
  }

  async revision(): Promise<number> {
    return this.reading(() => this.meta().revision);
  }

  /** The oldest revision a watch can start from. */
  async compactRevision(): Promise<number> {
    return this.reading(() => this.meta().compact_revision);
  }

  /**
   * Forgets history before `revision` (watch fromRevision >= revision still works). A revision
   * at or below the current compact revision is a no-op; one above the current revision throws.
   */
  async compact(revision: number): Promise<void> {
    this.writing(() =>
      this.runWrite(() => {
        const meta = this.meta();
        if (revision > meta.revision) {
          throw new RangeError(`cannot compact to ${revision}: current revision is ${meta.revision}`);
        }
        if (revision <= meta.compact_revision) return;
        this.s.compactHistory.run(revision);
        this.s.setCompactRevision.run(revision);
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.keepAliveTimer) {
      clearTimeout(this.keepAliveTimer);
      this.flushKeepAlives();
    }
    this.closed = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
    this.hub.closeAll();
    this.db.close();
  }
}

export function openSqliteStore(path: string, options?: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(path, options);
}
