// The embedded store: the etcd-like Store interface on one SQLite file (better-sqlite3, WAL).
//
// Data model
// - `meta`     one row: the current revision and the compact revision.
// - `kv`       the live keys: value, create/mod revision, version, lease.
// - `history`  one row per change (revision, seq within the revision), with the key's state
//              after the change and before it (prevKv), so a watch can replay from any revision
//              that has not been compacted.
// - `leases`   id, TTL and absolute expiry (ms since the epoch), so expiry survives a restart.
//
// Semantics worth knowing
// - Revisions start at 0 for an empty store; the first write gets revision 1. Every write
//   (put, delete of an existing key, txn with at least one change, lease revocation/expiry that
//   deletes keys) gets exactly one new revision, whatever the number of keys it touches.
//   Writes that change nothing (delete of a missing key, a txn with only gets) do not bump it.
// - Ops of one txn are applied in order; a 'get' sees the earlier ops of the same txn.
//   Putting the same key twice in one txn is allowed (etcd forbids it): both events share the
//   revision and the version goes up twice.
// - A delete event's kv carries the key, the last value, its createRevision, the deletion
//   revision as modRevision and version 0; prevKv is the full state before the deletion.
//   Put events carry prevKv when the key existed.
// - Watches are delivered asynchronously (microtasks), one onEvents call per revision, in
//   revision order, exactly once. Replay of history and the switch to live delivery happen
//   synchronously inside watch(), so nothing can slip in between.
// - Watch from a compacted revision: with `onCompacted`, the watch is returned already dead and
//   onCompacted(compactRevision) is called once, asynchronously (unless closed first). Without
//   it, watch() throws CompactedError synchronously.
// - Leases are checked every `leaseCheckIntervalMs`; a key whose lease has expired stays
//   visible until that check deletes it (at most one interval later). On open every lease gets
//   its full TTL again, as etcd does when a new leader is elected: the holders could not keep
//   their leases alive while the store was down, and must get the chance before their keys go. revokeLease of an
//   unknown lease is a no-op. put with an unknown or expired lease throws LeaseNotFoundError.
// - One process must own a store file: watches and lease timers only see writes made through
//   this SqliteStore object.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import {
  CompactedError,
  type Compare,
  type KeyValue,
  type RangeOptions,
  type RangeResult,
  type Store,
  type TxnOp,
  type TxnRequest,
  type TxnResult,
  type WatchEvent,
  type Watcher,
  type WatchOptions,
} from './store.js';

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

/** Thrown when a put refers to a lease that does not exist or has expired. */
export class LeaseNotFoundError extends Error {
  constructor(readonly lease: string) {
    super(`lease ${lease} not found or expired`);
    this.name = 'LeaseNotFoundError';
  }
}

const SCHEMA_VERSION = 1;

interface KvRow {
  key: string;
  value: string;
  create_rev: number;
  mod_rev: number;
  version: number;
  lease: string | null;
}

interface HistoryRow {
  revision: number;
  seq: number;
  key: string;
  type: 'put' | 'delete';
  value: string;
  create_rev: number;
  version: number;
  lease: string | null;
  prev_value: string | null;
  prev_create_rev: number | null;
  prev_mod_rev: number | null;
  prev_version: number | null;
  prev_lease: string | null;
}

interface MetaRow {
  revision: number;
  compact_revision: number;
}

interface LeaseRow {
  id: string;
  ttl_ms: number;
  expires_at: number;
}

/**
 * The smallest string greater than every string starting with `prefix`, in the order SQLite
 * compares TEXT (memcmp of UTF-8 = code point order); undefined when there is none ('' or only
 * U+10FFFF). Every key k with prefix <= k < prefixEnd(prefix) starts with prefix and vice versa.
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      cps.push(String.fromCodePoint(next));
      return cps.join('');
    }
  }
  return undefined;
}

function toKv(row: KvRow): KeyValue {
  const kv: KeyValue = {
    key: row.key,
    value: row.value,
    createRevision: row.create_rev,
    modRevision: row.mod_rev,
    version: row.version,
  };
  if (row.lease !== null) kv.lease = row.lease;
  return kv;
}

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

function compareValues(actual: string | number | undefined, op: Compare['op'], expected: string | number): boolean {
  if (actual === undefined) return op === '!=';
  switch (op) {
    case '==':
      return actual === expected;
    case '!=':
      return actual !== expected;
    case '<':
      return actual < expected;
    case '>':
      return actual > expected;
    default:
      throw new Error(`unknown compare op ${String(op)}`);
  }
}

/** One write in progress: everything it changes gets `revision`. */
interface WriteContext {
  revision: number;
  events: WatchEvent[];
}

