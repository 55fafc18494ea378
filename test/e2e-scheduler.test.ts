// The scheduler's CPU plan applied for real on Docker: a bound entry gets its cores as a cpuset
// with a matching weight, an unbound one a quota on the shared cores; what does not fit is
// reported with a reason in ps and in events; the capacity query answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpus } from 'node:os';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { skipWithoutDocker, TEST_IMAGE } from './helpers/env.js';
import type { AppDetailResponse, EventListResponse } from '../src/model/api.js';

const run = promisify(execFile);
const skip = (await skipWithoutDocker()) || (cpus().length < 2 ? 'needs at least 2 CPUs' : false);

interface Inspected {
  HostConfig: { CpusetCpus: string; CpuShares: number; CpuQuota: number; CpuPeriod: number };
}

describe('scheduler on the Docker Engine', { skip }, () => {
  const cluster = new TestCluster();
  const app = `sched-${cluster.id}`;
  const node = `sched-${cluster.id}`;
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const inspect = async (id: string) => (JSON.parse((await run('docker', ['inspect', `gantry-${id}`])).stdout) as Inspected[])[0]!;

  before(async () => {
    await cluster.startServer();
    // Two cores for instances, whatever the machine has beyond them.
    await cluster.startAgent({ name: node, portRange: '30500-30599', extra: ['--reserve-cores', String(cpus().length - 2)] });
  });
  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]);
  });

  test('cpuBind 1.5 gets a cpuset of two cores and matching shares; unbound 0.25 a quarter-core quota on the shared cores', async () => {
    const spec = `app: ${app}
entrypoints:
  bound:
    image: ${TEST_IMAGE}
    command: [sleep, "3600"]
    resources: { cpu: 1.5, cpuBind: true, memory: 16Mi }
    stop: { grace: 1s }
  shared:
    image: ${TEST_IMAGE}
    command: [sleep, "3600"]
    resources: { cpu: 0.25, memory: 16Mi }
    stop: { grace: 1s }
`;
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec });
    assert.equal(result.code, 0, result.stdout + result.stderr + cluster.output.join('\n'));
    const instances = (await detail()).instances;
    const bound = instances.find((i) => i.entry === 'bound')!;
    const shared = instances.find((i) => i.entry === 'shared')!;
    const reserved = cpus().length - 2;

    const b = await inspect(bound.id);
    const boundCores = b.HostConfig.CpusetCpus.split(',').map(Number);
    assert.equal(boundCores.length, 2, `cpuset ${b.HostConfig.CpusetCpus}`);
    assert.ok(boundCores.every((c) => c >= reserved), 'never on a reserved core');
    assert.equal(b.HostConfig.CpuShares, 1536);
    assert.equal(b.HostConfig.CpuQuota, 150_000);

    const s = await inspect(shared.id);
    assert.equal(s.HostConfig.CpuQuota, 25_000);
    assert.equal(s.HostConfig.CpuPeriod, 100_000);
    const exclusive = bound.cpu?.mode === 'bound' ? bound.cpu.exclusive : [];
    assert.equal(exclusive.length, 1);
    const sharedCores = s.HostConfig.CpusetCpus.split(',').map(Number);
    assert.ok(!sharedCores.includes(exclusive[0]!), `the shared instance (${s.HostConfig.CpusetCpus}) stays off the exclusive core ${exclusive[0]}`);
    assert.ok(sharedCores.every((c) => c >= reserved));
  });

  test('what does not fit is not placed, and ps and events say why', async () => {
    const scaled = await cluster.cli(['scale', app, 'bound', '2', '--no-wait']);
    assert.equal(scaled.code, 0, scaled.stderr);
    const ps = await until('ps to show the reason', async () => {
      const out = await cluster.cli(['ps', app]);
      return /bound: 1 instance not placed: 0\/1 nodes: 1 insufficient cpu/.test(out.stdout) ? out.stdout : undefined;
    }, 15_000);
    assert.match(ps, /need 1\.5/);
    const { events } = (await cluster.api('GET', `/v1/events?app=${app}`)) as EventListResponse;
    assert.ok(events.some((e) => e.type === 'instance.unplaced' && /insufficient cpu/.test(e.message)), JSON.stringify(events.map((e) => e.message)));
    assert.equal((await dockerContainers(app)).filter((c) => c.state === 'running').length, 2);

    const capacity = await cluster.cli(['capacity', app, 'shared', '-o', 'json']);
    const answer = JSON.parse(capacity.stdout) as { total: number; nodes: { node: string; count: number }[] };
    // 2 cores = 200 shares; taken: 150 (bound) + 25 (shared) → 25 left: one more quarter core.
    assert.equal(answer.total, 1);
    assert.deepEqual(answer.nodes, [{ node, count: 1 }]);
  });
});
