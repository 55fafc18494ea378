// What instances really use, end to end: a real agent samples two Docker instances through their
// cgroups (one burning CPU under a 0.5 CPU limit, one holding 40 MiB in tmpfs), the server keeps
// the samples, and /v1/usage, /v1/metrics/instances, gantry top and gantry nodes show plausible
// figures; a member of another team sees none of it; the agent's own /metrics answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, dockerContainers, freePort, until } from './helpers/cluster.js';
import { jsonCaller, signedInUsers } from './helpers/api.js';
import { TEST_IMAGE, skipWithoutDocker } from './helpers/env.js';
import type { InstanceUsage, UsageResponse } from '../src/model/usage.js';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const PASSWORD = 'usage test password';
const MiB = 1024 ** 2;

describe('usage: agents sample instances, gantry top shows them', async () => {
  const skip = await skipWithoutDocker();
  const cluster = new TestCluster();
  const app = `usage-${cluster.id}`;
  const node = `usage-${cluster.id}`;
  const call = jsonCaller(() => cluster.url);
  let people: Record<string, string> = {};
  let agentMetricsPort = 0;
  const spec = `app: ${app}
team: burners
entrypoints:
  burn:
    image: ${TEST_IMAGE}
    command: [sh, -c, 'while :; do :; done']
    resources: { cpu: 0.5, memory: 64Mi }
  hold:
    image: ${TEST_IMAGE}
    command: [sh, -c, 'dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=40 && sleep 100000']
    resources: { cpu: 0.1, memory: 128Mi }
`;
  const usage = async (token: string, query = `?app=${app}`) => {
    const answer = await call('GET', `/v1/usage${query}`, token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body as unknown as UsageResponse;
  };
  const entry = (u: UsageResponse, name: string): InstanceUsage | undefined => u.instances.find((i) => i.entry === name);

  before(async () => {
    if (skip) return;
    await cluster.startServer();
    agentMetricsPort = await freePort();
    await cluster.startAgent({ name: node, portRange: '32400-32409', extra: ['--sample-interval', '1s', '--metrics-address', `127.0.0.1:${agentMetricsPort}`] });
    people = await signedInUsers(call, cluster.token, ['alice', 'bob'], PASSWORD);
    assert.equal((await call('POST', '/v1/teams', cluster.token, { name: 'burners', owner: 'alice' })).status, 201);
    assert.equal((await call('POST', '/v1/teams', cluster.token, { name: 'others', owner: 'bob' })).status, 201);
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: spec });
    assert.equal(applied.code, 0, applied.stderr + applied.stdout);
  });

  after(async () => {
    if (skip) return;
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await promisify(execFile)('docker', ['rm', '-f', c.id]);
  });

  test('/v1/usage: CPU near its limit and throttled, memory above what was allocated', { skip }, async () => {
    // Several samples in: the burner's rate is over whole intervals of burning.
    const u = await until('both instances sampled a few times', async () => {
      const answer = await usage(cluster.token);
      const burn = entry(answer, 'burn');
      const hold = entry(answer, 'hold');
      return (burn?.history?.at.length ?? 0) >= 4 && (hold?.latest?.memoryBytes ?? 0) > 40 * MiB && answer;
    }, 90_000, 500);
    const burn = entry(u, 'burn')!;
    const hold = entry(u, 'hold')!;
    assert.equal(burn.node, node);
    assert.equal(burn.team, 'burners');
    assert.deepEqual(burn.limits, { cpu: 0.5, memoryBytes: 64 * MiB });
    const cpu = burn.latest!.cpuCores;
    assert.ok(cpu > 0.35 && cpu < 0.6, `the burner uses ${cpu} cores under a 0.5 CPU limit`);
    assert.ok(burn.latest!.throttledPeriods > 0 && burn.latest!.periods >= burn.latest!.throttledPeriods, `throttled ${burn.latest!.throttledPeriods} of ${burn.latest!.periods} periods`);
    assert.ok(burn.latest!.netRxBytes !== null, 'a container has a network of its own');
    assert.ok(hold.latest!.memoryBytes > 40 * MiB && hold.latest!.memoryBytes < 128 * MiB, `the holder uses ${hold.latest!.memoryBytes} bytes`);
    assert.equal(hold.latest!.memoryLimitBytes, 128 * MiB);
    assert.ok(hold.latest!.cpuCores < 0.1, `the holder sleeps: ${hold.latest!.cpuCores} cores`);
    const total = u.apps.find((a) => a.app === app)!;
    assert.equal(total.instances, 2);
    assert.ok(total.cpuCores >= cpu, 'the app total counts its instances');
  });

  test('gantry top and gantry nodes show the figures', { skip }, async () => {
    const top = await cluster.cli(['top', app]);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /^INSTANCE\s+APP\/ENTRY\s+NODE\s+STATE\s+CPU\/LIMIT\s+CPU%\s+THROTTLED\s+MEMORY\/LIMIT\s+MEM%/);
    const burnLine = top.stdout.split('\n').find((l) => l.includes(`${app}/burn`))!;
    assert.match(burnLine, /\s0\.[3-6]\d?\/0\.5\s+\d+%\s+\d+%\s/, burnLine);
    assert.match(top.stdout, new RegExp(`${app}: 2 instance\\(s\\) use 0\\.\\d+ of 0\\.6 CPU requested`));
    const json = await cluster.cli(['top', app, '-o', 'json']);
    assert.equal((JSON.parse(json.stdout) as UsageResponse).instances.length, 2);
    const nodes = await cluster.cli(['nodes']);
    assert.match(nodes.stdout, /CPU USED\s+MEMORY USED/);
    const row = nodes.stdout.split('\n').find((l) => l.startsWith(node))!;
    assert.match(row, /\s0\.[3-9]\d?\s+\d+\.\dMi\s/, row);
  });

  test('/v1/metrics/instances: series with their labels', { skip }, async () => {
    const response = await fetch(`${cluster.url}/v1/metrics/instances`, { headers: { authorization: `Bearer ${cluster.token}` } });
    assert.equal(response.status, 200);
    const text = await response.text();
    const burnId = entry(await usage(cluster.token), 'burn')!.id;
    const labels = `app="${app}",env="default",entry="burn",instance="${burnId}",node="${node}",team="burners"`;
    for (const metric of ['gantry_instance_cpu_cores', 'gantry_instance_cpu_throttled_periods_total', 'gantry_instance_memory_bytes', 'gantry_instance_memory_limit_bytes', 'gantry_instance_oom_kills_total']) {
      assert.match(text, new RegExp(`^${metric}\\{${labels.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\} [0-9.e+]+$`, 'm'), metric);
    }
    // The example dashboard asks only for series this endpoint exports.
    const dashboard = readFileSync(join(import.meta.dirname, '..', 'examples', 'grafana-dashboard.json'), 'utf8');
    const asked = new Set(dashboard.match(/gantry_instance_[a-z_]+/g));
    assert.ok(asked.size >= 8, `the dashboard uses ${asked.size} series`);
    for (const metric of asked) assert.match(text, new RegExp(`^${metric}\\{`, 'm'), `the dashboard's ${metric} is exported`);
  });

  test("another team's member sees none of it; the team's own owner does", { skip }, async () => {
    assert.deepEqual((await usage(people.bob!)).instances, []);
    assert.deepEqual((await usage(people.bob!, '')).instances, []);
    const bobs = await fetch(`${cluster.url}/v1/metrics/instances`, { headers: { authorization: `Bearer ${people.bob}` } });
    assert.equal(bobs.status, 200);
    assert.doesNotMatch(await bobs.text(), new RegExp(app));
    assert.equal((await usage(people.alice!)).instances.length, 2);
    const top = await cluster.cli(['top'], { env: { GANTRY_TOKEN: people.bob! } });
    assert.equal(top.code, 0, top.stderr);
    assert.equal(top.stdout.trim(), 'no instances you may see');
  });

  test("the agent's own /metrics: samples taken and instances by state", { skip }, async () => {
    const text = await (await fetch(`http://127.0.0.1:${agentMetricsPort}/metrics`)).text();
    const samples = Number(/^gantry_agent_usage_samples_total (\d+)/m.exec(text)?.[1]);
    assert.ok(samples > 3, `${samples} samples`);
    assert.match(text, /^gantry_agent_instances\{state="running"\} 2$/m);
    assert.match(text, /^gantry_agent_sampled_instances 2$/m);
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.equal((await fetch(`http://127.0.0.1:${agentMetricsPort}/other`)).status, 404);
  });
});
