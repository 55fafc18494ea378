// Node inspection results, kept: the latest run of each node at `/inspections/{node}`, per check
// its status and since when it has had it (what alert rules read), and an event each time a
// check's status changes (never on a run that changes nothing, so a failing check is said once).
import type { Store } from '../../store/store.js';
import type { CheckResult, CheckStatus, InspectionRecord, InspectPolicy, StoredCheck } from '../../model/inspection.js';
import type { EventLevel } from '../../model/types.js';
import { STORE } from '../keys.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import type { EventLog } from './events.js';

/**
 * How old stored values may get when no check changed status: a node's periodic run that only
 * moves a disk figure by a point is not written every time (5,000 nodes every 5 minutes would be
 * 17 writes a second for nothing new); an inspection someone asked for is always written.
 */
export const REFRESH_UNCHANGED_MS = 30 * 60_000;

const EVENT_OF: Record<CheckStatus, { type: string; level: EventLevel; says: string }> = {
  fail: { type: 'node.check_failed', level: 'error', says: 'fails' },
  warn: { type: 'node.check_warning', level: 'warning', says: 'warns' },
  error: { type: 'node.check_error', level: 'warning', says: 'cannot be checked' },
  pass: { type: 'node.check_passed', level: 'info', says: 'passes' },
};

export class InspectionService {
  constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    /** The policy agents are given (--inspect-policy, or the default). */
    readonly policy: InspectPolicy,
  ) {}

  /** Stores a node's results; records an event for each check whose status changed. */
  /** `asked`: someone asked for this run (gantry node inspect): stored even when nothing changed. */
  async record(node: string, results: readonly CheckResult[], now = Date.now(), asked = false): Promise<InspectionRecord> {
    let changed: { result: CheckResult; before?: CheckStatus }[] = [];
    const { value } = await casUpdate(this.store, STORE.inspections.key(node), STORE.inspections, (current) => {
      changed = [];
      const checks: Record<string, StoredCheck> = {};
      for (const result of results) {
        const previous = current?.checks[result.check];
        const same = previous?.status === result.status;
        checks[result.check] = { ...result, since: same ? previous.since : now };
        // A first pass says nothing: only news (a problem, or one gone) is an event.
        if (!same && (previous || result.status !== 'pass')) changed.push({ result, before: previous?.status });
      }
      const sameChecks = current !== undefined && Object.keys(current.checks).length === results.length && results.every((r) => current.checks[r.check]?.status === r.status);
      if (sameChecks && !asked && now - current.at < REFRESH_UNCHANGED_MS) return UNCHANGED;
      return { node, at: now, checks };
    }, { what: `the inspection of node ${node}` });
    for (const { result, before } of changed) {
      const event = EVENT_OF[result.status];
      const was = before ? ` (was ${before})` : '';
      this.events.note({
        level: event.level,
        type: event.type,
        node,
        message: `node ${node}: check ${result.check} ${event.says}${was}: ${result.value} (${result.threshold}): ${result.message}`,
        data: { check: result.check, status: result.status, value: result.value, threshold: result.threshold, ...(before ? { before } : {}) },
      });
    }
    return value!;
  }

  async get(node: string): Promise<InspectionRecord | undefined> {
    const kv = await this.store.get(STORE.inspections.key(node));
    return kv ? STORE.inspections.decode(kv.value) : undefined;
  }

  /** Every node's latest results, by node. */
  async all(): Promise<Map<string, InspectionRecord>> {
    const { kvs } = await this.store.range(STORE.inspections.prefix);
    return new Map(kvs.map((kv) => {
      const record = STORE.inspections.decode(kv.value);
      return [record.node, record];
    }));
  }
}
