// Rollouts on the process runtime (quick): rolling, blue-green, canary with promote, automatic
// rollback of a release that crashes, pause and resume.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { TestCluster, until } from './helpers/cluster.js';
import type { AppDetailResponse } from '../src/model/api.js';
import type { RolloutStatus } from '../src/cli/client.js';

const server = (version: string) => `require('http').createServer((q, s) => s.end('${version}')).listen(process.env.PORT)`;

// startPeriod: a node process on a loaded 2-core machine may take over 400 ms to listen; its
// first failed checks must not count as the release failing.
function spec(app: string, version: string, update: string, command?: string): string {
  return `app: ${app}
entrypoints:
  web:
    command: ${command ?? `[node, -e, "${server(version)}"]`}
    replicas: 3
    ports: [{ name: http }]
    env: { VERSION: "${version}" }
    health: { http: { port: http }, interval: 200ms, timeout: 1s, retries: 2, startPeriod: 5s }
    restart: { policy: always, backoff: { initial: 200ms, max: 1s } }
    stop: { grace: 2s }
    update: ${update}
`;
}

describe('rollouts', () => {
  const cluster = new TestCluster();
  const node = `roll-${cluster.id}`;
  const apps: string[] = [];
  const detail = (app: string) => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const status = (app: string) => cluster.api('GET', `/v1/apps/${app}/rollout`) as Promise<RolloutStatus>;
  const versions = async (app: string) => {
    const { instances } = await detail(app);
    return instances.filter((i) => i.desired === 'running').map((i) => i.release).sort();
  };
  const deploy = async (app: string, text: string, wait = true) => {
    if (!apps.includes(app)) apps.push(app);
    const result = await cluster.cli(['apply', '-f', '-', ...(wait ? ['--timeout', '60s'] : ['--no-wait'])], { input: text });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  };
  const phase = async (app: string, wanted: string) => until(`rollout of ${app} to be ${wanted}`, async () => ((await status(app)).rollout?.phase === wanted ? await status(app) : undefined), 60_000);

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '30600-30799', dockerSocket: join(cluster.dir, 'none.sock') });
  });
  after(async () => {
    for (const app of apps) await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.close();
  });

  test('rolling: one at a time, never below the replica count, history and status tell it', async () => {
    const app = `rolling-${cluster.id}`;
    await deploy(app, spec(app, 'v1', '{ strategy: rolling, maxSurge: 1, maxUnavailable: 0 }'));
    await deploy(app, spec(app, 'v2', '{ strategy: rolling, maxSurge: 1, maxUnavailable: 0 }'), false);
    let minHealthy = 3;
    let maxTotal = 0;
    await until('all instances on release 2', async () => {
      const { instances } = await detail(app);
      const live = instances.filter((i) => i.desired === 'running');
      minHealthy = Math.min(minHealthy, live.filter((i) => i.status?.state === 'running').length);
      maxTotal = Math.max(maxTotal, live.length);
      return live.length === 3 && live.every((i) => i.release === 2 && i.status?.state === 'running');
    }, 60_000, 100);
    assert.ok(minHealthy >= 3, `healthy count dipped to ${minHealthy} with maxUnavailable 0`);
    assert.ok(maxTotal <= 4, `surge beyond 1: ${maxTotal}`);
    const done = await phase(app, 'succeeded');
    assert.ok(done.rollout!.steps.some((s) => /rolling:/.test(s.message)));
    const text = await cluster.cli(['rollout', 'status', app]);
    assert.match(text.stdout, /release 1 → 2: succeeded/);
  });

  test('a release that crashes is rolled back automatically; the old instances never stopped', async () => {
    const app = `crash-${cluster.id}`;
    await deploy(app, spec(app, 'v1', '{ strategy: rolling }'));
    const before = (await detail(app)).instances.map((i) => [i.id, i.status?.runtimeId]);
    await deploy(app, spec(app, 'v2', '{ strategy: rolling }', '[sh, -c, "echo cannot start: missing config >&2; exit 3"]'), false);
    const rolledBack = await phase(app, 'rolled-back');
    assert.match(rolledBack.rollout!.reason!, /exit code 3/);
    await until('only release 1 left', async () => (await versions(app)).join() === '1,1,1' && (await detail(app)).instances.length === 3);
    const after = (await detail(app)).instances.map((i) => [i.id, i.status?.runtimeId]);
    assert.deepEqual(after, before, 'the old instances were never stopped or restarted');
    const { events } = (await cluster.api('GET', `/v1/events?app=${app}`)) as { events: { type: string; message: string }[] };
    assert.ok(events.some((e) => e.type === 'rollout.rolled_back' && /exit code 3/.test(e.message)));
    const shown = await cluster.cli(['rollout', 'status', app]);
    assert.match(shown.stdout, /rolled-back/);
    assert.match(shown.stdout, /reason: .*exit code 3/);
  });

  test('blue-green: a full new set, one switch, the old set kept then removed', async () => {
    const app = `bg-${cluster.id}`;
    await deploy(app, spec(app, 'v1', '{ strategy: blue-green, keepOld: 2s }'));
    await deploy(app, spec(app, 'v2', '{ strategy: blue-green, keepOld: 2s }'), false);
    const registry = async () => ((await cluster.api('GET', `/v1/registry?app=${app}`)) as { endpoints: { id: string }[] }).endpoints.map((e) => e.id);
    const byRelease = async (release: number) => (await detail(app)).instances.filter((i) => i.release === release).map((i) => i.id);
    // Before the switch only release 1 is registered, though release 2 runs.
    await until('the new set to run', async () => (await byRelease(2)).length === 3, 30_000);
    const old = await byRelease(1);
    const early = await registry();
    assert.ok(early.every((id) => old.includes(id)) || early.every((id) => !old.includes(id)), 'never a mix');
    await until('the switch', async () => {
      const ids = await registry();
      const fresh = await byRelease(2);
      return ids.length === 3 && ids.every((id) => fresh.includes(id));
    }, 30_000, 100);
    await phase(app, 'succeeded');
    assert.deepEqual(await versions(app), [2, 2, 2]);
  });

  test('canary: one new instance beside the old, then promote; pause holds it', async () => {
    const app = `canary-${cluster.id}`;
    await deploy(app, spec(app, 'v1', '{ strategy: canary, canary: 1 }'));
    await deploy(app, spec(app, 'v2', '{ strategy: canary, canary: 1 }'), false);
    await phase(app, 'awaiting-promotion');
    assert.deepEqual(await versions(app), [1, 1, 1, 2]);
    assert.equal((await cluster.cli(['rollout', 'pause', app])).code, 0);
    const refused = await cluster.cli(['promote', app]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is paused; cannot be promoted/);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await versions(app), [1, 1, 1, 2], 'nothing moves while paused');
    assert.equal((await cluster.cli(['rollout', 'resume', app])).code, 0);
    await phase(app, 'awaiting-promotion');
    const promoted = await cluster.cli(['promote', app]);
    assert.equal(promoted.code, 0, promoted.stderr);
    await phase(app, 'succeeded');
    assert.deepEqual(await versions(app), [2, 2, 2]);
  });
});

