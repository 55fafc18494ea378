// Hollow nodes (src/sim/) against a real server in this process: five of them join with the
// info they say, take an app of ten replicas, report them running and healthy and register their
// endpoints; a crashed instance is reported in backoff and comes back; two nodes gone silent (no
// heartbeat, no pong) are marked down and their instances replaced on the other three. Short
// node timeout (4 s, heartbeats every 2 s), so the whole file runs in about fifteen seconds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { Fleet } from '../src/sim/fleet.js';
import type { InstanceListResponse, NodeListResponse } from '../src/model/api.js';
import type { UsageResponse } from '../src/model/usage.js';
import type { Endpoint } from '../src/model/registry.js';
import { until } from './helpers/cluster.js';

const ADMIN = 'sim-test-admin-token';
const APP = 'hollow-web';

describe('a fleet of hollow nodes against a real server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-sim-'));
  let server: RunningServer;
  let fleet: Fleet;

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  };
  const instances = async () => (await api<InstanceListResponse>('GET', `/v1/instances?app=${APP}`)).instances;
  const nodes = async () => (await api<NodeListResponse>('GET', '/v1/nodes')).nodes;

  before(async () => {
    server = await startServer({ dataDir: dir, port: 0, bootstrapToken: ADMIN, nodeTimeoutMs: 4000, registryTtlMs: 6000, reconcileIntervalMs: 200 });
    fleet = new Fleet({ server: server.url, token: ADMIN, count: 5, startDelayMs: 100, restartDelayMs: 500, labels: { zone: ['a', 'b', 'c'] } });
    await fleet.start();
  });

  after(async () => {
    fleet.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the nodes join as hollow-00001… with the info they report', async () => {
    const ready = await until('five ready nodes', async () => {
      const list = await nodes();
      return list.filter((n) => n.state === 'ready').length === 5 && list;
    }, 10_000, 100);
    assert.deepEqual(ready.map((n) => n.name), ['hollow-00001', 'hollow-00002', 'hollow-00003', 'hollow-00004', 'hollow-00005']);
    assert.deepEqual(ready.map((n) => n.labels.zone), ['a', 'b', 'c', 'a', 'b']);
    for (const node of ready) {
      assert.equal(node.cores, 32);
      assert.deepEqual(node.runtimes, ['docker', 'process']);
      assert.match(node.address, /^127\.77\.0\.\d+$/, 'each from a loopback address of its own');
    }
    assert.equal(fleet.stats().welcomed, 5);
  });

  test('an app of ten replicas is placed over them, reported running and healthy, and registered', async () => {
    await api('POST', '/v1/apps', { app: APP, entrypoints: { web: { command: ['sleep', '3600'], replicas: 10, ports: [{ name: 'http' }] } } });
    const placed = await until('ten healthy instances', async () => {
      const list = await instances();
      return list.length === 10 && list.every((i) => i.status?.state === 'running' && i.status.healthy === true) && list;
    }, 10_000, 100);
    assert.equal(new Set(placed.map((i) => i.node)).size, 5, 'spread over the five nodes');
    const endpoints = await until('ten registered endpoints', async () => {
      const { endpoints } = await api<{ endpoints: Endpoint[] }>('GET', `/v1/registry?app=${APP}`);
      return endpoints.length === 10 && endpoints;
    }, 10_000, 100);
    const addressOf = new Map((await nodes()).map((n) => [n.name, n.address]));
    for (const endpoint of endpoints) assert.equal(endpoint.address, addressOf.get(endpoint.node!), `${endpoint.id} is reached at its node's address`);
    assert.equal(fleet.stats().running, 10);
  });

  test('with usage turned on, every node reports its running instances and the server keeps them', async () => {
    fleet.reportUsageEvery(1000);
    const usage = await until('every instance sampled', async () => {
      const answer = await api<UsageResponse>('GET', `/v1/usage?app=${APP}&history=false`);
      return answer.instances.length === 10 && answer.instances.every((i) => i.latest !== null) && answer;
    }, 10_000, 100);
    assert.ok(usage.instances.every((i) => i.latest!.cpuCores === 0.02 && i.latest!.memoryBytes === 24 * 2 ** 20));
    assert.ok(fleet.stats().usageSamples >= 10);
    fleet.reportUsageEvery(undefined);
    const sent = fleet.stats().usageMessages;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(fleet.stats().usageMessages, sent, 'turned off, no more usage messages');
  });

  test('the instance list comes in pages: limit and next walk all ten once, in order; a forged cursor is a 400', async () => {
    const whole = await instances();
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page: InstanceListResponse = await api('GET', `/v1/instances?app=${APP}&limit=3${after ? `&after=${after}` : ''}`);
      assert.ok(page.instances.length <= 3);
      seen.push(...page.instances.map((i) => i.id));
      after = page.next;
      pages++;
    } while (after);
    assert.equal(pages, 4);
    assert.deepEqual(seen, whole.map((i) => i.id), 'the same instances in the same order, none twice');
    const byNode = (await api<InstanceListResponse>('GET', `/v1/instances?node=${whole[0]!.node}`)).instances;
    assert.ok(byNode.length > 0 && byNode.every((i) => i.node === whole[0]!.node));
    for (const query of ['after=bm90LWEtY3Vyc29y', 'after=%5B%5D', 'limit=0', 'limit=5001', `after=${'A'.repeat(3000)}`]) {
      const response = await fetch(`${server.url}/v1/instances?${query}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(response.status, 400, query);
    }
  });

  test('a crashed instance is reported in backoff, then running again after its restart delay', async () => {
    const [id] = fleet.crash(1, 'backoff');
    assert.ok(id, 'an instance was crashed');
    const states = new Set<string>();
    const back = await until('the crashed instance to run again', async () => {
      const status = (await instances()).find((i) => i.id === id)?.status;
      if (status) states.add(status.state);
      return status?.state === 'running' && status.restarts === 1 && status;
    }, 10_000, 50);
    assert.equal(back.healthy, true);
    assert.ok(states.has('backoff'), `seen: ${[...states].join(', ')}`);
  });

  test('two silent nodes are marked down and their instances replaced on the other three', async () => {
    const silent = fleet.pick(2);
    const before = await instances();
    const onSilent = before.filter((i) => silent.includes(i.node)).length;
    assert.ok(onSilent > 0, 'the silenced nodes ran instances');
    const silencedAt = Date.now();
    fleet.silence(silent);
    await until('the silent nodes to be down', async () => (await nodes()).filter((n) => silent.includes(n.name)).every((n) => n.state === 'down'), 12_000, 100);
    const downAfter = Date.now() - silencedAt;
    const after = await until('ten healthy instances on the other nodes', async () => {
      const list = (await instances()).filter((i) => i.desired === 'running');
      return list.length === 10 && list.every((i) => !silent.includes(i.node) && i.status?.state === 'running' && i.status.healthy === true) && list;
    }, 10_000, 100);
    console.log(`2 silent nodes down ${(downAfter / 1000).toFixed(1)}s after the silence; their ${onSilent} instances replaced ${((Date.now() - silencedAt) / 1000).toFixed(1)}s after it`);
    assert.equal(new Set(after.map((i) => i.node)).size, 3);
    const others = (await nodes()).filter((n) => !silent.includes(n.name));
    assert.ok(others.every((n) => n.state === 'ready'), 'the nodes still speaking stay ready');
    assert.ok(fleet.stats().pingsIgnored > 0, 'the silent nodes left pings unanswered');
  });
});
