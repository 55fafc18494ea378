// The audit log: who asked the server to change what, when, from where, and what came of it;
// every sign-in and failed one too. Appended after each answer (the request's outcome is then
// known), kept in the store under /audit/ (it survives restarts and is in every backup), read
// through GET /v1/audit and never changed through the API. The newest `keep` entries are kept.
// An entry names the route and its parameters, never the request's body: no secret value
// (a password, an env value) reaches the log.
import type { Store } from '../../store/store.js';
import type { AuditRecord } from '../../model/types.js';
import { STORE } from '../keys.js';

export interface AuditFilter {
  user?: string;
  team?: string;
  since?: number;
  limit?: number;
}

export class AuditLog {
  private counter = 0;
  private sinceTrim = 0;
  private stored: number | undefined;
  /** Entries that could not be written (a full disk): said on stderr as they happen, counted here. */
  lost = 0;

  constructor(private readonly store: Store, private readonly keep = 100_000) {}

  /** Appends without failing the caller: the request was answered already. */
  append(entry: AuditRecord): void {
    const key = STORE.audit.key(`${String(entry.time).padStart(14, '0')}-${String(this.counter++ % 1e6).padStart(6, '0')}`);
    this.store
      .txn({ compare: [], success: [{ type: 'put', key, value: STORE.audit.encode(entry) }] })
      .then(async () => {
        if (this.stored !== undefined) this.stored++;
        if (++this.sinceTrim >= 1000) {
          this.sinceTrim = 0;
          await this.trim();
        }
      })
      .catch((err: Error) => {
        this.lost++;
        console.error(`gantry server: an audit entry was not written (${entry.method} ${entry.route} by ${entry.who}): ${err.message}`);
      });
  }

  /** Oldest first; `limit` keeps the newest that many. */
  async list(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const { kvs } = await this.store.range(STORE.audit.prefix);
    const entries = kvs
      .map((kv) => STORE.audit.decode(kv.value))
      .filter((e) => (filter.since === undefined || e.time >= filter.since) && (filter.user === undefined || e.who === filter.user || e.user === filter.user) && (filter.team === undefined || e.team === filter.team));
    return filter.limit ? entries.slice(-filter.limit) : entries;
  }

  private async trim(): Promise<void> {
    this.stored ??= (await this.store.range(STORE.audit.prefix)).kvs.length;
    const excess = this.stored - this.keep;
    if (excess <= 0) return;
    const { kvs } = await this.store.range(STORE.audit.prefix, { limit: excess });
    await this.store.txn({ compare: [], success: kvs.map((kv) => ({ type: 'delete' as const, key: kv.key })) });
    this.stored -= kvs.length;
  }
}
