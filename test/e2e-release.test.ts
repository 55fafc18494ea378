// Releases on the real Docker Engine with traffic through the nginx Gantry renders: rolling,
// blue-green and canary to a new image without a failed request, automatic rollback of an
// image that exits at once, and a server killed with -9 in the middle of a rolling update.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestCluster, dockerContainers, freePort, until } from './helpers/cluster.js';
import { TestNginx, loadLoop, skipWithoutNginx } from './helpers/nginx.js';
import { skipWithoutDocker, TEST_IMAGE } from './helpers/env.js';
import type { AppDetailResponse } from '../src/model/api.js';
import type { RolloutStatus } from '../src/cli/client.js';

const run = promisify(execFile);
const skip = (await skipWithoutDocker()) || (await skipWithoutNginx());
const TEMPLATE = join(import.meta.dirname, '..', 'examples', 'nginx-upstreams.hbs');
const IMAGES = ['gantry/busybox:r1', 'gantry/busybox:r2', 'gantry/busybox:r3', 'gantry/busybox:r4', 'gantry/busybox:r5'];

function spec(app: string, image: string, update: string, command = '[httpd, -f, -p, "8080", -h, /www]'): string {
  return `app: ${app}
entrypoints:
  web:
    image: ${image}
    command: ${command}
    replicas: 3
    resources: { cpu: 0.1, memory: 16Mi }
    ports: [{ name: http, container: 8080 }]
    health: { http: { port: http }, interval: 300ms, timeout: 1s, retries: 2 }
    restart: { policy: always, backoff: { initial: 300ms, max: 2s } }
    stop: { grace: 2s }
    update: ${update}
`;
}

