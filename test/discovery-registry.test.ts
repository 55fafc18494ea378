// The service registry end to end (process runtime): endpoints appear only once healthy, go
// before the stop signal, after a kill -9, and when a node's agent dies (lease expiry); the
// watch stream resumes without losing or repeating a change; outside services self-register.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import type { AppDetailResponse } from '../src/model/api.js';
import type { Endpoint } from '../src/model/registry.js';
import { SseParser } from '../src/cli/stream.js';

const SERVER_JS = "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE)).listen(process.env.PORT)";

describe('service registry', () => {
  const cluster = new TestCluster();
  const marks = join(cluster.dir, 'marks');
  const node = `reg-${cluster.id}`;
  const app = `reg-${cluster.id}`;
  const endpoints = async (filter = app) => ((await cluster.api('GET', `/v1/registry?app=${filter}`)) as { endpoints: Endpoint[] }).endpoints;
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;

  before(async () => {
    mkdirSync(marks);
    await cluster.startServer({ registryTtl: 3 });
    await cluster.startAgent({ name: node, portRange: '30400-30499', dockerSocket: join(cluster.dir, 'none.sock') });
  });
  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '20s']);
    await cluster.close();
  });

  test('registered only once healthy; withdrawn before the before-stop hook and the stop signal', async () => {
    const spec = `app: ${app}
entrypoints:
  web:
    command: [node, -e, "${SERVER_JS}"]
    replicas: 2
    ports: [{ name: http }]
    env: { MARKS: "${marks}", GANTRY_URL: "${cluster.url}", GANTRY_TOKEN: "${cluster.token}" }
    health: { exec: { command: 'test -f $MARKS/ready-$GANTRY_INSTANCE' }, interval: 200ms, retries: 100 }
    hooks:
      beforeStop: [node, -e, "fetch(process.env.GANTRY_URL + '/v1/registry?app=${app}', { headers: { authorization: 'Bearer ' + process.env.GANTRY_TOKEN } }).then((r) => r.json()).then((j) => require('fs').writeFileSync(process.env.MARKS + '/seen-at-stop-' + process.env.GANTRY_INSTANCE, JSON.stringify(j.endpoints.map((e) => e.id))))"]
    stop: { grace: 3s }
`;
    const applied = await cluster.cli(['apply', '-f', '-', '--no-wait'], { input: spec });
    assert.equal(applied.code, 0, applied.stderr);
    const instances = await until('2 started instances', async () => {
      const list = (await detail()).instances;
      return list.length === 2 && list.every((i) => i.status?.state === 'starting') ? list : undefined;
    });
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await endpoints(), [], 'nothing registered before the health check passes');

    writeFileSync(join(marks, `ready-${instances[0]!.id}`), '');
    const [first] = await until('the healthy instance to be registered', async () => {
      const list = await endpoints();
      return list.length === 1 ? list : undefined;
    });
    assert.equal(first!.id, instances[0]!.id);
    assert.equal(first!.ports.http, instances[0]!.ports[0]!.host);
    assert.equal(first!.node, node);
    assert.equal(await (await fetch(`http://${first!.address}:${first!.ports.http}/`)).text(), first!.id);

    writeFileSync(join(marks, `ready-${instances[1]!.id}`), '');
    await until('both registered', async () => (await endpoints()).length === 2);

    const scaled = await cluster.cli(['scale', app, 'web', '1', '--timeout', '20s']);
    assert.equal(scaled.code, 0, scaled.stdout + scaled.stderr);
    await until('the before-stop hook to have run', () => instances.some((i) => existsSync(join(marks, `seen-at-stop-${i.id}`))));
    const stopped = instances.find((i) => existsSync(join(marks, `seen-at-stop-${i.id}`)))!;
    const seen = JSON.parse(readFileSync(join(marks, `seen-at-stop-${stopped.id}`), 'utf8')) as string[];
    assert.ok(!seen.includes(stopped.id), `the stopping instance was still registered when its before-stop hook ran: ${seen}`);
    assert.equal(seen.length, 1);
    assert.deepEqual((await endpoints()).map((e) => e.id), seen);
  });

  test('kill -9 of an instance withdraws its endpoint until it is healthy again', async () => {
    const [instance] = (await detail()).instances.filter((i) => i.desired === 'running');
    const pid = Number(instance!.status!.runtimeId!.replace('pid:', ''));
    const before = (await detail()).instances.find((i) => i.id === instance!.id)!.status!.restarts;
    process.kill(-pid, 'SIGKILL');
    await until('the endpoint to be withdrawn or the instance already restarted', async () => {
      const current = (await detail()).instances.find((i) => i.id === instance!.id)!;
      return (await endpoints()).length === 0 || current.status!.restarts > before;
    }, 5000, 20);
    await until('registered again once restarted and healthy', async () => (await endpoints()).length === 1);
  });

  test('the watch stream resumes after a disconnect: every change exactly once', async () => {
    const open = async (since?: number) => {
      const abort = new AbortController();
      const response = await fetch(`${cluster.url}/v1/watch?prefix=registry`, { headers: { authorization: `Bearer ${cluster.token}`, ...(since ? { 'last-event-id': String(since) } : {}) }, signal: abort.signal });
      const reader = response.body!.getReader();
      const parser = new SseParser();
      const messages: { event: string; id: number; data: { changes?: { type: string; key: string }[]; items?: { key: string }[] } }[] = [];
      void (async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            for (const m of parser.push(new TextDecoder().decode(value))) messages.push({ event: m.event, id: Number(m.id), data: JSON.parse(m.data) });
          }
        } catch {
          // aborted
        }
      })();
      return { messages, close: () => abort.abort() };
    };
    const register = (id: string) => cluster.api('POST', '/v1/registry', { app: `ext-${cluster.id}`, entry: 'db', id, address: '10.0.0.1', ports: { pg: 5432 }, ttl: '1m' }) as Promise<{ lease: string }>;

    const first = await open();
    await until('the snapshot', () => first.messages.length >= 1);
    assert.equal(first.messages[0]!.event, 'snapshot');
    const leases = [];
    for (const id of ['a', 'b', 'c']) leases.push((await register(id)).lease);
    await until('3 changes', () => first.messages.filter((m) => m.event === 'change').length >= 3);
    const lastSeen = first.messages.at(-1)!.id;
    first.close();

    for (const id of ['d', 'e']) leases.push((await register(id)).lease);
    await cluster.api('DELETE', `/v1/registry/leases/${leases[0]}`);
    const second = await open(lastSeen);
    await until('the 3 missed changes', () => second.messages.length >= 3);
    await new Promise((r) => setTimeout(r, 300));
    second.close();
    assert.ok(second.messages.every((m) => m.event === 'change'), 'no snapshot when resuming');
    const keys = second.messages.flatMap((m) => m.data.changes!.map((c) => `${c.type} ${c.key.split('/').at(-1)}`));
    assert.deepEqual(keys, ['put d', 'put e', 'delete a']);
    const ids = [...first.messages.slice(1), ...second.messages].map((m) => m.id);
    assert.deepEqual(ids, [...new Set(ids)].sort((x, y) => x - y), 'revisions strictly increasing, none repeated');
    for (const lease of leases.slice(1)) await cluster.api('DELETE', `/v1/registry/leases/${lease}`);
  });

  test('an outside service stays registered while it keeps its lease alive, and no longer', async () => {
    const { lease } = (await cluster.api('POST', '/v1/registry', { app: `ext2-${cluster.id}`, entry: 'cache', address: '10.0.0.2', ports: { redis: 6379 }, ttl: '2s' })) as { lease: string };
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 800));
      await cluster.api('POST', `/v1/registry/leases/${lease}/keepalive`);
    }
    assert.equal((await endpoints(`ext2-${cluster.id}`)).length, 1);
    await until('the endpoint to expire', async () => (await endpoints(`ext2-${cluster.id}`)).length === 0, 5000);
    const sd = (await cluster.api('GET', '/v1/discovery/prometheus')) as { targets: string[]; labels: Record<string, string> }[];
    assert.ok(sd.some((g) => g.labels.__meta_gantry_app === app && g.labels.__meta_gantry_port_name === 'http' && /^127\.0\.0\.1:\d+$/.test(g.targets[0]!)), JSON.stringify(sd));
  });

  test("a node's endpoints expire with its lease when its agent dies", async () => {
    assert.equal((await endpoints()).length, 1);
    await cluster.stopAgent(node, 'SIGKILL');
    const started = Date.now();
    await until('the endpoints to expire', async () => (await endpoints()).length === 0, 10_000);
    assert.ok(Date.now() - started < 3000 + 1500, 'gone within the registry TTL (3 s) and one lease check');
    await cluster.startAgent({ name: node, portRange: '30400-30499', dockerSocket: join(cluster.dir, 'none.sock') });
    await until('re-registered by the returning agent', async () => (await endpoints()).length === 1, 10_000);
  });
});
