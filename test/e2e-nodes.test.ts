// Two nodes (two agents on this host, process runtime): a node that stops heartbeating has its
// instances replaced elsewhere, and when it returns its agent removes what it no longer owns.
// Also hooks and logs, which need only one node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import { alive, pidOf } from './helpers/processes.js';
import type { AppDetailResponse } from '../src/model/api.js';


describe('nodes, hooks and logs', () => {
  const cluster = new TestCluster();
  const noDocker = join(cluster.dir, 'no-docker.sock');
  const [a, b] = [`a-${cluster.id}`, `b-${cluster.id}`];
  const detail = (app: string) => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;

  before(async () => {
    await cluster.startServer({ nodeTimeout: 4, registryTtl: 6 });
    await cluster.startAgent({ name: a, portRange: '30200-30299', dockerSocket: noDocker });
    await cluster.startAgent({ name: b, portRange: '30300-30399', dockerSocket: noDocker });
  });

  after(async () => {
    for (const app of [`spread-${cluster.id}`, `hooks-${cluster.id}`]) await cluster.cli(['rm', app, '--timeout', '20s']);
    await cluster.close();
  });

  test('a silent node is marked down, its instance replaced; back, it drops the orphan', async () => {
    const app = `spread-${cluster.id}`;
    const spec = `app: ${app}\nentrypoints:\n  worker:\n    command: [sleep, "600"]\n    replicas: 2\n    stop: { grace: 1s }\n`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: spec });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const placed = (await detail(app)).instances;
    assert.deepEqual(placed.map((i) => i.node).sort(), [a, b], 'spread over both nodes');
    const onB = placed.find((i) => i.node === b)!;
    const orphanPid = pidOf(onB.status?.runtimeId);
    assert.ok(alive(orphanPid));

    await cluster.stopAgent(b, 'SIGKILL');
    const replaced = await until('the instance of node b to be replaced on node a', async () => {
      const instances = (await detail(app)).instances;
      return instances.length === 2 && instances.every((i) => i.node === a && i.status?.state === 'running') ? instances : undefined;
    }, 30_000);
    assert.ok(!replaced.some((i) => i.id === onB.id));
    const { events } = (await cluster.api('GET', `/v1/events?node=${b}`)) as { events: { type: string }[] };
    assert.ok(events.some((e) => e.type === 'node.down'));
    assert.ok(alive(orphanPid), 'nothing touched the process on the node while its agent was gone');

    await cluster.startAgent({ name: b, portRange: '30300-30399', dockerSocket: noDocker });
    await until('the orphan process to be stopped by the returning agent', () => !alive(orphanPid), 20_000);
    assert.equal((await detail(app)).instances.length, 2);
  });

  test('after-start and before-stop hooks run; logs can be read and followed', async () => {
    const app = `hooks-${cluster.id}`;
    const marks = join(cluster.dir, 'marks');
    mkdirSync(marks);
    const spec = `app: ${app}
entrypoints:
  talker:
    command: [sh, -c, 'echo hello-log; while true; do echo tick; sleep 0.2; done']
    env: { MARKS: "${marks}" }
    hooks:
      afterStart: 'echo started > $MARKS/after-$GANTRY_INSTANCE'
      beforeStop: 'echo stopping > $MARKS/before-$GANTRY_INSTANCE'
    stop: { grace: 2s }
`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: spec });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const [instance] = (await detail(app)).instances;
    await until('the after-start hook to run', () => existsSync(join(marks, `after-${instance!.id}`)), 10_000);

    const logs = await cluster.cli(['logs', instance!.id, '--tail', '1000']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^hello-log$/m);
    assert.match(logs.stdout, /^tick$/m);

    const response = await fetch(`${cluster.url}/v1/instances/${instance!.id}/logs?tail=0&follow=1`, { headers: { authorization: `Bearer ${cluster.token}` } });
    const reader = response.body!.getReader();
    let followed = '';
    while (!/tick\n/.test(followed)) followed += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();

    const stopped = await cluster.cli(['stop', app]);
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
    await until('the before-stop hook to run', () => existsSync(join(marks, `before-${instance!.id}`)), 10_000);
    await until('the instance to be stopped', async () => (await detail(app)).instances[0]?.status?.state === 'exited');
    const started = await cluster.cli(['start', app, '--timeout', '20s']);
    assert.equal(started.code, 0, started.stdout + started.stderr);
    assert.equal((await detail(app)).instances[0]!.id, instance!.id, 'start reuses the stopped instance');
  });
});

describe('after a reboot', () => {
  const cluster = new TestCluster();
  const node = `boot-${cluster.id}`;
  const agent = (bootId: string) => ({ name: node, portRange: '30300-30399', dockerSocket: join(cluster.dir, 'none.sock'), env: { GANTRY_BOOT_ID: bootId } });
  const server = "require('http').createServer((q, s) => s.end('up')).listen(process.env.PORT)";

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent(agent('boot-1'));
  });
  after(async () => {
    for (const app of [`prev-${cluster.id}`, `next-${cluster.id}`]) await cluster.cli(['rm', app, '--timeout', '20s']);
    await cluster.close();
  });

  test("a rebooted node restarts its previous instances before it takes new ones", async () => {
    const prev = `prev-${cluster.id}`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: `app: ${prev}\nentrypoints:\n  web:\n    command:\n      - sh\n      - -c\n      - sleep 2; exec node -e "${server}"\n    ports: [{ name: http }]\n    health: { http: { port: http }, interval: 200ms, startPeriod: 5s }\n    stop: { grace: 1s }\n` });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const [instance] = ((await cluster.api('GET', `/v1/apps/${prev}`)) as AppDetailResponse).instances;
    // The host goes down: agent and instance with it.
    await cluster.stopAgent(node, 'SIGKILL');
    process.kill(-pidOf(instance!.status?.runtimeId), 'SIGKILL');
    await cluster.startAgent(agent('boot-2'));
    // The server learns of the reboot when the agent says hello again.
    await until('the node to say it is recovering', async () => ((await cluster.api('GET', `/v1/events?node=${node}`)) as { events: { type: string }[] }).events.some((e) => e.type === 'node.recovering'));
    const next = `next-${cluster.id}`;
    const second = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: `app: ${next}\nentrypoints:\n  web:\n    command: [sleep, "600"]\n    stop: { grace: 1s }\n` });
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const { events } = (await cluster.api('GET', '/v1/events?limit=1000')) as { events: { type: string; app?: string; node?: string; seq: number }[] };
    const seq = (type: string, app?: string) => events.find((e) => e.type === type && (!app || e.app === app) && e.seq > (events.find((x) => x.type === 'node.recovering')?.seq ?? 0))?.seq ?? Infinity;
    assert.ok(events.some((e) => e.type === 'node.recovering' && e.node === node), 'the node said it was recovering');
    assert.ok(seq('instance.healthy', prev) < seq('instance.placed', next), 'the previous instance was healthy again before anything new was placed');
    assert.ok(seq('node.recovered') < seq('instance.placed', next));
  });
});
