// Registry changes published to a real Redis, as a subscriber such as OpenResty sees them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createClient } from 'redis';
import { TestCluster, freePort, until } from './helpers/cluster.js';
import { skipWithoutProgram } from './helpers/env.js';

const skip = skipWithoutProgram('redis-server', 'redis-server');

describe('publishing to Redis', { skip }, () => {
  const cluster = new TestCluster();
  let redis: ChildProcess;
  let port = 0;

  before(async () => {
    port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await until('redis to answer', async () => {
      const probe = createClient({ url: `redis://127.0.0.1:${port}` });
      probe.on('error', () => {});
      await probe.connect();
      await probe.quit();
      return true;
    }, 10_000);
    await cluster.startServer({ extra: ['--redis-url', `redis://127.0.0.1:${port}`] });
  });

  after(async () => {
    await cluster.close();
    redis.kill('SIGTERM');
  });

  test('every registry change reaches subscribers of the app channel, in order', async () => {
    const subscriber = createClient({ url: `redis://127.0.0.1:${port}` });
    await subscriber.connect();
    const received: { type: string; key: string; revision: number; value?: { address: string } }[] = [];
    await subscriber.subscribe('gantry:registry:shop', (message) => received.push(JSON.parse(message)));
    const all: unknown[] = [];
    await subscriber.pSubscribe('gantry:registry', (message) => all.push(JSON.parse(message)));

    const { lease } = (await cluster.api('POST', '/v1/registry', { app: 'shop', entry: 'db', id: 'pg1', address: '10.1.1.1', ports: { pg: 5432 }, ttl: '1m' })) as { lease: string };
    await cluster.api('POST', '/v1/registry', { app: 'other', entry: 'db', id: 'x', address: '10.1.1.2', ports: { pg: 5432 }, ttl: '1m' });
    await cluster.api('DELETE', `/v1/registry/leases/${lease}`);
    await until('the put and the delete', () => received.length >= 2, 5000);
    assert.deepEqual(received.map((m) => [m.type, m.key]), [['put', '/registry/shop/default/db/pg1'], ['delete', '/registry/shop/default/db/pg1']]);
    assert.equal(received[0]!.value!.address, '10.1.1.1');
    assert.ok(received[0]!.revision < received[1]!.revision);
    await until('the all-apps channel to see all three', () => all.length >= 3, 5000);
    await subscriber.quit();
  });
});