describe('releases on Docker with traffic through nginx', { skip }, () => {
  const cluster = new TestCluster();
  const nginx = new TestNginx();
  const node = `rel-${cluster.id}`;
  const apps: string[] = [];
  let listen = 0;
  const status = (app: string) => cluster.api('GET', `/v1/apps/${app}/rollout`) as Promise<RolloutStatus>;
  const detail = (app: string) => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const phase = (app: string, wanted: string, timeoutMs = 90_000) => until(`rollout of ${app} to be ${wanted}`, async () => ((await status(app)).rollout?.phase === wanted ? status(app) : undefined), timeoutMs);
  const deploy = async (app: string, text: string, wait: boolean) => {
    if (!apps.includes(app)) apps.push(app);
    const result = await cluster.cli(['apply', '-f', '-', ...(wait ? ['--timeout', '90s'] : ['--no-wait'])], { input: text });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  };
  const onlyRelease = async (app: string, release: number) => {
    const live = (await detail(app)).instances.filter((i) => i.desired === 'running');
    return live.length === 3 && live.every((i) => i.release === release && i.status?.state === 'running');
  };

  const routed = (host: string) =>
    until('nginx to route to the app', async () => {
      const load = loadLoop(listen, host, 1);
      await new Promise((r) => setTimeout(r, 200));
      const stats = await load.stop();
      return stats.ok > 0 && stats.failures.length === 0;
    }, 20_000);

  /** Deploys release 1, then release 2 under load; returns the failed requests. */
  async function releaseUnderLoad(app: string, update: string, steer?: () => Promise<void>): Promise<string[]> {
    await deploy(app, spec(app, IMAGES[0]!, update), true);
    const host = `web.${app}.default.test`;
    await routed(host);
    const load = loadLoop(listen, host, 4);
    await deploy(app, spec(app, IMAGES[1]!, update), false);
    await steer?.();
    await phase(app, 'succeeded');
    await until('only release 2 left', () => onlyRelease(app, 2), 30_000);
    await new Promise((r) => setTimeout(r, 500));
    const stats = await load.stop();
    assert.ok(stats.ok > 50, `only ${stats.ok} requests went through`);
    await cluster.dumpIfFailed(stats.failures);
    return stats.failures.map((f) => f.what);
  }

  before(async () => {
    for (const image of IMAGES) await run('docker', ['tag', TEST_IMAGE, image]);
    listen = await freePort();
    await nginx.start();
    const rendererFile = join(cluster.dir, 'nginx.yaml');
    writeFileSync(rendererFile, JSON.stringify({ name: 'nginx', template: TEMPLATE, output: nginx.include, check: nginx.checkCommand, reload: nginx.reloadCommand, vars: { listen: `127.0.0.1:${listen}`, domain: 'test' } }));
    await cluster.startServer({ extra: ['--renderer', rendererFile] });
    await cluster.startAgent({ name: node, portRange: '31100-31299' });
  });

  after(async () => {
    for (const app of apps) {
      await cluster.cli(['rm', app, '--timeout', '60s']);
      for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]);
    }
    await cluster.close();
    await nginx.stop();
    for (const image of IMAGES) await run('docker', ['rmi', image]).catch(() => {});
  });

  test('rolling update to a new image: no failed request', async () => {
    assert.deepEqual(await releaseUnderLoad(`roll-${cluster.id}`, '{ strategy: rolling, maxSurge: 1, maxUnavailable: 0 }'), []);
  });

  test('blue-green switch to a new image: no failed request', async () => {
    assert.deepEqual(await releaseUnderLoad(`bg-${cluster.id}`, '{ strategy: blue-green, keepOld: 2s }'), []);
  });

  test('canary then promotion to a new image: no failed request', async () => {
    const app = `can-${cluster.id}`;
    const failures = await releaseUnderLoad(app, '{ strategy: canary, canary: 1 }', async () => {
      await phase(app, 'awaiting-promotion');
      const promoted = await cluster.cli(['promote', app]);
      assert.equal(promoted.code, 0, promoted.stderr);
    });
    assert.deepEqual(failures, []);
  });

  test('a new image that exits at once is rolled back; the old instances never stop serving; the reason is shown', async () => {
    const app = `bad-${cluster.id}`;
    await deploy(app, spec(app, IMAGES[0]!, '{ strategy: rolling }'), true);
    const before = (await dockerContainers(app)).map((c) => [c.id, c.startedAt]).sort();
    await routed(`web.${app}.default.test`);
    const load = loadLoop(listen, `web.${app}.default.test`, 4);
    await deploy(app, spec(app, IMAGES[2]!, '{ strategy: rolling }', '[sh, -c, "echo config missing >&2; exit 2"]'), false);
    const rolledBack = await phase(app, 'rolled-back');
    assert.match(rolledBack.rollout!.reason!, /exit code 2/);
    await until('the failed instances gone', () => onlyRelease(app, 1), 30_000);
    const stats = await load.stop();
    await cluster.dumpIfFailed(stats.failures);
    assert.deepEqual(stats.failures, []);
    const old = (await dockerContainers(app)).filter((c) => before.some(([id]) => id === c.id));
    assert.deepEqual(old.map((c) => [c.id, c.startedAt]).sort(), before, 'the old containers were never stopped or restarted');
    const shown = await cluster.cli(['rollout', 'status', app]);
    assert.match(shown.stdout, /rolled-back/);
    assert.match(shown.stdout, /exit code 2/);
  });

  test('server killed with -9 mid-rolling-update: after restart the rollout finishes with exactly 3, no orphans', async () => {
    const app = `kill-${cluster.id}`;
    await deploy(app, spec(app, IMAGES[0]!, '{ strategy: rolling, maxSurge: 1, maxUnavailable: 0, minHealthy: 1s }'), true);
    await deploy(app, spec(app, IMAGES[3]!, '{ strategy: rolling, maxSurge: 1, maxUnavailable: 0, minHealthy: 1s }'), false);
    await until('the rollout under way', async () => (await detail(app)).instances.some((i) => i.release === 2 && i.status?.state === 'running'), 30_000);
    await cluster.stopServer('SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));
    await cluster.startServer();
    await phase(app, 'succeeded');
    await until('exactly 3 containers, all release 2', async () => {
      const containers = await dockerContainers(app);
      return (await onlyRelease(app, 2)) && containers.length === 3 && containers.every((c) => c.state === 'running');
    }, 60_000);
  });
});
