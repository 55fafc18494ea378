// What the append-only logs under the store (events, the audit log) share: keys that sort by
// time (and by a counter within one millisecond), and trimming to the newest `keep` entries
// without reading the whole log each time (the count is read once, then followed).
import type { KeyValue, Store } from '../../store/store.js';

/** Trim once this many entries were appended since the last trim. */
const TRIM_EVERY = 1000;
/** Entries read per page when looking for the newest ones that match. */
const PAGE = 500;

/**
 * The newest `limit` entries under `prefix` that `pick` keeps (it decodes and filters; undefined
 * drops an entry), oldest first. Reads pages from the newest end and stops once it has enough: a
 * "last 100 events of this app" no longer decodes the whole log (up to tens of thousands).
 */
export async function newestMatching<T>(store: Store, prefix: string, limit: number, pick: (kv: KeyValue) => T | undefined): Promise<T[]> {
  const found: T[] = [];
  let before: string | undefined;
  while (found.length < limit) {
    const { kvs } = await store.range(prefix, { newestFirst: true, limit: PAGE, before });
    for (const kv of kvs) {
      const entry = pick(kv);
      if (entry !== undefined) found.push(entry);
      if (found.length === limit) break;
    }
    if (kvs.length < PAGE) break;
    before = kvs[kvs.length - 1]!.key;
  }
  return found.reverse();
}

export class AppendOnlyLog {
  private counter = 0;
  private sinceTrim = 0;
  /** How many entries the store holds, as far as this log knows. */
  private stored: number | undefined;

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    /** The store key of an entry from its time-sortable suffix (the collection's own key). */
    private readonly keyOf: (suffix: string) => string,
    private readonly keep: number,
  ) {}

  /** The key of the next entry written at `time`. */
  nextKey(time: number): string {
    return this.keyOf(`${String(time).padStart(14, '0')}-${String(this.counter++ % 1e6).padStart(6, '0')}`);
  }

  /** `count` entries landed; every TRIM_EVERY of them, the oldest beyond `keep` are deleted (rejects when that fails). */
  async appended(count: number): Promise<void> {
    if (this.stored !== undefined) this.stored += count;
    this.sinceTrim += count;
    if (this.sinceTrim < TRIM_EVERY) return;
    this.sinceTrim = 0;
    this.stored ??= (await this.store.range(this.prefix)).kvs.length;
    const excess = this.stored - this.keep;
    if (excess <= 0) return;
    const { kvs } = await this.store.range(this.prefix, { limit: excess });
    await this.store.txn({ compare: [], success: kvs.map((kv) => ({ type: 'delete' as const, key: kv.key })) });
    this.stored -= kvs.length;
  }
}
