// Discovery end to end: Gantry renders a real nginx's upstreams and serves DNS while instances
// are scaled down, killed with -9 and while a node's agent stops. Traffic through nginx must not
// fail, and DNS must drop a dead endpoint within its lease.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { TestCluster, freePort, until } from './helpers/cluster.js';
import { TestNginx, get, loadLoop, skipWithoutNginx } from './helpers/nginx.js';
import type { AppDetailResponse } from '../src/model/api.js';

const skip = await skipWithoutNginx();
const TEMPLATE = join(import.meta.dirname, '..', 'examples', 'nginx-upstreams.hbs');

function resolveA(port: number, name: string): Promise<string[]> {
  return queryA(port, name).then((r) => r.addresses);
}

function queryA(port: number, name: string): Promise<{ rcode: string; addresses: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no DNS answer for ${name}`));
    }, 2000);
    socket.on('message', (message) => {
      clearTimeout(timer);
      socket.close();
      const answer = dnsPacket.decode(message) as { rcode?: string; answers?: { type: string; data?: unknown }[] };
      resolve({ rcode: String(answer.rcode), addresses: (answer.answers ?? []).filter((a) => a.type === 'A').map((a) => String(a.data)).sort() });
    });
    socket.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
  });
}

describe('discovery end to end: nginx and DNS follow instances', { skip }, () => {
  const cluster = new TestCluster();
  const nginx = new TestNginx();
  const app = `disc-${cluster.id}`;
  const [a, b] = [`da-${cluster.id}`, `db-${cluster.id}`];
  const host = `web.${app}.default.test`;
  const orphans: number[] = [];
  let listen = 0;
  let dnsPort = 0;
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const endpointPorts = async () => ((await cluster.api('GET', `/v1/registry?app=${app}`)) as { endpoints: { id: string; node: string; ports: { http: number } }[] }).endpoints;

  before(async () => {
    listen = await freePort();
    dnsPort = await freePort();
    await nginx.start();
    const rendererFile = join(cluster.dir, 'nginx-renderer.yaml');
    writeFileSync(rendererFile, JSON.stringify({ name: 'nginx', template: TEMPLATE, output: nginx.include, check: nginx.checkCommand, reload: nginx.reloadCommand, vars: { listen: `127.0.0.1:${listen}`, domain: 'test' } }));
    await cluster.startServer({ nodeTimeout: 6, registryTtl: 3, extra: ['--renderer', rendererFile, '--dns-port', String(dnsPort), '--dns-domain', 'gantry.test'] });
    const noDocker = join(cluster.dir, 'none.sock');
    await cluster.startAgent({ name: a, portRange: '30800-30899', dockerSocket: noDocker });
    await cluster.startAgent({ name: b, portRange: '30900-30999', dockerSocket: noDocker });
    const spec = `app: ${app}
entrypoints:
  web:
    command: [node, -e, "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE)).listen(process.env.PORT)"]
    replicas: 4
    ports: [{ name: http }]
    health: { http: { port: http }, interval: 300ms, timeout: 1s, retries: 2 }
    stop: { grace: 2s }
`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    await until('nginx to route to all 4', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 40; i++) seen.add((await get(listen, host)).body); // fetch() may not set Host
      return seen.size === 4;
    }, 20_000);
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '30s']);
    // What ran on node b outlived its agent, as instances do: end them here.
    for (const pid of orphans) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await cluster.close();
    await nginx.stop();
  });

  test('DNS answers A records for the healthy endpoints; NXDOMAIN for unknown names', async () => {
    assert.deepEqual(await resolveA(dnsPort, `web.${app}.default.gantry.test`), ['127.0.0.1']);
    assert.deepEqual(await queryA(dnsPort, `nope.${app}.default.gantry.test`), { rcode: 'NXDOMAIN', addresses: [] });
  });

  test('scale down: no request through nginx fails', async () => {
    const load = loadLoop(listen, host, 4);
    const scaled = await cluster.cli(['scale', app, 'web', '2', '--timeout', '30s']);
    assert.equal(scaled.code, 0, scaled.stdout + scaled.stderr);
    await new Promise((r) => setTimeout(r, 1000));
    const stats = await load.stop();
    await cluster.dumpIfFailed(stats.failures);
    assert.deepEqual(stats.failures, [], `failed requests during the scale-down (of ${stats.ok} ok)`);
    assert.equal((await endpointPorts()).length, 2);
  });

  test('kill -9 of an instance: no request through nginx fails; its endpoint leaves the registry at once', async () => {
    const load = loadLoop(listen, host, 4);
    const [victim] = (await detail()).instances.filter((i) => i.status?.state === 'running');
    const killedAt = Date.now();
    process.kill(-Number(victim!.status!.runtimeId!.replace('pid:', '')), 'SIGKILL');
    await until('the killed endpoint to be withdrawn', async () => !(await endpointPorts()).some((e) => e.id === victim!.id && e.ports.http === victim!.ports[0]!.host) || (await detail()).instances.find((i) => i.id === victim!.id)!.status!.restarts > 0, 5000, 20);
    const withdrawnAfter = Date.now() - killedAt;
    await until('it to be back', async () => (await endpointPorts()).length === 2, 20_000);
    const stats = await load.stop();
    await cluster.dumpIfFailed(stats.failures);
    assert.deepEqual(stats.failures, [], `failed requests after kill -9 (of ${stats.ok} ok)`);
    assert.ok(withdrawnAfter < 3000, `withdrawn after ${withdrawnAfter} ms`);
  });

  test("a node's agent stops: its endpoints leave DNS and nginx within the lease, traffic never fails", async () => {
    await cluster.cli(['scale', app, 'web', '4', '--timeout', '30s']);
    await until('endpoints on both nodes', async () => new Set((await endpointPorts()).map((e) => e.node)).size === 2, 20_000);
    const load = loadLoop(listen, host, 4);
    for (const i of (await detail()).instances) if (i.node === b && i.status?.runtimeId) orphans.push(Number(i.status.runtimeId.replace('pid:', '')));
    const stoppedAt = Date.now();
    await cluster.stopAgent(b, 'SIGKILL');
    await until("b's endpoints to expire", async () => !(await endpointPorts()).some((e) => e.node === b), 10_000, 50);
    const goneAfter = Date.now() - stoppedAt;
    assert.ok(goneAfter <= 3000 + 1500, `b's endpoints stayed ${goneAfter} ms (lease 3 s)`);
    await until('4 instances on node a', async () => (await endpointPorts()).filter((e) => e.node === a).length === 4, 30_000);
    const stats = await load.stop();
    await cluster.dumpIfFailed(stats.failures);
    assert.deepEqual(stats.failures, [], `failed requests while node b went away (of ${stats.ok} ok)`);
    assert.deepEqual(await resolveA(dnsPort, `web.${app}.default.gantry.test`), ['127.0.0.1']);
  });
});
