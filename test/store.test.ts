import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CompactedError,
  LeaseNotFoundError,
  openSqliteStore,
  openStore,
  prefixEnd,
  type SqliteStore,
  type SqliteStoreOptions,
  type WatchEvent,
  type WatchOptions,
} from '../src/store/index.js';
import { EventLog } from '../src/server/services/events.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-store-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let fileCounter = 0;
const tmpFile = () => path.join(tmp, `store-${++fileCounter}.db`);

async function withStore(fn: (store: SqliteStore) => Promise<void>, options?: SqliteStoreOptions, file = ':memory:') {
  const store = openSqliteStore(file, options);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** Records every batch a watch delivers. */
function record(store: SqliteStore, prefix: string, options?: WatchOptions) {
  const batches: WatchEvent[][] = [];
  const watcher = store.watch(prefix, (events) => batches.push(events), options);
  return {
    batches,
    watcher,
    events: () => batches.flat(),
    revisions: () => batches.flat().map((e) => e.revision),
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Lets every queued microtask and immediate run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('put/get: revisions, versions, createRevision', async () => {
  await withStore(async (store) => {
    assert.equal(await store.revision(), 0);
    assert.equal(await store.get('a'), undefined);
    assert.equal(await store.put('a', '1'), 1);
    assert.deepEqual(await store.get('a'), { key: 'a', value: '1', createRevision: 1, modRevision: 1, version: 1 });
    assert.equal(await store.put('b', 'x'), 2);
    assert.equal(await store.put('a', '2'), 3);
    assert.deepEqual(await store.get('a'), { key: 'a', value: '2', createRevision: 1, modRevision: 3, version: 2 });
    assert.equal(await store.revision(), 3);
    await assert.rejects(store.put('', 'x'), TypeError);
    await assert.rejects(store.put('k', 42 as unknown as string), TypeError);
    assert.equal(await store.revision(), 3, 'rejected puts do not take a revision');
  });
});

test('range: prefixes with LIKE wildcards, unicode, limit, order', async () => {
  await withStore(async (store) => {
    const keys = ['a%b', 'a%c', 'ab', 'aXb', 'a_x', 'aax', 'a/1', 'a/2', 'a0', 'a', 'b', 'é/1', 'é0', 'z\u{10FFFF}', 'z\u{10FFFF}x', 'z\u{10FFFF}\u{10FFFF}', '😀/1', '\uFFFF'];
    for (const k of keys) await store.put(k, `v:${k}`);
    const range = async (p: string, limit?: number) => (await store.range(p, { limit })).kvs.map((kv) => kv.key);

    assert.deepEqual(await range('a%'), ['a%b', 'a%c']);
    assert.deepEqual(await range('a_'), ['a_x']);
    assert.deepEqual(await range('a/'), ['a/1', 'a/2']);
    assert.deepEqual(await range('é/'), ['é/1']);
    assert.deepEqual(await range('😀'), ['😀/1']);
    assert.deepEqual(await range('z\u{10FFFF}'), ['z\u{10FFFF}', 'z\u{10FFFF}x', 'z\u{10FFFF}\u{10FFFF}']);
    assert.deepEqual(await range('z\u{10FFFF}\u{10FFFF}'), ['z\u{10FFFF}\u{10FFFF}']);
    assert.deepEqual(await range('nothing'), []);
    assert.deepEqual(await range('a', 3), ['a', 'a%b', 'a%c']);
    const all = await store.range('');
    assert.equal(all.kvs.length, keys.length);
    assert.equal(all.revision, keys.length);
    // Key order is code point order.
    const sorted = [...keys].sort((x, y) => {
      const a = Array.from(x).map((c) => c.codePointAt(0)!);
      const b = Array.from(y).map((c) => c.codePointAt(0)!);
      for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
      return a.length - b.length;
    });
    assert.deepEqual(all.kvs.map((kv) => kv.key), sorted);
    assert.equal(all.kvs.find((kv) => kv.key === 'a_x')!.value, 'v:a_x');

    assert.equal(prefixEnd('ab'), 'ac');
    assert.equal(prefixEnd(''), undefined);
    assert.equal(prefixEnd('a\u{10FFFF}'), 'b');
    assert.equal(prefixEnd('\uD7FF'), '\uE000');
  });
});

test('range newest first: reverse key order, limit, and pages that continue before a key', async () => {
  await withStore(async (store) => {
    for (const key of ['log/01', 'log/02', 'log/03', 'log/04', 'log/05', 'logz', 'lo']) await store.put(key, key);
    const keys = async (options: { limit?: number; before?: string }) => (await store.range('log/', { newestFirst: true, ...options })).kvs.map((kv) => kv.key);
    assert.deepEqual(await keys({}), ['log/05', 'log/04', 'log/03', 'log/02', 'log/01']);
    assert.deepEqual(await keys({ limit: 2 }), ['log/05', 'log/04']);
    assert.deepEqual(await keys({ limit: 2, before: 'log/04' }), ['log/03', 'log/02']);
    assert.deepEqual(await keys({ before: 'log/01' }), []);
    // A bound past the prefix's end stays inside the prefix.
    assert.deepEqual(await keys({ limit: 1, before: 'm' }), ['log/05']);
    assert.deepEqual((await store.range('', { newestFirst: true, limit: 1 })).kvs.map((kv) => kv.key), ['logz']);
  });
});

test('event log: the newest matching events across many pages, oldest first, with since', async () => {
  await withStore(async (store) => {
    const events = new EventLog(store);
    const many = Array.from({ length: 1800 }, (_, i) => ({ level: 'info' as const, type: 'test.event', app: i % 300 === 0 ? 'rare' : 'busy', message: `event ${i}`, time: 1_000_000 + i }));
    // One write holds them all (one revision); the last three are written one by one.
    await events.recordAll(many.slice(0, -3));
    for (const event of many.slice(-3)) await events.record(event);
    const rare = await events.list({ app: 'rare', limit: 4 });
    assert.deepEqual(rare.map((e) => e.message), ['event 600', 'event 900', 'event 1200', 'event 1500']);
    const all = await events.list({ app: 'rare' });
    assert.equal(all.length, 6);
    const latest = await events.list({ limit: 3 });
    assert.deepEqual(latest.map((e) => e.message), ['event 1797', 'event 1798', 'event 1799']);
    assert.deepEqual((await events.list({ since: latest[1]!.seq, limit: 10 })).map((e) => e.message), ['event 1799']);
    assert.deepEqual(await events.list({ app: 'none', limit: 5 }), []);
  });
});

test('delete: returns the revision, undefined when absent, recreate resets version', async () => {
  await withStore(async (store) => {
    await store.put('k', '1');
    await store.put('k', '2');
    assert.equal(await store.delete('k'), 3);
    assert.equal(await store.get('k'), undefined);
    assert.equal(await store.delete('k'), undefined);
    assert.equal(await store.revision(), 3, 'deleting a missing key takes no revision');
    assert.equal(await store.put('k', '3'), 4);
    assert.deepEqual(await store.get('k'), { key: 'k', value: '3', createRevision: 4, modRevision: 4, version: 1 });
  });
});

test('txn: compare-and-swap success and failure paths', async () => {
  await withStore(async (store) => {
    // Two concurrent "allocations" of the same port: only one wins.
    const allocate = (owner: string) =>
      store.txn({
        compare: [{ key: 'ports/8080', target: 'version', op: '==', value: 0 }],
        success: [{ type: 'put', key: 'ports/8080', value: owner }],
        failure: [{ type: 'get', key: 'ports/8080' }],
      });
    const [r1, r2] = await Promise.all([allocate('app-1'), allocate('app-2')]);
    assert.equal([r1, r2].filter((r) => r.succeeded).length, 1);
    const winner = r1.succeeded ? r1 : r2;
    const loser = r1.succeeded ? r2 : r1;
    assert.equal(winner.revision, 1);
    assert.deepEqual(winner.gets, []);
    assert.equal(loser.revision, 1, 'a failed txn without writes takes no revision');
    assert.equal(loser.gets.length, 1);
    assert.equal(loser.gets[0]!.value, r1.succeeded ? 'app-1' : 'app-2');
    assert.equal((await store.get('ports/8080'))!.value, loser.gets[0]!.value);

    // Missing key: version/createRevision/modRevision 0, value undefined.
    const missing = await store.txn({
      compare: [
        { key: 'nope', target: 'createRevision', op: '==', value: 0 },
        { key: 'nope', target: 'modRevision', op: '<', value: 1 },
        { key: 'nope', target: 'value', op: '!=', value: 'x' },
      ],
      success: [{ type: 'get', key: 'nope' }],
    });
    assert.equal(missing.succeeded, true);
    assert.deepEqual(missing.gets, [undefined]);
    for (const op of ['==', '<', '>'] as const) {
      const r = await store.txn({ compare: [{ key: 'nope', target: 'value', op, value: '' }], success: [] });
      assert.equal(r.succeeded, false, `undefined value ${op} '' is false`);
    }

    // Optimistic update on modRevision: the stale writer fails and runs the failure ops.
    await store.put('cfg', 'v1');
    const seen = (await store.get('cfg'))!;
    await store.put('cfg', 'v2');
    const stale = await store.txn({
      compare: [{ key: 'cfg', target: 'modRevision', op: '==', value: seen.modRevision }],
      success: [{ type: 'put', key: 'cfg', value: 'stale' }],
      failure: [{ type: 'put', key: 'conflicts', value: '1' }, { type: 'get', key: 'cfg' }],
    });
    assert.equal(stale.succeeded, false);
    assert.equal(stale.gets[0]!.value, 'v2');
    assert.equal((await store.get('conflicts'))!.value, '1');
    const fresh = (await store.get('cfg'))!;
    const revBefore = await store.revision();
    const ok = await store.txn({
      compare: [
        { key: 'cfg', target: 'modRevision', op: '==', value: fresh.modRevision },
        { key: 'cfg', target: 'value', op: '==', value: 'v2' },
        { key: 'cfg', target: 'version', op: '>', value: 1 },
      ],
      success: [
        { type: 'put', key: 'cfg', value: 'v3' },
        { type: 'get', key: 'cfg' },
        { type: 'delete', key: 'conflicts' },
        { type: 'get', key: 'conflicts' },
      ],
    });
    assert.equal(ok.succeeded, true);
    assert.equal(ok.revision, revBefore + 1);
    assert.deepEqual(ok.gets[0], { key: 'cfg', value: 'v3', createRevision: fresh.createRevision, modRevision: ok.revision, version: 3 });
    assert.equal(ok.gets[1], undefined);
    assert.equal(await store.revision(), ok.revision, 'several ops, one revision');

    // Atomic: a failing op rolls back the ones before it and takes no revision.
    const before = await store.revision();
    await assert.rejects(
      store.txn({
        compare: [],
        success: [
          { type: 'put', key: 'partial', value: 'x' },
          { type: 'put', key: 'leased', value: 'x', lease: 'no-such-lease' },
        ],
      }),
      LeaseNotFoundError,
    );
    assert.equal(await store.get('partial'), undefined);
    assert.equal(await store.revision(), before);

    // deletePrefix takes the whole prefix and nothing else, in one revision.
    await store.put('apps/a', '1');
    await store.put('apps/b', '1');
    await store.put('apps_c', '1');
    const del = await store.txn({ compare: [], success: [{ type: 'deletePrefix', prefix: 'apps/' }] });
    assert.deepEqual((await store.range('apps')).kvs.map((kv) => kv.key), ['apps_c']);
    assert.equal(await store.revision(), del.revision);
  });
});

test('watch: replay from a revision in the middle of a write stream, then live, no loss or duplicates', async () => {
  await withStore(async (store) => {
    const writes: Promise<number>[] = [];
    for (let i = 1; i <= 30; i++) writes.push(store.put(`w/${i % 7}`, String(i)));
    // Started while writes are still in flight (their promises have not resolved yet).
    const fromMiddle = record(store, 'w/', { fromRevision: 12 });
    const liveOnly = record(store, 'w/');
    for (let i = 31; i <= 60; i++) {
      writes.push(store.put(`w/${i % 7}`, String(i)));
      if (i % 5 === 0) await settle();
    }
    // A watch started at the current revision + 1 sees exactly what follows.
    const next = (await store.revision()) + 1;
    const fromNext = record(store, 'w/', { fromRevision: next });
    await Promise.all(writes);
    await store.put('other/x', 'ignored');
    await store.put('w/last', 'end');
    await waitFor(() => fromMiddle.revisions().at(-1) === 62, 'the last event');
    await settle();

    const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
    assert.deepEqual(fromMiddle.revisions(), [...range(12, 60), 62]);
    assert.deepEqual(liveOnly.revisions(), [...range(31, 60), 62]);
    assert.deepEqual(fromNext.revisions(), [62]);
    // Values match what was written at each revision.
    for (const e of fromMiddle.events()) if (e.revision <= 60) assert.equal(e.kv.value, String(e.revision));
    const e20 = fromMiddle.events().find((e) => e.revision === 20)!;
    assert.equal(e20.type, 'put');
    assert.equal(e20.kv.key, 'w/6');
    assert.equal(e20.prevKv!.value, '13');
    assert.equal(e20.kv.version, e20.prevKv!.version + 1);
    for (const w of [fromMiddle, liveOnly, fromNext]) w.watcher.close();
  });
});

test('watch: a txn arrives as one batch; deletes carry the last value; close stops delivery', async () => {
  await withStore(async (store) => {
    await store.put('svc/a', 'a1');
    await store.put('svc/gone', 'g1');
    const w1 = record(store, 'svc/');
    const w2 = record(store, 'svc/b');
    const { revision } = await store.txn({
      compare: [],
      success: [
        { type: 'put', key: 'svc/a', value: 'a2' },
        { type: 'put', key: 'svc/b', value: 'b1' },
        { type: 'delete', key: 'svc/gone' },
        { type: 'put', key: 'unwatched', value: 'x' },
      ],
    });
    await waitFor(() => w1.batches.length > 0 && w2.batches.length > 0, 'the txn batch');
    await settle();
    assert.equal(w1.batches.length, 1);
    const [batch] = w1.batches;
    assert.deepEqual(batch!.map((e) => [e.type, e.kv.key, e.revision]), [
      ['put', 'svc/a', revision],
      ['put', 'svc/b', revision],
      ['delete', 'svc/gone', revision],
    ]);
    assert.equal(batch![0]!.prevKv!.value, 'a1');
    assert.equal(batch![1]!.prevKv, undefined);
    const del = batch![2]!;
    assert.deepEqual(del.kv, { key: 'svc/gone', value: 'g1', createRevision: 2, modRevision: revision, version: 0 });
    assert.deepEqual(del.prevKv, { key: 'svc/gone', value: 'g1', createRevision: 2, modRevision: 2, version: 1 });
    assert.deepEqual(w2.events().map((e) => e.kv.key), ['svc/b']);

    // The same events replayed from history look the same.
    const replay = record(store, 'svc/', { fromRevision: revision });
    await waitFor(() => replay.batches.length > 0, 'replay');
    assert.deepEqual(replay.batches, w1.batches);

    // close(): a write whose delivery is still queued at close() is not delivered either.
    const pending = store.put('svc/a', 'a3');
    w1.watcher.close();
    await pending;
    await store.put('svc/a', 'a4');
    await settle();
    assert.equal(w1.batches.length, 1);
    assert.equal(replay.batches.length, 3);
    replay.watcher.close();
    w2.watcher.close();
  });
});

test('watch: a throwing callback does not stop delivery', async () => {
  const errors: unknown[] = [];
  await withStore(
    async (store) => {
      const seen: number[] = [];
      const w = store.watch('', (events) => {
        seen.push(events[0]!.revision);
        if (seen.length === 1) throw new Error('boom');
      });
      await store.put('a', '1');
      await store.put('a', '2');
      await waitFor(() => seen.length === 2, 'two batches');
      assert.deepEqual(seen, [1, 2]);
      assert.equal(errors.length, 1);
      w.close();
    },
    { onWatchError: (e) => errors.push(e) },
  );
});

test('leases: expiry deletes keys with delete events; keepAlive; revoke', async () => {
  await withStore(
    async (store) => {
      const w = record(store, 'nodes/');
      const short = await store.grantLease(60);
      const kept = await store.grantLease(300);
      await store.put('nodes/1', 'up', { lease: short });
      await store.put('nodes/2', 'up', { lease: short });
      await store.put('nodes/3', 'up', { lease: kept });
      assert.equal((await store.get('nodes/1'))!.lease, short);
      await assert.rejects(store.put('nodes/x', 'up', { lease: 'unknown' }), LeaseNotFoundError);
      assert.equal(await store.keepAlive('unknown'), false);

      const start = Date.now();
      while (Date.now() - start < 150) {
        assert.equal(await store.keepAlive(kept), true);
        await sleep(15);
      }
      assert.equal(await store.get('nodes/1'), undefined, 'expired lease deleted its keys');
      assert.equal(await store.get('nodes/2'), undefined);
      assert.equal((await store.get('nodes/3'))!.value, 'up', 'kept alive');
      assert.equal(await store.keepAlive(short), false);
      await assert.rejects(store.put('nodes/4', 'up', { lease: short }), LeaseNotFoundError);
      await settle();
      const deletes = w.batches.filter((b) => b[0]!.type === 'delete');
      assert.equal(deletes.length, 1, 'both keys of the lease go in one revision');
      assert.deepEqual(deletes[0]!.map((e) => [e.type, e.kv.key, e.prevKv!.lease]), [
        ['delete', 'nodes/1', short],
        ['delete', 'nodes/2', short],
      ]);

      // Putting a key without its lease detaches it.
      await store.put('nodes/3', 'detached');
      await store.put('nodes/5', 'up', { lease: kept });
      const before = await store.revision();
      await store.revokeLease(kept);
      assert.equal(await store.revision(), before + 1);
      assert.equal((await store.get('nodes/3'))!.value, 'detached');
      assert.equal(await store.get('nodes/5'), undefined);
      assert.equal(await store.keepAlive(kept), false);
      await store.revokeLease(kept); // unknown: no-op
      assert.equal(await store.revision(), before + 1);
      w.watcher.close();
    },
    { leaseCheckIntervalMs: 10 },
  );
});

test('leases with a fake clock: expired-but-not-yet-reaped leases are refused', async () => {
  let now = 1_000_000;
  await withStore(
    async (store) => {
      const lease = await store.grantLease(1000);
      await store.put('l/a', '1', { lease });
      assert.equal(await store.leaseTimeToLive(lease), 1000);
      now += 900;
      assert.equal(await store.keepAlive(lease), true);
      assert.equal(await store.leaseTimeToLive(lease), 1000, 'keepAlive extends by the TTL from now');
      now += 999;
      assert.equal((await store.get('l/a'))!.value, '1');
      now += 1;
      // Expired; the check timer (1 min) has not run: keepAlive and put still refuse it...
      await assert.rejects(store.put('l/b', '1', { lease }), LeaseNotFoundError);
      const before = await store.revision();
      assert.equal(await store.keepAlive(lease), false);
      // ...and keepAlive reaped it.
      assert.equal(await store.get('l/a'), undefined);
      assert.equal(await store.revision(), before + 1);
      await assert.rejects(store.grantLease(0), RangeError);
    },
    { leaseCheckIntervalMs: 60_000, now: () => now },
  );
});

test('reopen: revision continues, data and history kept, leases get their TTL again', async () => {
  const file = tmpFile();
  let store = openSqliteStore(file, { leaseCheckIntervalMs: 60_000 });
  await store.put('a', '1');
  await store.put('a', '2');
  await store.put('b', '1');
  const long = await store.grantLease(60_000);
  const short = await store.grantLease(50);
  await store.put('long', 'x', { lease: long });
  await store.put('short', 'x', { lease: short });
  assert.equal(await store.revision(), 5);
  await store.close();
  await assert.rejects(store.get('a'), /closed/);
  assert.equal(fs.existsSync(file), true);

  await sleep(70); // the short lease would have expired while the store was closed
  store = openSqliteStore(file, { leaseCheckIntervalMs: 20 });
  try {
    // Refreshed on open, so its holder can still keep it alive; then it expires as revision 6.
    assert.equal((await store.get('short'))!.lease, short);
    assert.equal(await store.revision(), 5);
    await sleep(120);
    assert.equal(await store.get('short'), undefined, 'the refreshed short lease expired');
    assert.equal(await store.revision(), 6);
    assert.deepEqual(await store.get('a'), { key: 'a', value: '2', createRevision: 1, modRevision: 2, version: 2 });
    assert.equal((await store.get('long'))!.lease, long);
    assert.equal(await store.keepAlive(long), true);
    assert.equal(await store.keepAlive(short), false);
    assert.equal(await store.put('c', '1'), 7);
    const w = record(store, '', { fromRevision: 5 });
    await waitFor(() => w.batches.length === 3, 'replayed history');
    assert.deepEqual(w.events().map((e) => [e.type, e.kv.key, e.revision]), [
      ['put', 'short', 5],
      ['delete', 'short', 6],
      ['put', 'c', 7],
    ]);
    w.watcher.close();
    assert.equal(store['db'].pragma('journal_mode', { simple: true }), 'wal');
  } finally {
    await store.close();
  }
});

test('compaction: automatic and explicit; watch from a compacted revision', async () => {
  await withStore(
    async (store) => {
      for (let i = 1; i <= 20; i++) await store.put(`k/${i % 3}`, String(i));
      const compactRev = await store.compactRevision();
      assert.ok(compactRev > 1, 'history was compacted automatically');
      assert.ok(20 - compactRev + 1 >= 5, 'at least historyRetention revisions kept');

      // With onCompacted: called once, nothing delivered.
      let compactedAt: number | undefined;
      let calls = 0;
      const events: WatchEvent[] = [];
      const dead = store.watch('k/', (e) => events.push(...e), {
        fromRevision: 1,
        onCompacted: (rev) => {
          calls++;
          compactedAt = rev;
        },
      });
      await store.put('k/1', 'after');
      await settle();
      assert.equal(calls, 1);
      assert.equal(compactedAt, compactRev);
      assert.deepEqual(events, []);
      dead.close();

      // Without: watch() throws.
      assert.throws(
        () => store.watch('k/', () => {}, { fromRevision: compactRev - 1 }),
        (err: unknown) => err instanceof CompactedError && err.compactRevision === compactRev,
      );
      // From the compact revision itself: full replay.
      const ok = record(store, 'k/', { fromRevision: compactRev });
      await waitFor(() => ok.revisions().at(-1) === 21, 'replay');
      assert.deepEqual(ok.revisions(), Array.from({ length: 21 - compactRev + 1 }, (_, i) => compactRev + i));
      ok.watcher.close();

      // Explicit compaction.
      await store.compact(19);
      assert.equal(await store.compactRevision(), 19);
      assert.throws(() => store.watch('', () => {}, { fromRevision: 18 }), CompactedError);
      await store.compact(3); // below: no-op
      assert.equal(await store.compactRevision(), 19);
      await assert.rejects(store.compact(1000), RangeError);
    },
    { historyRetention: 5 },
  );
});

test('many overwrites on a file store: one revision each, latest value kept', async () => {
  await withStore(
    async (store) => {
      const n = 3000;
      for (let i = 0; i < n; i++) await store.put(`perf/${i % 500}`, JSON.stringify({ i }));
      assert.equal(await store.revision(), n);
      const { kvs } = await store.range('perf/');
      assert.equal(kvs.length, 500);
      assert.equal(JSON.parse(kvs.find((kv) => kv.key === 'perf/499')!.value).i, n - 1);
      assert.equal(kvs.find((kv) => kv.key === 'perf/0')!.version, n / 500);
    },
    undefined,
    tmpFile(),
  );
});

test('openStore: sqlite URLs and paths; etcd not built yet', async () => {
  const mem = openStore('sqlite::memory:');
  assert.equal(await mem.put('a', '1'), 1);
  await mem.close();
  const file = tmpFile();
  const s1 = openStore(`sqlite:${file}`);
  await s1.put('a', '1');
  await s1.close();
  const s2 = openStore(file);
  assert.equal((await s2.get('a'))!.value, '1');
  await s2.close();
  const s3 = openStore(`sqlite://${file}`);
  assert.equal(await s3.revision(), 1);
  await s3.close();
  assert.throws(() => openStore('etcd://127.0.0.1:2379'), /etcd store is not built yet/);
  assert.throws(() => openStore('http://x/y'), /unsupported store URL/);
  assert.throws(() => openStore(''), /empty/);
});
