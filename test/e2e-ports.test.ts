// Host ports a program outside Gantry holds: an instance handed one is moved to a free port
// instead of failing to start forever; a port fixed in the spec waits, and says why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import type { AppDetailResponse, EventListResponse, NodeListResponse } from '../src/model/api.js';

function occupy(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.end('not gantry\n'));
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
}

const close = (server: net.Server) => new Promise((resolve) => server.close(resolve));

describe('host ports held by other programs', () => {
  const cluster = new TestCluster();
  const node = `ports-${cluster.id}`;
  const low = 31400;
  const apps: string[] = [];
  const outside: net.Server[] = [];
  const detail = (app: string) => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const events = async (app: string) => ((await cluster.api('GET', `/v1/events?app=${app}&limit=1000`)) as EventListResponse).events;
  const apply = async (app: string, text: string, wait: boolean) => {
    apps.push(app);
    const result = await cluster.cli(['apply', '-f', '-', ...(wait ? ['--timeout', '60s'] : ['--no-wait'])], { input: text });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  };
  const spec = (app: string, replicas: number, port: string) => `app: ${app}
entrypoints:
  web:
    command: [node, -e, "require('http').createServer((q, s) => s.end('gantry')).listen(process.env.PORT)"]
    replicas: ${replicas}
    ports: [${port}]
    health: { http: { port: http }, interval: 200ms }
    restart: { policy: always, backoff: { initial: 200ms, max: 1s } }
    stop: { grace: 1s }
`;

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: `${low}-${low + 9}`, dockerSocket: join(cluster.dir, 'none.sock') });
  });
  after(async () => {
    for (const app of apps) await cluster.cli(['rm', app, '--timeout', '30s']);
    for (const server of outside) await close(server);
    await cluster.close();
  });

  test('an instance given a port another program holds moves to a free one; the node stops offering it', async () => {
    outside.push(await occupy(low));
    const app = `moved-${cluster.id}`;
    await apply(app, spec(app, 2, '{ name: http }'), true);
    const live = (await detail(app)).instances;
    assert.equal(live.length, 2);
    const hosts = live.map((i) => i.ports[0]!.host).sort();
    assert.ok(!hosts.includes(low), `no instance on the taken port: ${hosts.join(',')}`);
    for (const instance of live) {
      assert.equal(instance.status?.state, 'running');
      assert.equal(await (await fetch(`http://127.0.0.1:${instance.ports[0]!.host}/`)).text(), 'gantry');
    }
    const moved = (await events(app)).filter((e) => e.type === 'instance.ports_moved');
    assert.equal(moved.length, 1, JSON.stringify(moved));
    assert.match(moved[0]!.message, new RegExp(`host port ${low}/tcp is held by another program on ${node}; moved to \\d+/tcp`));
    await until('the node to report the taken port', async () => {
      const { nodes: now } = (await cluster.api('GET', '/v1/nodes')) as NodeListResponse;
      return now.find((n) => n.name === node)?.portsTaken?.some((p) => p.host === low && p.protocol === 'tcp');
    }, 15_000);

    // Scaling up never lands on it again.
    const scaled = await cluster.cli(['scale', app, 'web', '3', '--timeout', '60s']);
    assert.equal(scaled.code, 0, scaled.stdout + scaled.stderr);
    const after = (await detail(app)).instances.filter((i) => i.desired === 'running');
    assert.equal(after.length, 3);
    assert.ok(after.every((i) => i.ports[0]!.host !== low));
    assert.equal((await events(app)).filter((e) => e.type === 'instance.ports_moved').length, 1, 'no second move');
  });

  test('a host port fixed in the spec cannot move: the instance waits for it and says why, then starts', async () => {
    const fixed = low + 8;
    const holder = await occupy(fixed);
    const app = `fixed-${cluster.id}`;
    await apply(app, spec(app, 1, `{ name: http, host: ${fixed} }`), false);
    const event = await until('the port_taken event', async () => (await events(app)).find((e) => e.type === 'instance.port_taken'), 30_000);
    assert.match(event.message, new RegExp(`${fixed}/tcp held by another program on ${node} and host port ${fixed}/tcp is fixed in the spec; waiting for the port`));
    const [waiting] = (await detail(app)).instances;
    assert.equal(waiting?.status?.state, 'backoff');
    assert.match(waiting?.status?.message ?? '', new RegExp(`host port ${fixed}/tcp already in use by another program`));
    await close(holder);
    await until('the instance to start once the port is free', async () => (await detail(app)).instances[0]?.status?.state === 'running', 30_000);
    assert.equal(await (await fetch(`http://127.0.0.1:${fixed}/`)).text(), 'gantry');
  });
});
