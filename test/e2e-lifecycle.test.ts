// Start order, init steps and rebuilds in place with real containers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { skipWithoutDocker, TEST_IMAGE } from './helpers/env.js';
import type { AppDetailResponse, EventListResponse } from '../src/model/api.js';

const run = promisify(execFile);
const skip = await skipWithoutDocker();

describe('lifecycle on the Docker Engine: dependsOn, init steps, rebuild in place', { skip }, () => {
  const cluster = new TestCluster();
  const node = `life-${cluster.id}`;
  const network = `gantry-life-${cluster.id}`;
  const subnet = `10.216.${Math.floor(Math.random() * 256)}.0/24`;
  const apps: string[] = [];
  const detail = (app: string) => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const events = async (app: string) => ((await cluster.api('GET', `/v1/events?app=${app}&limit=1000`)) as EventListResponse).events;
  const apply = async (app: string, text: string, wait = true) => {
    if (!apps.includes(app)) apps.push(app);
    return cluster.cli(['apply', '-f', '-', ...(wait ? ['--timeout', '90s'] : ['--no-wait'])], { input: text });
  };
  const dockerExec = async (id: string, command: string) => (await run('docker', ['exec', `gantry-${id}`, 'sh', '-c', command])).stdout.trim();

  before(async () => {
    await cluster.startServer();
    // A managed network: rebuilt instances keep their address there too.
    await cluster.startAgent({ name: node, portRange: '31000-31099', extra: ['--docker-network', network, '--docker-subnet', subnet] });
  });
  after(async () => {
    for (const app of apps) {
      await cluster.cli(['rm', app, '--timeout', '60s']);
      for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]);
    }
    await cluster.close();
    await run('docker', ['network', 'rm', network]).catch(() => {});
  });

  test('dependsOn: web starts only once db is healthy, and stops before it', async () => {
    const app = `order-${cluster.id}`;
    const result = await apply(app, `app: ${app}
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: [{ name: http, container: 8080 }]
    dependsOn: [db]
    stop: { grace: 1s }
  db:
    image: ${TEST_IMAGE}
    command: [sh, -c, 'sleep 2; exec httpd -f -p 9000 -h /www']
    ports: [{ name: sql, container: 9000 }]
    health: { tcp: { port: sql }, interval: 300ms }
    stop: { grace: 1s }
`);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const seq = (list: Awaited<ReturnType<typeof events>>, type: string, entry: string) => list.find((e) => e.type === type && e.entry === entry)?.seq ?? Infinity;
    let list = await events(app);
    assert.ok(seq(list, 'instance.healthy', 'db') < seq(list, 'instance.placed', 'web'), 'web placed only after db was healthy');
    const stopped = await cluster.cli(['stop', app, '--timeout', '60s']);
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
    list = await events(app);
    assert.ok(seq(list, 'instance.stopped', 'web') < seq(list, 'instance.stopped', 'db'), 'web stopped before db');
  });

  test('an init step fills a volume before the app starts; a failing one stops the start with a clear event', async () => {
    const app = `init-${cluster.id}`;
    const spec = (init: string) => `app: ${app}
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: [httpd, -f, -p, "8080", -h, /code]
    ports: [{ name: http, container: 8080 }]
    volumes: [{ name: code, path: /code }]
    init: { command: ['sh', '-c', '${init}'] }
    health: { http: { port: http }, interval: 300ms }
    update: { strategy: in-place }
    stop: { grace: 1s }
`;
    const ok = await apply(app, spec('echo bundle-v1 > /code/index.html'));
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const [instance] = (await detail(app)).instances;
    assert.equal(await (await fetch(`http://127.0.0.1:${instance!.ports[0]!.host}/`)).text(), 'bundle-v1\n');

    // Rebuild in place: new container, same node, ports and volume content.
    await dockerExec(instance!.id, 'echo kept > /code/state.txt');
    const before = (await dockerContainers(app)).find((c) => c.name === `/gantry-${instance!.id}`)!;
    const rebuilt = await cluster.cli(['rebuild', instance!.id]);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    await until('a new container for the same instance', async () => {
      const now = (await dockerContainers(app)).find((c) => c.name === `/gantry-${instance!.id}`);
      return now && now.id !== before.id && now.state === 'running';
    }, 30_000);
    await until('healthy again', async () => (await detail(app)).instances[0]?.status?.state === 'running', 30_000);
    const after = (await detail(app)).instances[0]!;
    assert.equal(after.id, instance!.id);
    assert.equal(after.node, instance!.node);
    assert.deepEqual(after.ports, instance!.ports);
    assert.equal(await dockerExec(instance!.id, 'cat /code/state.txt'), 'kept');
    assert.ok(instance!.status?.ip?.startsWith(subnet.replace(/0\/24$/, '')), `an address on ${subnet}: ${instance!.status?.ip}`);
    assert.equal(after.status?.ip, instance!.status?.ip, 'the same address on the managed network');
    const inspected = JSON.parse((await run('docker', ['inspect', `gantry-${instance!.id}`])).stdout) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
    assert.equal(inspected[0]!.NetworkSettings.Networks[network]?.IPAddress, instance!.status?.ip);

    // An in-place release: same instance, same port, the init step ran again.
    // The container before the apply: the apply may return after the release has already replaced it.
    const rebuiltContainer = (await dockerContainers(app)).find((c) => c.name === `/gantry-${instance!.id}`)!;
    const updated = await apply(app, spec('echo bundle-v2 > /code/index.html'));
    assert.equal(updated.code, 0, updated.stdout + updated.stderr);
    await until('release 2 in place: a new container, healthy, serving the new bundle', async () => {
      const [i] = (await detail(app)).instances;
      const container = (await dockerContainers(app)).find((c) => c.name === `/gantry-${instance!.id}`);
      if (i?.id !== instance!.id || i.release !== 2 || i.status?.state !== 'running' || !container || container.id === rebuiltContainer.id) return false;
      return (await (await fetch(`http://127.0.0.1:${instance!.ports[0]!.host}/`)).text()) === 'bundle-v2\n';
    }, 30_000);
    assert.deepEqual((await detail(app)).instances[0]!.ports, instance!.ports);
    assert.equal(await dockerExec(instance!.id, 'cat /code/state.txt'), 'kept');

    // A failing init step stops the start; the release is rolled back and release 2 serves again.
    const failing = await apply(app, spec('echo no bundle for you >&2; exit 4'), false);
    assert.equal(failing.code, 0, failing.stderr);
    await until('the init failure event', async () => (await events(app)).some((e) => e.type === 'instance.init_failed' && /exited 4: no bundle for you/.test(e.message)), 30_000);
    await until('rolled back', async () => ((await cluster.api('GET', `/v1/apps/${app}/rollout`)) as { rollout: { phase: string } }).rollout.phase === 'rolled-back', 60_000);
    const back = await until('release 2 running again', async () => {
      const live = (await detail(app)).instances.filter((i) => i.desired === 'running');
      return live.length === 1 && live[0]!.release === 2 && live[0]!.status?.state === 'running' ? live[0] : undefined;
    }, 60_000);
    assert.equal(await (await fetch(`http://127.0.0.1:${back.ports[0]!.host}/`)).text(), 'bundle-v2\n');
  });
});
