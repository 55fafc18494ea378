// The tables of the embedded store (see sqlite.ts), their migrations, the prepared statements
// and the row types they return.
//
// Data model
// - `meta`     one row: the current revision and the compact revision.
// - `kv`       the live keys: value, create/mod revision, version, lease.
// - `history`  one row per change (revision, seq within the revision), with the key's state
//              after the change and before it (prevKv), so a watch can replay from any revision
//              that has not been compacted.
// - `leases`   id, TTL and absolute expiry (ms since the epoch), so expiry survives a restart.
import type Database from 'better-sqlite3';
import type { KeyValue } from './store.js';

const SCHEMA_VERSION = 1;

export interface KvRow {
  key: string;
  value: string;
  create_rev: number;
  mod_rev: number;
  version: number;
  lease: string | null;
}

export interface HistoryRow {
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

export interface MetaRow {
  revision: number;
  compact_revision: number;
}

export interface LeaseRow {
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

export function toKv(row: KvRow): KeyValue {
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

/** Creates the tables in a new file; refuses a file with another schema version. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  if (version !== 0) {
    throw new Error(`store schema version ${version} is not supported (expected ${SCHEMA_VERSION})`);
  }
  db.exec(`
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

export interface Statements {
  meta: Database.Statement<[], MetaRow>;
  setRevision: Database.Statement<[number]>;
  setCompactRevision: Database.Statement<[number]>;
  getKv: Database.Statement<[string], KvRow>;
  upsertKv: Database.Statement<[string, string, number, number, number, string | null]>;
  deleteKv: Database.Statement<[string]>;
  rangeFrom: Database.Statement<[string, number], KvRow>;
  rangeBetween: Database.Statement<[string, string, number], KvRow>;
  rangeFromReverse: Database.Statement<[string, number], KvRow>;
  rangeBetweenReverse: Database.Statement<[string, string, number], KvRow>;
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
}

export function prepareStatements(db: Database.Database): Statements {
  return {
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
    rangeFromReverse: db.prepare(
      'SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key >= ? ORDER BY key DESC LIMIT ?',
    ),
    rangeBetweenReverse: db.prepare(
      'SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key >= ? AND key < ? ORDER BY key DESC LIMIT ?',
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
}
