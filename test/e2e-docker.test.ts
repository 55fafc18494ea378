// End to end on the real Docker Engine: a server and an agent as separate processes, the
// CLI as a user runs it. One cluster for the whole file; the scenarios run in order.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { skipWithoutDocker } from './helpers/env.js';
import type { AppDetailResponse, EventListResponse } from '../src/model/api.js';

const run = promisify(execFile);
const skip = await skipWithoutDocker();
const EXAMPLE = readFileSync(join(import.meta.dirname, '..', 'examples', 'hello-docker.yaml'), 'utf8');

describe('docker end to end', { skip }, () => {
  const cluster = new TestCluster();
  const app = `e2e-docker-${cluster.id}`;
  const spec = EXAMPLE.replace('app: hello-docker', `app: ${app}`);
  const node = `node-${cluster.id}`;

  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const running = async () => (await detail()).instances.filter((i) => i.desired === 'running');
  const answers = async (port: number) => (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).text();

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '30000-30099' });
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]);
  });

  test('apply brings 3 replicas to running and healthy with limits and answering ports', async () => {
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: spec });
    assert.equal(result.code, 0, `apply failed: ${result.stdout}\n${result.stderr}\n${cluster.output.join('\n')}`);
    const instances = await running();
    assert.equal(instances.length, 3);
    for (const instance of instances) {
      assert.equal(instance.status?.state, 'running');
      assert.equal(instance.status?.healthy, true);
      assert.match(await answers(instance.ports[0]!.host), /hello from gantry/);
    }
    const { stdout } = await run('docker', ['inspect', ...instances.map((i) => `gantry-${i.id}`)]);
    for (const container of JSON.parse(stdout) as { HostConfig: { Memory: number; CpuQuota: number; CpuPeriod: number }; Config: { Labels: Record<string, string> } }[]) {
      assert.equal(container.HostConfig.Memory, 32 * 1024 * 1024);
      assert.equal(container.HostConfig.CpuQuota, 25_000);
      assert.equal(container.HostConfig.CpuPeriod, 100_000);
      assert.equal(container.Config.Labels['gantry.app'], app);
    }
  });

  test('docker kill of an instance: the agent restarts it and the events say so', async () => {
    const [victim] = await running();
    await run('docker', ['kill', `gantry-${victim!.id}`]);
    const restarted = await until('the instance to be restarted and healthy', async () => {
      const instance = (await running()).find((i) => i.id === victim!.id);
      return instance?.status?.restarts === 1 && instance.status.state === 'running' ? instance : undefined;
    });
    assert.match(await answers(restarted.ports[0]!.host), /hello from gantry/);
    const { events } = (await cluster.api('GET', `/v1/events?instance=${victim!.id}`)) as EventListResponse;
    assert.ok(events.some((e) => e.type === 'instance.exited' && e.data?.exitCode === 137), JSON.stringify(events));
    assert.ok(events.some((e) => e.type === 'instance.restarted'));
  });

  test('server stopped for a quarter of a minute: nothing restarted or removed, a killed one still restarted, ps right after', async () => {
    const before = await dockerContainers(app);
    const victim = before[0]!;
    const restartsBeforeDown = Object.fromEntries((await running()).map((i) => [i.id, i.status?.restarts ?? 0]));
    const unchanged = (during: typeof before) => {
      assert.deepEqual(during.map((c) => c.id).sort(), before.map((c) => c.id).sort(), 'no container created or removed while the server was down');
      for (const c of during.filter((c) => c.id !== victim.id)) {
        assert.equal(c.startedAt, before.find((b) => b.id === c.id)!.startedAt, `${c.name} was restarted`);
      }
    };
    await cluster.stopServer();
    // The agent tries to reconnect after 0.25, 0.75, 1.75, 3.75, 7.75 and 12.75 s (backoff doubling
    // to its 5 s cap): the kill lands after four failed attempts, and the watch below spans the
    // attempts that reach the cap.
    await new Promise((r) => setTimeout(r, 5000));
    await run('docker', ['kill', victim.id]);
    await until('the agent to restart the killed container without the server', async () => {
      const now = (await dockerContainers(app)).find((c) => c.id === victim.id);
      return now?.state === 'running' && now.startedAt !== victim.startedAt;
    });
    // Watched throughout, not only at the end: a container removed and made again in between counts.
    for (const end = Date.now() + 8000; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) unchanged(await dockerContainers(app));
    await cluster.startServer();
    const victimId = (await dockerContainers(app)).find((c) => c.id === victim.id)!.name.replace('/gantry-', '');
    await until('ps to show 3 healthy instances, and the restart the agent did alone', async () => {
      const instances = await running();
      return instances.length === 3 && instances.every((i) => i.status?.state === 'running') && (instances.find((i) => i.id === victimId)?.status?.restarts ?? 0) > restartsBeforeDown[victimId]!;
    });
    const ps = await cluster.cli(['ps', app]);
    assert.equal(ps.code, 0);
    assert.equal(ps.stdout.trim().split('\n').length, 4, ps.stdout);
    assert.deepEqual((await dockerContainers(app)).map((c) => c.id).sort(), before.map((c) => c.id).sort());
  });

  test('agent restarted: every instance adopted, none restarted', async () => {
    const before = await dockerContainers(app);
    const restartsBefore = Object.fromEntries((await running()).map((i) => [i.id, i.status?.restarts]));
    assert.ok(Object.values(restartsBefore).some((n) => (n ?? 0) > 0), 'earlier tests restarted something');
    await cluster.stopAgent(node);
    await cluster.startAgent({ name: node, portRange: '30000-30099' });
    await new Promise((r) => setTimeout(r, 3000));
    const instances = await until('3 running instances after the agent restart', async () => {
      const list = await running();
      return list.length === 3 && list.every((i) => i.status?.state === 'running') ? list : undefined;
    });
    assert.deepEqual(Object.fromEntries(instances.map((i) => [i.id, i.status?.restarts])), restartsBefore, 'restart counts survive the agent restart');
    const afterRestart = await dockerContainers(app);
    assert.deepEqual(afterRestart.map((c) => [c.id, c.startedAt]).sort(), before.map((c) => [c.id, c.startedAt]).sort());
    for (const instance of instances) assert.match(await answers(instance.ports[0]!.host), /hello from gantry/);
  });

  test('scale up and down converges', async () => {
    const up = await cluster.cli(['scale', app, 'web', '5', '--timeout', '60s']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.equal((await running()).length, 5);
    assert.equal((await dockerContainers(app)).filter((c) => c.state === 'running').length, 5);
    const down = await cluster.cli(['scale', app, 'web', '2', '--timeout', '60s']);
    assert.equal(down.code, 0, down.stdout + down.stderr);
    await until('2 containers left', async () => (await dockerContainers(app)).length === 2);
    assert.equal((await running()).length, 2);
  });

  test('rm leaves no container and frees the ports', async () => {
    const ports = (await running()).map((i) => i.ports[0]!.host);
    const result = await cluster.cli(['rm', app, '--timeout', '60s']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.deepEqual(await dockerContainers(app), []);
    for (const port of ports) await assert.rejects(answers(port));
    const apps = (await cluster.api('GET', '/v1/apps')) as { apps: { name: string }[] };
    assert.ok(!apps.apps.some((a) => a.name === app));
    assert.equal(((await cluster.api('GET', `/v1/instances?app=${app}`)) as { instances: unknown[] }).instances.length, 0);
  });
});