class SqliteWatcher implements Watcher {
  closed = false;
  private queue: WatchEvent[][] = [];
  private scheduled = false;

  constructor(
    private readonly store: SqliteStore,
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
    this.store.removeWatcher(this);
  }
}

/** The watcher returned for a compacted fromRevision when onCompacted is given: never delivers. */
class DeadWatcher implements Watcher {
  closed = false;
  close(): void {
    this.closed = true;
  }
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly watchers = new Set<SqliteWatcher>();
  private readonly historyRetention: number;
  private readonly compactSlack: number;
  private readonly now: () => number;
  private readonly onWatchError: (error: unknown) => void;
  private leaseTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly s: {
    meta: Database.Statement<[], MetaRow>;
    setRevision: Database.Statement<[number]>;
    setCompactRevision: Database.Statement<[number]>;
    getKv: Database.Statement<[string], KvRow>;
    upsertKv: Database.Statement<[string, string, number, number, number, string | null]>;
    deleteKv: Database.Statement<[string]>;
    rangeFrom: Database.Statement<[string, number], KvRow>;
    rangeBetween: Database.Statement<[string, string, number], KvRow>;
    deleteFrom: Database.Statement<[string]>;
    deleteBetween: Database.Statement<[string, string]>;
    insertHistory: Database.Statement<
      [
        number,
        number,
        string,
        string,
        string,
        number,
        number,
        string | null,
        string | null,
        number | null,
        number | null,
        number | null,
        string | null,
      ]
    >;
    historyFrom: Database.Statement<[number, string], HistoryRow>;
    historyBetween: Database.Statement<[number, string, string], HistoryRow>;
    compactHistory: Database.Statement<[number]>;
    getLease: Database.Statement<[string], LeaseRow>;
    refreshLeases: Database.Statement<[number]>;
    insertLease: Database.Statement<[string, number, number]>;
    extendLease: Database.Statement<[number, string]>;
    deleteLease: Database.Statement<[string]>;
    keysByLease: Database.Statement<[string], KvRow>;
    deleteByLease: Database.Statement<[string]>;
    expiredLeases: Database.Statement<[number], { id: string }>;
  };

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

    if (path !== ':memory:' && path !== '') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    this.db = db;
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (error) {
      db.close();
      throw error;
    }

