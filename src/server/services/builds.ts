// Build records: image builds run on the users' own Docker Engines (`gantry build`, `gantry apply
// --build`), and the CLI that ran one reports it here, succeeded or failed, so the cluster keeps
// who built which image from which commit, how long it took, the digest it pushed and the end of
// its log. Records are append-only and only the newest KEEP are kept: they are history, not state.
import { randomBytes } from 'node:crypto';
import type { Store } from '../../store/store.js';
import type { BuildRecord } from '../../model/types.js';
import { formatDuration } from '../../model/units.js';
import type { EventLog } from './events.js';
import { STORE } from '../keys.js';
import { NotFoundError } from '../errors.js';

/** What a client reports of a build (validated by the route); the server adds id, by and at. */
export type BuildReport = Omit<BuildRecord, 'id' | 'by' | 'at'>;

/** A build as listed: without its log (GET /v1/builds/{id} has it), so a list stays small. */
export type BuildSummary = Omit<BuildRecord, 'logTail'> & { logLines: number };

export const KEEP_BUILDS = 1000;

/** Time-sortable ids, so store keys sort oldest first (two builds recorded in the same millisecond, by chance). */
export function buildId(now: number): string {
  return `${String(now).padStart(14, '0')}-${randomBytes(4).toString('hex')}`;
}

export class BuildService {
  constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly keep = KEEP_BUILDS,
  ) {}

  async record(report: BuildReport, by: string): Promise<BuildRecord> {
    const at = Date.now();
    const record: BuildRecord = { id: buildId(at), ...report, by, at };
    await this.store.put(STORE.builds.key(record.id), STORE.builds.encode(record));
    this.events.note({ level: record.result === 'succeeded' ? 'info' : 'warning', type: `build.${record.result}`, ...(record.app ? { app: record.app } : {}), message: describe(record), data: { build: record.id } });
    // The record has landed; trimming is housekeeping that the next record does again.
    await this.trim().catch((err: Error) => console.error(`gantry server: trimming old build records failed (tried again with the next): ${err.message}`));
    return record;
  }

  /** Newest first; `app`: only the builds made for that app. */
  async list(filter: { app?: string; limit: number }): Promise<BuildSummary[]> {
    const { kvs } = await this.store.range(STORE.builds.prefix);
    const out: BuildSummary[] = [];
    for (let i = kvs.length - 1; i >= 0 && out.length < filter.limit; i--) {
      const { logTail, ...rest } = STORE.builds.decode(kvs[i]!.value);
      if (filter.app === undefined || rest.app === filter.app) out.push({ ...rest, logLines: logTail.length });
    }
    return out;
  }

  async get(id: string): Promise<BuildRecord> {
    const kv = await this.store.get(STORE.builds.key(id));
    if (!kv) throw new NotFoundError(`no build ${id} (only the newest ${this.keep} are kept)`);
    return STORE.builds.decode(kv.value);
  }

  /** Deletes the oldest records beyond `keep` (keys sort by time). */
  private async trim(): Promise<void> {
    const { kvs } = await this.store.range(STORE.builds.prefix);
    const excess = kvs.length - this.keep;
    if (excess <= 0) return;
    await this.store.txn({ compare: [], success: kvs.slice(0, excess).map((kv) => ({ type: 'delete' as const, key: kv.key })) });
  }
}

/** The event's message: who built what, and what came of it. */
function describe(b: BuildRecord): string {
  const outcome = b.result === 'succeeded' ? (b.digest ? `pushed as ${b.digest}` : 'built, not pushed') : `failed: ${b.error ?? 'no reason given'}`;
  const commit = b.commit ? ` from commit ${b.commit.slice(0, 12)}${b.dirty ? ' (with uncommitted changes)' : ''}` : '';
  return `build of ${b.image} by ${b.by}${commit} ${outcome} (${formatDuration(b.durationMs)}, source ${b.source})`;
}
