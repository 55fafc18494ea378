// The registry service against a real (in-memory) store with a fake clock: a node whose lease
// lapsed gets its endpoints back without them ever leaving the registry in between.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { WatchEvent } from '../src/store/store.js';
import { EndpointCatalog } from '../src/discovery/catalog.js';
import { RegistryService } from '../src/server/services/registry.js';
import type { Endpoint } from '../src/model/registry.js';

const endpoint = (id: string, port: number): Endpoint => ({ id, app: 'shop', env: 'default', entry: 'web', node: 'n1', address: '10.0.0.1', ports: { http: port }, labels: {}, registeredAt: 1, source: 'agent' });

test('a lapsed node lease: reported, and the endpoints move to a new lease with no delete in between', async () => {
  let now = 1_000_000;
  // Leases are never reaped by the timer here: the lapse is caught by the next heartbeat, as when
  // a node was silent for just over its TTL.
  const store = openSqliteStore(':memory:', { now: () => now, leaseCheckIntervalMs: 3_600_000 });
  const catalog = await EndpointCatalog.load(store);
  const lapses: [string, number][] = [];
  const registry = new RegistryService(store, catalog, 1000, (node, silentMs) => lapses.push([node, silentMs]));
  const settle = () => new Promise((r) => setTimeout(r, 20));
  try {
    const endpoints = [endpoint('a', 20000), endpoint('b', 20001)];
    await registry.sync('n1', endpoints);
    await settle();
    const firstLease = catalog.leaseOf('/registry/shop/default/web/a');
    assert.ok(firstLease);

    const seen: WatchEvent[] = [];
    const watcher = store.watch('/registry/', (events) => seen.push(...events));
    now += 1500; // past the 1 s TTL, not reaped yet
    await registry.sync('n1', endpoints);
    await settle();
    watcher.close();

    assert.equal(lapses.length, 1);
    assert.equal(lapses[0]![0], 'n1');
    assert.deepEqual(seen.filter((e) => e.type === 'delete').map((e) => e.kv.key), [], 'no endpoint left the registry');
    assert.equal(catalog.list().length, 2);
    const newLease = catalog.leaseOf('/registry/shop/default/web/a');
    assert.ok(newLease && newLease !== firstLease);
    assert.equal(catalog.leaseOf('/registry/shop/default/web/b'), newLease);
    assert.equal(await store.leaseTimeToLive(firstLease!), undefined, 'the lapsed lease is gone');

    // Healthy heartbeats afterwards keep the new lease, with no further lapse.
    now += 500;
    await registry.sync('n1', endpoints);
    assert.equal(lapses.length, 1);
    assert.ok((await store.leaseTimeToLive(newLease!)) === 1000);
  } finally {
    catalog.close();
    await store.close();
  }
});