    this.s = {
      meta: db.prepare('SELECT revision, compact_revision FROM meta WHERE id = 1'),
      setRevision: db.prepare('UPDATE meta SET revision = ? WHERE id = 1'),
      setCompactRevision: db.prepare('UPDATE meta SET compact_revision = ? WHERE id = 1'),
      getKv: db.prepare('SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?'),
      upsertKv: db.prepare(
        `INSERT INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, create_rev = excluded.create_rev,
           mod_rev = excluded.mod_rev, version = excluded.version, lease = excluded.lease`,
      ),
      deleteKv: db.prepare('DELETE FROM kv WHERE key = ?'),
      rangeFrom: db.prepare(
        'SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key >= ? ORDER BY key LIMIT ?',
      ),
      rangeBetween: db.prepare(
        'SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?',
      ),
      deleteFrom: db.prepare('DELETE FROM kv WHERE key >= ?'),
      deleteBetween: db.prepare('DELETE FROM kv WHERE key >= ? AND key < ?'),
      insertHistory: db.prepare(
        `INSERT INTO history (revision, seq, key, type, value, create_rev, version, lease,
           prev_value, prev_create_rev, prev_mod_rev, prev_version, prev_lease)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      historyFrom: db.prepare(
        'SELECT * FROM history WHERE revision >= ? AND key >= ? ORDER BY revision, seq',
      ),
      historyBetween: db.prepare(
        'SELECT * FROM history WHERE revision >= ? AND key >= ? AND key < ? ORDER BY revision, seq',
      ),
      compactHistory: db.prepare('DELETE FROM history WHERE revision < ?'),
      getLease: db.prepare('SELECT id, ttl_ms, expires_at FROM leases WHERE id = ?'),
      insertLease: db.prepare('INSERT INTO leases (id, ttl_ms, expires_at) VALUES (?, ?, ?)'),
      extendLease: db.prepare('UPDATE leases SET expires_at = ? WHERE id = ?'),
      refreshLeases: db.prepare('UPDATE leases SET expires_at = ? + ttl_ms'),
      deleteLease: db.prepare('DELETE FROM leases WHERE id = ?'),
      keysByLease: db.prepare(
        'SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE lease = ? ORDER BY key',
      ),
      deleteByLease: db.prepare('DELETE FROM kv WHERE lease = ?'),
      expiredLeases: db.prepare('SELECT id FROM leases WHERE expires_at <= ? ORDER BY expires_at'),
    };

    const write = db.transaction((fn: () => unknown) => fn());
    this.runWrite = (fn) => write.immediate(fn);
    this.runRead = db.transaction((fn: () => unknown) => fn());

    this.s.refreshLeases.run(this.now());
    this.leaseTimer = setInterval(() => {
      try {
        this.reapExpiredLeases();
      } catch (error) {
        if (!this.closed) console.error('gantry store: lease expiry failed:', error);
      }
    }, leaseCheckIntervalMs);
    this.leaseTimer.unref();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version !== 0) {
      throw new Error(`store schema version ${version} is not supported (expected ${SCHEMA_VERSION})`);
    }
    this.db.exec(`
      BEGIN;
      CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL,
        compact_revision INTEGER NOT NULL
      );
      INSERT INTO meta (id, revision, compact_revision) VALUES (1, 0, 0);
      CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        create_rev INTEGER NOT NULL,
        mod_rev INTEGER NOT NULL,
        version INTEGER NOT NULL,
        lease TEXT
      ) WITHOUT ROWID;
      CREATE INDEX kv_lease ON kv (lease) WHERE lease IS NOT NULL;
      CREATE TABLE history (
        revision INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        key TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('put', 'delete')),
        value TEXT NOT NULL,
        create_rev INTEGER NOT NULL,
        version INTEGER NOT NULL,
        lease TEXT,
        prev_value TEXT,
        prev_create_rev INTEGER,
        prev_mod_rev INTEGER,
        prev_version INTEGER,
        prev_lease TEXT,
        PRIMARY KEY (revision, seq)
      ) WITHOUT ROWID;
      CREATE TABLE leases (
        id TEXT PRIMARY KEY,
        ttl_ms INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX leases_expiry ON leases (expires_at);
      PRAGMA user_version = ${SCHEMA_VERSION};
      COMMIT;
    `);
  }

  // ---- internals -------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  private meta(): MetaRow {
    return this.s.meta.get()!;
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction; whatever it changes through the ctx helpers gets one
   * new revision. Publishes the events to watchers after the commit.
   */
  private write<T>(fn: (ctx: WriteContext) => T): { result: T; revision: number; events: WatchEvent[] } {
    this.assertOpen();
    let ctx: WriteContext | undefined;
    let result!: T;
    this.runWrite(() => {
      const meta = this.meta();
      ctx = { revision: meta.revision + 1, events: [] };
      result = fn(ctx);
      if (ctx.events.length > 0) {
        this.s.setRevision.run(ctx.revision);
        this.autoCompact(ctx.revision, meta.compact_revision);
      }
    });
    const { revision, events } = ctx!;
    if (events.length === 0) return { result, revision: revision - 1, events };
    this.publish(events);
    return { result, revision, events };
  }

  private autoCompact(revision: number, compactRevision: number): void {
    if (revision - compactRevision < this.historyRetention + this.compactSlack) return;
    const target = revision - this.historyRetention + 1;
    this.s.compactHistory.run(target);
    this.s.setCompactRevision.run(target);
  }

  private record(ctx: WriteContext, event: WatchEvent): void {
    const { kv, prevKv } = event;
    this.s.insertHistory.run(
      ctx.revision,
      ctx.events.length,
      kv.key,
      event.type,
      kv.value,
      kv.createRevision,
      kv.version,
      kv.lease ?? null,
      prevKv?.value ?? null,
      prevKv?.createRevision ?? null,
      prevKv?.modRevision ?? null,
      prevKv?.version ?? null,
      prevKv?.lease ?? null,
    );
    ctx.events.push(event);
  }

  private putIn(ctx: WriteContext, key: string, value: string, lease: string | undefined): void {
    if (typeof key !== 'string' || key === '') throw new TypeError('key must be a non-empty string');
    if (typeof value !== 'string') throw new TypeError(`value for ${key} must be a string`);
    if (lease !== undefined) {
      const row = this.s.getLease.get(lease);
      if (!row || row.expires_at <= this.now()) throw new LeaseNotFoundError(lease);
    }
    const prevRow = this.s.getKv.get(key);
    const createRevision = prevRow ? prevRow.create_rev : ctx.revision;
    const version = prevRow ? prevRow.version + 1 : 1;
    this.s.upsertKv.run(key, value, createRevision, ctx.revision, version, lease ?? null);
    const kv: KeyValue = { key, value, createRevision, modRevision: ctx.revision, version };
    if (lease !== undefined) kv.lease = lease;
    const event: WatchEvent = { type: 'put', kv, revision: ctx.revision };
    if (prevRow) event.prevKv = toKv(prevRow);
    this.record(ctx, event);
  }

  private recordDelete(ctx: WriteContext, prevRow: KvRow): void {
    const prevKv = toKv(prevRow);
    const kv: KeyValue = {
      key: prevRow.key,
      value: prevRow.value,
      createRevision: prevRow.create_rev,
      modRevision: ctx.revision,
      version: 0,
    };
    this.record(ctx, { type: 'delete', kv, prevKv, revision: ctx.revision });
  }

  private deleteIn(ctx: WriteContext, key: string): boolean {
    const prevRow = this.s.getKv.get(key);
    if (!prevRow) return false;
    this.s.deleteKv.run(key);
    this.recordDelete(ctx, prevRow);
    return true;
  }

  private deletePrefixIn(ctx: WriteContext, prefix: string): number {
    const end = prefixEnd(prefix);
    let rows: KvRow[];
    if (end === undefined) {
      rows = this.s.rangeFrom.all(prefix, -1);
      if (rows.length > 0) this.s.deleteFrom.run(prefix);
    } else {
      rows = this.s.rangeBetween.all(prefix, end, -1);
      if (rows.length > 0) this.s.deleteBetween.run(prefix, end);
    }
    for (const row of rows) this.recordDelete(ctx, row);
    return rows.length;
  }

  private revokeIn(ctx: WriteContext, lease: string): void {
    const rows = this.s.keysByLease.all(lease);
    if (rows.length > 0) this.s.deleteByLease.run(lease);
    for (const row of rows) this.recordDelete(ctx, row);
    this.s.deleteLease.run(lease);
  }

  private reapExpiredLeases(): void {
    if (this.closed) return;
    const expired = this.s.expiredLeases.all(this.now());
    for (const { id } of expired) {
      this.write((ctx) => {
        // Re-check inside the transaction: a keepAlive may have run in between.
        const row = this.s.getLease.get(id);
        if (row && row.expires_at <= this.now()) this.revokeIn(ctx, id);
      });
    }
  }

  private publish(events: WatchEvent[]): void {
    for (const watcher of this.watchers) {
      const batch = watcher.prefix === '' ? events : events.filter((e) => e.kv.key.startsWith(watcher.prefix));
      if (batch.length > 0) watcher.enqueue(batch);
    }
  }

  /** @internal */
  removeWatcher(watcher: SqliteWatcher): void {
    this.watchers.delete(watcher);
  }

  private compareOne(c: Compare): boolean {
    const row = this.s.getKv.get(c.key);
    if (c.target === 'value') {
      if (typeof c.value !== 'string') throw new TypeError(`compare on value of ${c.key} needs a string`);
      return compareValues(row?.value, c.op, c.value);
    }
    if (typeof c.value !== 'number') throw new TypeError(`compare on ${c.target} of ${c.key} needs a number`);
    let actual: number;
    switch (c.target) {
      case 'version':
        actual = row?.version ?? 0;
        break;
      case 'createRevision':
        actual = row?.create_rev ?? 0;
        break;
      case 'modRevision':
        actual = row?.mod_rev ?? 0;
        break;
      default:
        throw new Error(`unknown compare target ${String(c.target)}`);
    }
    return compareValues(actual, c.op, c.value);
  }

  private runOps(ctx: WriteContext, ops: TxnOp[], gets: (KeyValue | undefined)[]): void {
    for (const op of ops) {
      switch (op.type) {
        case 'put':
          this.putIn(ctx, op.key, op.value, op.lease);
          break;
        case 'delete':
          this.deleteIn(ctx, op.key);
          break;
        case 'deletePrefix':
          this.deletePrefixIn(ctx, op.prefix);
          break;
        case 'get': {
          const row = this.s.getKv.get(op.key);
          gets.push(row ? toKv(row) : undefined);
          break;
        }
        default:
          throw new Error(`unknown txn op ${String((op as { type: unknown }).type)}`);
      }
    }
  }

  // ---- Store -----------------------------------------------------------------------------

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    const row = this.s.getKv.get(key);
    return row ? toKv(row) : undefined;
  }

  async range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    this.assertOpen();
    const limit = options.limit !== undefined && options.limit > 0 ? Math.floor(options.limit) : -1;
    const end = prefixEnd(prefix);
    let out!: RangeResult;
    this.runRead(() => {
      const rows = end === undefined ? this.s.rangeFrom.all(prefix, limit) : this.s.rangeBetween.all(prefix, end, limit);
      out = { kvs: rows.map(toKv), revision: this.meta().revision };
    });
    return out;
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<number> {
    return this.write((ctx) => this.putIn(ctx, key, value, options.lease)).revision;
  }

  async delete(key: string): Promise<number | undefined> {
    const { result, revision } = this.write((ctx) => this.deleteIn(ctx, key));
    return result ? revision : undefined;
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    const { result, revision } = this.write((ctx) => {
      const succeeded = request.compare.every((c) => this.compareOne(c));
      const gets: (KeyValue | undefined)[] = [];
      this.runOps(ctx, succeeded ? request.success : (request.failure ?? []), gets);
      return { succeeded, gets };
    });
    return { succeeded: result.succeeded, revision, gets: result.gets };
  }

  watch(prefix: string, onEvents: (events: WatchEvent[]) => void, options: WatchOptions = {}): Watcher {
    this.assertOpen();
    const from = options.fromRevision !== undefined && options.fromRevision > 0 ? options.fromRevision : 0;
    const watcher = new SqliteWatcher(this, prefix, onEvents, this.onWatchError, from);
    if (from > 0) {
      // Replay and registration happen in this one synchronous block: no write can interleave,
      // so every revision >= from is delivered exactly once (history first, then live).
      const meta = this.meta();
      if (from < meta.compact_revision) {
        const onCompacted = options.onCompacted;
        if (!onCompacted) throw new CompactedError(meta.compact_revision);
        const dead = new DeadWatcher();
        queueMicrotask(() => {
          if (!dead.closed && !this.closed) onCompacted(meta.compact_revision);
        });
        return dead;
      }
      if (from <= meta.revision) {
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

  async grantLease(ttlMs: number): Promise<string> {
    this.assertOpen();
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`lease TTL must be positive, got ${ttlMs}`);
    const ttl = Math.ceil(ttlMs);
    for (;;) {
      const id = randomBytes(8).toString('hex');
      if (this.s.getLease.get(id)) continue;
      this.s.insertLease.run(id, ttl, this.now() + ttl);
      return id;
    }
  }

  async keepAlive(lease: string): Promise<boolean> {
    return this.write((ctx) => {
      const row = this.s.getLease.get(lease);
      if (!row) return false;
      const now = this.now();
      if (row.expires_at <= now) {
        this.revokeIn(ctx, lease);
        return false;
      }
      this.s.extendLease.run(now + row.ttl_ms, lease);
      return true;
    }).result;
  }

  async revokeLease(lease: string): Promise<void> {
    this.write((ctx) => this.revokeIn(ctx, lease));
  }

  /** The remaining time to live of a lease in ms, or undefined when unknown or expired. */
  async leaseTimeToLive(lease: string): Promise<number | undefined> {
    this.assertOpen();
    const row = this.s.getLease.get(lease);
    if (!row) return undefined;
    const left = row.expires_at - this.now();
    return left > 0 ? left : undefined;
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.meta().revision;
  }

  /** The oldest revision a watch can start from. */
  async compactRevision(): Promise<number> {
    this.assertOpen();
    return this.meta().compact_revision;
  }

  /**
   * Forgets history before `revision` (watch fromRevision >= revision still works). A revision
   * at or below the current compact revision is a no-op; one above the current revision throws.
   */
  async compact(revision: number): Promise<void> {
    this.assertOpen();
    this.runWrite(() => {
      const meta = this.meta();
      if (revision > meta.revision) {
        throw new RangeError(`cannot compact to ${revision}: current revision is ${meta.revision}`);
      }
      if (revision <= meta.compact_revision) return;
      this.s.compactHistory.run(revision);
      this.s.setCompactRevision.run(revision);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
    for (const watcher of [...this.watchers]) watcher.close();
    this.db.close();
  }
}

export function openSqliteStore(path: string, options?: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(path, options);
}
