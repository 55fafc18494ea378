// The audit log: who asked the server to change what, when, from where, and what came of it;
// every sign-in and failed one too. Appended after each answer (the request's outcome is then
// known), kept in the store under /audit/ (it survives restarts and is in every backup), read
// through GET /v1/audit and never changed through the API. The newest `keep` entries are kept.
// An entry names the route and its parameters, never the request's body: no secret value
// (a password, an env value) reaches the log.
import type { KeyValue, Store } from '../../store/store.js';
import type { AuditRecord } from '../../model/types.js';
import { STORE } from '../keys.js';
import { AppendOnlyLog, newestMatching } from './append-only.js';

export interface AuditFilter {
  user?: string;
  team?: string;
  since?: number;
  limit?: number;
}

export class AuditLog {
  private readonly log: AppendOnlyLog;
  /** Entries that could not be written (a full disk): said on stderr as they happen, counted here. */
  lost = 0;

  constructor(private readonly store: Store, keep = 100_000) {
    this.log = new AppendOnlyLog(store, STORE.audit.prefix, (suffix) => STORE.audit.key(suffix), keep);
  }

  /** Appends without failing the caller: the request was answered already. */
  append(entry: AuditRecord): void {
    this.store
      .txn({ compare: [], success: [{ type: 'put', key: this.log.nextKey(entry.time), value: STORE.audit.encode(entry) }] })
      .then(
        () => this.log.appended(1).catch((err: Error) => console.error(`gantry server: trimming the audit log failed (tried again later): ${err.message}`)),
        (err: Error) => {
          this.lost++;
          console.error(`gantry server: an audit entry was not written (${entry.method} ${entry.route} by ${entry.who}): ${err.message}`);
        },
      );
  }

  /** Oldest first; `limit` keeps the newest that many. */
  async list(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const pick = (kv: KeyValue): AuditRecord | undefined => {
      const e = STORE.audit.decode(kv.value);
      return (filter.since === undefined || e.time >= filter.since) && (filter.user === undefined || e.who === filter.user || e.user === filter.user) && (filter.team === undefined || e.team === filter.team) ? e : undefined;
    };
    if (filter.limit) return newestMatching(this.store, STORE.audit.prefix, filter.limit, pick);
    const { kvs } = await this.store.range(STORE.audit.prefix);
    return kvs.flatMap((kv) => pick(kv) ?? []);
  }
}