describe('the resource lock', () => {
  const cluster = new TestCluster();
  const node = `lock-${cluster.id}`;
  const apps: string[] = [];
  const status = (app: string) => cluster.api('GET', `/v1/apps/${app}/rollout`) as Promise<RolloutStatus>;
  const entry = (cpu: number, replicas: number, version: string, update: string) => `
  web:
    command: [node, -e, "${server(version)}"]
    replicas: ${replicas}
    resources: { cpu: ${cpu}, memory: 32Mi }
    ports: [{ name: http }]
    health: { http: { port: http }, interval: 200ms }
    stop: { grace: 1s, drain: 0s }
    update: ${update}
`;
  const apply = async (app: string, body: string, wait = true) => {
    if (!apps.includes(app)) apps.push(app);
    const result = await cluster.cli(['apply', '-f', '-', ...(wait ? ['--timeout', '60s'] : ['--no-wait'])], { input: `app: ${app}\nentrypoints:${body}` });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  };

  before(async () => {
    await cluster.startServer();
    // Exactly 2 cores for instances, whatever the machine.
    await cluster.startAgent({ name: node, portRange: '30600-30799', dockerSocket: join(cluster.dir, 'none.sock'), extra: ['--reserve-cores', String(Math.max(0, cpus().length - 2))] });
  });
  after(async () => {
    for (const app of apps) await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.close();
  });

  test('a rollout that cannot have the room it needs fails before it starts anything', async () => {
    const app = `full-${cluster.id}`;
    await apply(app, entry(0.5, 3, 'v1', '{ strategy: blue-green }'));
    const before = ((await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse).instances.map((i) => i.id).sort();
    await apply(app, entry(0.5, 3, 'v2', '{ strategy: blue-green }'), false);
    const rolledBack = await until('the rollout to give up', async () => ((await status(app)).rollout?.phase === 'rolled-back' ? status(app) : undefined), 20_000);
    assert.match(rolledBack.rollout!.reason!, /cannot reserve room for 3 new instance\(s\) before starting: 0\/1 nodes: 1 insufficient cpu/);
    const after = ((await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse).instances.map((i) => i.id).sort();
    assert.deepEqual(after, before, 'nothing was started or stopped');
    await cluster.cli(['rm', app, '--timeout', '30s']);
  });

  test('room an old instance frees goes to the rollout\'s next new instance, not to a deploy waiting meanwhile', async () => {
    // The server visits apps in key order after a restart: the waiting app comes first.
    const rolling = `z-hold-${cluster.id}`;
    const waiting = `a-wait-${cluster.id}`;
    const update = '{ strategy: rolling, maxSurge: 1, maxUnavailable: 0, minHealthy: 1s }';
    await apply(rolling, entry(0.5, 3, 'v1', update));
    await apply(rolling, entry(0.5, 3, 'v2', update), false);
    await until('the rollout to hold its surge room', async () => (await status(rolling)).rollout?.steps.some((s) => /holding room for 1 new instance/.test(s.message)), 20_000);
    await apply(waiting, entry(0.5, 1, 'w', '{ strategy: rolling }'), false);
    await cluster.stopServer();
    await cluster.startServer();
    const done = await until('the rollout to end', async () => {
      const phase = (await status(rolling)).rollout?.phase;
      return phase && !['progressing', 'paused'].includes(phase) ? status(rolling) : undefined;
    }, 60_000);
    assert.equal(done.rollout!.phase, 'succeeded', done.rollout!.reason);
    assert.ok(done.rollout!.steps.some((s) => /holding the room an old instance freed on /.test(s.message)), JSON.stringify(done.rollout!.steps.map((s) => s.message)));
    const live = ((await cluster.api('GET', `/v1/apps/${rolling}`)) as AppDetailResponse).instances.filter((i) => i.desired === 'running');
    assert.deepEqual(live.map((i) => i.release), [2, 2, 2]);
    // What the rollout no longer needs goes to the app that waited.
    await until('the waiting app to run', async () => ((await cluster.api('GET', `/v1/apps/${waiting}`)) as AppDetailResponse).instances.some((i) => i.status?.state === 'running'), 30_000);
  });
});
