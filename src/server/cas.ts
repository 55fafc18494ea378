// The one way the server changes a record it has read: read it, compute the new value from what
// is stored now (never from a cached copy), write it only if nobody wrote in between, and try
// again a few times if somebody did. A plain put of a cached record would silently undo a
// concurrent change (a heartbeat undoing a cordon, a restart request reviving an instance being
// removed); this makes such races retry on fresh data instead.
import type { Compare, Store, TxnOp } from '../store/store.js';
import { ConflictError } from './errors.js';

/** Returned by a change function: leave the record as it is (no write). */
export const UNCHANGED: unique symbol = Symbol('unchanged');

export interface Codec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

export interface CasOptions<T> {
  /** Attempts before giving up with a ConflictError (default 5). */
  attempts?: number;
  /** More writes that must land in the same transaction as the new value (e.g. a release record with an app). */
  also?: (next: T | null, current: T | undefined) => TxnOp[];
  /** More conditions the transaction needs (e.g. a node's allocation guard), asked again on each attempt. */
  compare?: () => Compare[];
  /** Says what raced, for the ConflictError. */
  what?: string;
}

export interface CasResult<T> {
  /** The value stored now (undefined when deleted or absent). */
  value: T | undefined;
  /** The store revision of the write; undefined when nothing was written. */
  revision?: number;
}

/**
 * Applies `change` to the record at `key` atomically: `change` gets the stored value (undefined
 * when there is none) and returns the new value, `null` to delete it, or UNCHANGED. It may be
 * called more than once (after a conflict), so it must not have side effects; it may throw to
 * refuse (a NotFoundError, say), which is passed on.
 */
export async function casUpdate<T>(store: Store, key: string, codec: Codec<T>, change: (current: T | undefined) => T | null | typeof UNCHANGED, options: CasOptions<T> = {}): Promise<CasResult<T>> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    const kv = await store.get(key);
    const current = kv ? codec.decode(kv.value) : undefined;
    const next = change(current);
    if (next === UNCHANGED) return { value: current };
    const write: TxnOp = next === null ? { type: 'delete', key } : { type: 'put', key, value: codec.encode(next) };
    const result = await store.txn({
      compare: [{ key, target: 'modRevision', op: '==', value: kv?.modRevision ?? 0 }, ...(options.compare?.() ?? [])],
      success: [write, ...(options.also?.(next, current) ?? [])],
    });
    if (result.succeeded) return { value: next ?? undefined, revision: result.revision };
    if (attempt >= attempts) throw new ConflictError(`${options.what ?? key} kept changing while it was being updated (${attempts} tries); try again`);
  }
}
