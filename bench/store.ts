// Store throughput on a file (WAL) store: sequential puts, a prefix range, CAS transactions.
// Prints one JSON line. Run: npx tsx bench/store.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-store-'));
const store = openStore(join(dir, 'bench.db'));
const n = Number(process.env.N ?? 20_000);

let start = performance.now();
for (let i = 0; i < n; i++) await store.put(`/bench/${i % 1000}`, JSON.stringify({ i, pad: 'x'.repeat(200) }));
const putsPerSecond = n / ((performance.now() - start) / 1000);

start = performance.now();
for (let i = 0; i < 100; i++) await store.range('/bench/');
const rangeMs = (performance.now() - start) / 100;

start = performance.now();
for (let i = 0; i < n / 4; i++) {
  const key = `/bench/${i % 1000}`;
  const current = await store.get(key);
  await store.txn({ compare: [{ key, target: 'modRevision', op: '==', value: current!.modRevision }], success: [{ type: 'put', key, value: String(i) }] });
}
const casPerSecond = n / 4 / ((performance.now() - start) / 1000);

await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ bench: 'store', puts: n, putsPerSecond: Math.round(putsPerSecond), range1000KeysMs: Number(rangeMs.toFixed(2)), casPerSecond: Math.round(casPerSecond), rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) }));
