// Reading the event log as the CLI and the console do: the newest events (the console's overview),
// and the newest of one app among many (gantry events --app). Prints one JSON line. Run:
// npx tsx bench/events.ts
//
// The baseline, measured in the same run on the same store, is how the log was read before it was
// paged from the newest end: the whole /events/ range decoded, filtered, then its tail kept.
// Environment: EVENTS (20,000: the log's default size), APPS (50), ROUNDS (20).
import { openStore } from '../src/store/index.js';
import { EventLog } from '../src/server/services/events.js';
import { STORE } from '../src/server/keys.js';
import type { GantryEvent } from '../src/model/types.js';

const EVENTS = Number(process.env.EVENTS ?? 20_000);
const APPS = Number(process.env.APPS ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 20);

const store = openStore(':memory:');
const events = new EventLog(store, EVENTS);
for (let start = 0; start < EVENTS; start += 1000) {
  const batch = Array.from({ length: Math.min(1000, EVENTS - start) }, (_, k) => {
    const i = start + k;
    return { level: 'info' as const, type: 'instance.started', app: `app${i % APPS}`, instance: `app${i % APPS}-web-${i}`, node: `node-${i % 100}`, message: `started instance ${i} on node-${i % 100}`, time: 1e12 + i };
  });
  await events.recordAll(batch);
}

async function wholeLog(app: string | undefined, limit: number): Promise<GantryEvent[]> {
  const { kvs } = await store.range(STORE.events.prefix);
  const all = kvs.map((kv) => ({ ...STORE.events.decode(kv.value), seq: kv.modRevision })).filter((e) => app === undefined || e.app === app);
  return all.slice(-limit);
}

async function msPerRead(read: () => Promise<GantryEvent[]>, expect: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < ROUNDS; i++) if ((await read()).length !== expect) throw new Error('a read found a different number of events');
  return (performance.now() - start) / ROUNDS;
}

const round = (ms: number) => Number(ms.toFixed(2));
const newest20 = await msPerRead(() => events.list({ limit: 20 }), 20);
const newest20Whole = await msPerRead(() => wholeLog(undefined, 20), 20);
const oneApp100 = await msPerRead(() => events.list({ app: 'app7', limit: 100 }), 100);
const oneApp100Whole = await msPerRead(() => wholeLog('app7', 100), 100);
console.log(JSON.stringify({
  bench: 'events',
  events: EVENTS,
  apps: APPS,
  newest20Ms: round(newest20),
  newest20WholeLogMs: round(newest20Whole),
  newest20Speedup: round(newest20Whole / newest20),
  oneApp100Ms: round(oneApp100),
  oneApp100WholeLogMs: round(oneApp100Whole),
  oneApp100Speedup: round(oneApp100Whole / oneApp100),
}));
await store.close();
