// Blind writes (no compare) that many callers make at once, each small — statuses and endpoint
// registrations from hundreds of agents — go to the store together: the writes asked for within
// one short window become one transaction, and each caller learns its revision (or the error:
// then none of the window's writes landed). A transaction costs far more than a key in it, so a
// fleet's reports cost a few writes a second instead of thousands.
import type { Store, TxnOp } from '../store/store.js';

/** How long writes wait for company. */
const WINDOW_MS = 5;
/** A window holding this many operations goes at once. */
const MAX_OPS = 5000;

export class WriteBatch {
  private ops: TxnOp[] = [];
  private waiting: { resolve: (revision: number) => void; reject: (err: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: Store) {}

  /** Writes `ops` (in order, after any asked for before) with the window's others; resolves with the revision. */
  write(ops: readonly TxnOp[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.ops.push(...ops);
      this.waiting.push({ resolve, reject });
      if (this.ops.length >= MAX_OPS) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), WINDOW_MS);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const ops = this.ops;
    const waiting = this.waiting;
    this.ops = [];
    this.waiting = [];
    this.store.txn({ compare: [], success: ops }).then(
      ({ revision }) => { for (const w of waiting) w.resolve(revision); },
      (err: unknown) => { for (const w of waiting) w.reject(err); },
    );
  }
}
