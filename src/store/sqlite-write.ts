// The changes a write of the embedded store (see sqlite.ts) makes inside its transaction: puts,
// deletes, lease revocation, txn compares and ops, each recorded in `history` for watches.
//
// - Ops of one txn are applied in order; a 'get' sees the earlier ops of the same txn.
//   Putting the same key twice in one txn is allowed (etcd forbids it): both events share the
//   revision and the version goes up twice.
// - A delete event's kv carries the key, the last value, its createRevision, the deletion
//   revision as modRevision and version 0; prevKv is the full state before the deletion.
//   Put events carry prevKv when the key existed.
import type { Compare, KeyValue, TxnOp, WatchEvent } from './store.js';
import { prefixEnd, toKv, type KvRow, type Statements } from './sqlite-schema.js';

/** Thrown when a put refers to a lease that does not exist or has expired. */
export class LeaseNotFoundError extends Error {
  constructor(readonly lease: string) {
    super(`lease ${lease} not found or expired`);
    this.name = 'LeaseNotFoundError';
  }
}

/** One write in progress: everything it changes gets `revision`. */
export interface WriteContext {
  revision: number;
  events: WatchEvent[];
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

/** The write steps of one SqliteStore; each runs inside the store's write transaction. */
export class SqliteWrites {
  constructor(
    private readonly s: Statements,
    /** Clock used for lease expiry (ms since the epoch). */
    private readonly now: () => number,
  ) {}

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

  putIn(ctx: WriteContext, key: string, value: string, lease: string | undefined): void {
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

  deleteIn(ctx: WriteContext, key: string): boolean {
    const prevRow = this.s.getKv.get(key);
    if (!prevRow) return false;
    this.s.deleteKv.run(key);
    this.recordDelete(ctx, prevRow);
    return true;
  }

  deletePrefixIn(ctx: WriteContext, prefix: string): number {
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

  revokeIn(ctx: WriteContext, lease: string): void {
    const rows = this.s.keysByLease.all(lease);
    if (rows.length > 0) this.s.deleteByLease.run(lease);
    for (const row of rows) this.recordDelete(ctx, row);
    this.s.deleteLease.run(lease);
  }

  compareOne(c: Compare): boolean {
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

  runOps(ctx: WriteContext, ops: TxnOp[], gets: (KeyValue | undefined)[]): void {
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
}
