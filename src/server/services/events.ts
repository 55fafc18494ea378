// Events: typed, timestamped facts about apps, instances and nodes, kept in the store under
// /events/ so that their sequence number is the store revision that wrote them, and a
// follower resumes from the last one it saw with a store watch.
//
// An event tells of a change that has already landed: callers record it with `note`, which
// never fails, so that an event the store cannot take (a full disk) never turns a change that
// was made into an error answer, or stops the events after it. (On the embedded store, `note`
// has written the event before it returns: events keep the order of the calls.)
import type { KeyValue, Store, Watcher } from '../../store/store.js';
import { STORE } from '../keys.js';
import type { GantryEvent } from '../../model/types.js';
import { AppendOnlyLog, newestMatching } from './append-only.js';

const PREFIX = STORE.events.prefix;

export interface EventFilter {
  app?: string;
  instance?: string;
  node?: string;
  /** Whether the reader may see an event about this app (undefined: about no app); absent: every event. */
  visible?: (app: string | undefined) => boolean;
}

function matches(event: GantryEvent, filter: EventFilter): boolean {
  return (!filter.app || event.app === filter.app) && (!filter.instance || event.instance === filter.instance) && (!filter.node || event.node === filter.node) && (!filter.visible || filter.visible(event.app));
}

export class EventLog {
  private readonly log: AppendOnlyLog;

  constructor(private readonly store: Store, keep = 20_000) {
    this.log = new AppendOnlyLog(store, PREFIX, (suffix) => STORE.events.key(suffix), keep);
  }

  async record(event: Omit<GantryEvent, 'time' | 'seq'> & { time?: number }): Promise<void> {
    return this.recordAll([event]);
  }

  /** Records several events in one write (a reconcile pass's, say): one store transaction, not one each. */
  async recordAll(events: readonly (Omit<GantryEvent, 'time' | 'seq'> & { time?: number })[]): Promise<void> {
    if (events.length === 0) return;
    const now = Date.now();
    await this.store.txn({
      compare: [],
      success: events.map((event) => {
        const time = event.time ?? now;
        return { type: 'put' as const, key: this.log.nextKey(time), value: STORE.events.encode({ ...event, time }) };
      }),
    });
    // The events have landed; trimming is housekeeping that the next thousand events try again.
    await this.log.appended(events.length).catch((err: Error) => console.error(`gantry server: trimming old events failed (tried again later): ${err.message}`));
  }

  /**
   * Records without waiting, for callers that must not fail because an event could not be
   * written (a full disk, a closed store): the failure is counted, never thrown.
   */
  note(event: Omit<GantryEvent, 'time' | 'seq'> & { time?: number }): void {
    this.record(event).catch(() => {
      this.lost++;
    });
  }

  /** Events that `note` could not write. */
  lost = 0;

  async list(filter: EventFilter & { since?: number; limit?: number }): Promise<GantryEvent[]> {
    const pick = (kv: KeyValue): GantryEvent | undefined => {
      if (filter.since !== undefined && kv.modRevision <= filter.since) return undefined;
      const event = { ...STORE.events.decode(kv.value), seq: kv.modRevision };
      return matches(event, filter) ? event : undefined;
    };
    if (filter.limit) return newestMatching(this.store, PREFIX, filter.limit, pick);
    const { kvs } = await this.store.range(PREFIX);
    return kvs.flatMap((kv) => pick(kv) ?? []);
  }

  /** Live events after `since` (exclusive), in order, each once. */
  follow(filter: EventFilter & { since?: number }, onEvent: (event: GantryEvent) => void): Watcher {
    return this.store.watch(
      PREFIX,
      (changes) => {
        for (const change of changes) {
          if (change.type !== 'put') continue;
          const event = { ...STORE.events.decode(change.kv.value), seq: change.kv.modRevision };
          if (matches(event, filter)) onEvent(event);
        }
      },
      { fromRevision: filter.since !== undefined ? filter.since + 1 : undefined },
    );
  }
}
