// End to end on the process runtime, on a node whose agent has no Docker Engine: the
// newcomer's path on a machine without Docker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import type { AppDetailResponse, NodeListResponse } from '../src/model/api.js';

const EXAMPLE = readFileSync(join(import.meta.dirname, '..', 'examples', 'hello-process.yaml'), 'utf8');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('process runtime end to end, no Docker Engine', () => {
  const cluster = new TestCluster();
  const app = `e2e-proc-${cluster.id}`;
  const node = `nodocker-${cluster.id}`;
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const answers = async (port: number) => (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).text();

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '30100-30199', dockerSocket: join(cluster.dir, 'no-docker.sock') });
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.close();
  });

  test('the node says docker is unavailable and why', async () => {
    const { nodes } = (await cluster.api('GET', '/v1/nodes')) as NodeListResponse;
    const me = nodes.find((n) => n.name === node)!;
    assert.deepEqual(me.runtimes, ['process']);
    assert.match(me.runtimeNotes.join('\n'), /docker: .*no-docker\.sock/);
  });

  test('apply brings 3 process replicas up, each on its own port', async () => {
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: EXAMPLE.replace('app: hello-process', `app: ${app}`) });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}\n${cluster.output.join('\n')}`);
    const { instances } = await detail();
    assert.equal(instances.length, 3);
    assert.equal(new Set(instances.map((i) => i.ports[0]!.host)).size, 3);
    for (const instance of instances) {
      assert.equal(instance.status?.state, 'running');
      assert.equal(await answers(instance.ports[0]!.host), `hello from ${instance.id}\n`);
    }
  });

  test('a killed process is restarted by the agent', async () => {
    const [victim] = (await detail()).instances;
    const pid = Number(victim!.status!.runtimeId!.replace('pid:', ''));
    process.kill(-pid, 'SIGKILL');
    await until('the process instance to come back', async () => {
      const instance = (await detail()).instances.find((i) => i.id === victim!.id);
      return instance?.status?.restarts === 1 && instance.status.state === 'running';
    });
    assert.match(await answers(victim!.ports[0]!.host), /hello from/);
  });

  test('one instance stopped on its own keeps its place (no replacement), starts again; an app stop and start takes it along', async () => {
    const [victim] = (await detail()).instances;
    const pid = Number(victim!.status!.runtimeId!.replace('pid:', ''));
    const stopped = await cluster.cli(['instance', 'stop', victim!.id]);
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
    const stoppedOne = async () => {
      const instance = (await detail()).instances.find((i) => i.id === victim!.id);
      return instance?.desired === 'stopped' && instance.status?.state === 'exited';
    };
    await until('the instance stopped', stoppedOne);
    await until(`pid ${pid} to be gone`, () => !pidAlive(pid), 5000);
    // A few reconcile passes later: still three instances, this one still stopped, nothing new placed.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const meanwhile = (await detail()).instances;
    assert.deepEqual(meanwhile.map((i) => i.id).sort(), (await detail()).instances.map((i) => i.id).sort());
    assert.equal(meanwhile.length, 3);
    assert.ok(await stoppedOne(), 'still stopped');
    assert.equal(meanwhile.filter((i) => i.status?.state === 'running').length, 2);

    // Starting it alone when the whole app is stopped is refused with the way out.
    assert.equal((await cluster.cli(['stop', app, '--timeout', '30s'])).code, 0);
    const refused = await cluster.cli(['instance', 'start', victim!.id]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`app ${app} is stopped: gantry start ${app}`));
    const started = await cluster.cli(['start', app, '--timeout', '30s']);
    assert.equal(started.code, 0, started.stdout + started.stderr);
    await until('all three running again', async () => (await detail()).instances.filter((i) => i.status?.state === 'running').length === 3);

    assert.equal((await cluster.cli(['instance', 'stop', victim!.id])).code, 0);
    await until('stopped again', stoppedOne);
    const again = await cluster.cli(['instance', 'start', victim!.id]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    await until('running again', async () => (await detail()).instances.find((i) => i.id === victim!.id)?.status?.state === 'running');
    assert.match(await answers(victim!.ports[0]!.host), /hello from/);
    const types = ((await cluster.api('GET', `/v1/events?instance=${victim!.id}&limit=100`)) as { events: { type: string }[] }).events.map((e) => e.type);
    assert.ok(types.includes('instance.stop_requested') && types.includes('instance.start_requested'), types.join(' '));
  });

  test('scale down then rm leave no process and no port behind', async () => {
    const scaled = await cluster.cli(['scale', app, 'web', '1', '--timeout', '30s']);
    assert.equal(scaled.code, 0, scaled.stdout + scaled.stderr);
    await until('two instances forgotten', async () => (await detail()).instances.length === 1);
    const before = (await detail()).instances;
    const all = [...before];
    const pids = all.map((i) => Number(i.status!.runtimeId!.replace('pid:', '')));
    const removed = await cluster.cli(['rm', app, '--timeout', '30s']);
    assert.equal(removed.code, 0, removed.stdout + removed.stderr);
    for (const pid of pids) await until(`pid ${pid} to be gone`, () => !pidAlive(pid), 5000);
    for (const instance of all) await assert.rejects(answers(instance.ports[0]!.host));
  });
});
