// Node inspection against a real server and a real agent on this host: a policy with a sysctl
// threshold this machine fails (kernel.pid_max >= 99999999) and one it passes, a disk threshold
// of 1% (fails): the results are stored per check, each failure raised as an event once (not on
// every run), `gantry nodes` sums them up and `gantry node inspect` prints them. A bad policy file
// stops the server naming the field and its line; a member may not inspect.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import type { GantryEvent } from '../src/model/types.js';
import { DEFAULT_INSPECT_POLICY_YAML, type InspectionRecord } from '../src/model/inspection.js';
import { parseInspectPolicy } from '../src/server/inspect-policy.js';
import { compare, versionAtLeast } from '../src/agent/inspection-checks.js';
import { openStore } from '../src/store/index.js';
import { EventLog } from '../src/server/services/events.js';
import { InspectionService, REFRESH_UNCHANGED_MS } from '../src/server/services/inspections.js';

const PASSWORD = 'inspection test password';

describe('node inspection', () => {
  const cluster = new TestCluster();
  const node = `insp-${cluster.id}`;
  const policyFile = join(cluster.dir, 'inspect-policy.yaml');
  const inspection = async () => ((await cluster.api('GET', `/v1/nodes/${node}/inspection`)) as { inspection: InspectionRecord | null }).inspection;
  const checkEvents = async () => ((await cluster.api('GET', `/v1/events?node=${node}&limit=1000`)) as { events: GantryEvent[] }).events.filter((e) => e.type.startsWith('node.check_'));

  before(async () => {
    writeFileSync(policyFile, [
      'interval: 10s',
      `disk: { path: ${cluster.dir}, warn: 1%, fail: 1% }`,
      'clockOffset: { warn: 500ms, fail: 2s }',
      'sysctls:',
      '  kernel.pid_max: ">= 99999999"',
      '  kernel.threads-max: ">= 1"',
      '',
    ].join('\n'));
    await cluster.startServer({ extra: ['--inspect-policy', policyFile] });
    await cluster.startAgent({ name: node, portRange: '32400-32409', dockerSocket: join(cluster.dir, 'no-docker.sock') });
  });
  after(() => cluster.close());

  test('the agent reports on its own; the results are stored per check with since when', async () => {
    const record = await until('the first results', async () => (await inspection()) ?? undefined);
    assert.equal(record.node, node);
    const checks = record.checks;
    assert.equal(checks['sysctl:kernel.pid_max']?.status, 'fail');
    assert.match(checks['sysctl:kernel.pid_max']!.value, /^\d+$/);
    assert.equal(checks['sysctl:kernel.pid_max']!.threshold, '>= 99999999');
    assert.equal(checks['sysctl:kernel.threads-max']?.status, 'pass');
    assert.equal(checks[`disk:${cluster.dir}`]?.status, 'fail');
    assert.match(checks[`disk:${cluster.dir}`]!.value, /^\d+(\.\d)?%$/);
    // Same host, same clock: measured against the server's time, well within 500 ms.
    assert.equal(checks.clockOffset?.status, 'pass', JSON.stringify(checks.clockOffset));
    for (const check of Object.values(checks)) assert.ok(check.since <= record.at, `${check.check} has a since`);
  });

  test('gantry node inspect runs the checks now and prints each with status, value and threshold', async () => {
    const before = await inspection();
    const { code, stdout, stderr } = await cluster.cli(['node', 'inspect', node]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, new RegExp(`^node ${node}: 2 fail \\(checked `, 'm'));
    assert.match(stdout, /^CHECK\s+STATUS\s+VALUE\s+THRESHOLD\s+SINCE\s+MESSAGE$/m);
    assert.match(stdout, /^sysctl:kernel\.pid_max\s+fail\s+\d+\s+>= 99999999\s/m);
    assert.match(stdout, /^sysctl:kernel\.threads-max\s+pass\s+\d+\s+>= 1\s/m);
    assert.match(stdout, /^disk:\S+\s+fail\s+[\d.]+%\s+warn 1%, fail 1%\s/m);
    const after = await inspection();
    assert.ok(after!.at > before!.at, 'a new run was stored');
    assert.equal(after!.checks['sysctl:kernel.pid_max']!.since, before!.checks['sysctl:kernel.pid_max']!.since, 'a check that kept its status keeps its since');

    const json = await cluster.cli(['node', 'inspect', '--all', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const [answer] = JSON.parse(json.stdout) as { node: string; inspection: InspectionRecord; summary: { fail: number } }[];
    assert.equal(answer!.node, node);
    assert.equal(answer!.summary.fail, 2);
    assert.equal(answer!.inspection.checks['sysctl:kernel.pid_max']!.status, 'fail');
  });

  test('a check that changes status raises one event, not one per run', async () => {
    for (let i = 0; i < 2; i++) await cluster.api('POST', `/v1/nodes/${node}/inspect`);
    const events = await checkEvents();
    const failed = events.filter((e) => e.type === 'node.check_failed');
    assert.deepEqual(failed.map((e) => e.data?.check).sort(), [`disk:${cluster.dir}`, 'sysctl:kernel.pid_max'], JSON.stringify(events));
    const pidMax = failed.find((e) => e.data?.check === 'sysctl:kernel.pid_max')!;
    assert.equal(pidMax.level, 'error');
    assert.match(pidMax.message, /check sysctl:kernel\.pid_max fails: \d+ \(>= 99999999\)/);
    assert.ok(!events.some((e) => e.type === 'node.check_passed'), 'a check passing from the start says nothing');
  });

  test('gantry nodes shows the summary in CHECKS, GET /v1/nodes in a field', async () => {
    const { code, stdout, stderr } = await cluster.cli(['nodes']);
    assert.equal(code, 0, stderr);
    const [head, row] = [stdout.split('\n')[0]!, stdout.split('\n').find((line) => line.startsWith(node))!];
    assert.match(head, /\bCHECKS\b/);
    assert.equal(row.slice(head.indexOf('CHECKS')).split(/\s{2,}/)[0], '2 fail');
    const { nodes } = (await cluster.api('GET', '/v1/nodes')) as { nodes: { name: string; checks: { text: string; fail: number; pass: number } }[] };
    const listed = nodes.find((n) => n.name === node)!;
    assert.equal(listed.checks.text, '2 fail');
    assert.equal(listed.checks.pass, 2);
  });

  test('operators may inspect; a member may not (403)', async () => {
    const session = async (name: string, role: string) => {
      await cluster.api('POST', '/v1/users', { name, password: PASSWORD, role });
      const login = await fetch(`${cluster.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: name, password: PASSWORD }) });
      return ((await login.json()) as { token: string }).token;
    };
    const call = (token: string, method: string, path: string) => fetch(`${cluster.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    const member = await session('mira', 'member');
    const operator = await session('otto', 'operator');
    assert.equal((await call(member, 'POST', `/v1/nodes/${node}/inspect`)).status, 403);
    assert.equal((await call(member, 'GET', `/v1/nodes/${node}/inspection`)).status, 403);
    assert.equal((await call(operator, 'POST', `/v1/nodes/${node}/inspect`)).status, 200);
    assert.equal((await call(operator, 'GET', `/v1/nodes/${node}/inspection`)).status, 200);
    assert.equal((await call(operator, 'POST', '/v1/nodes/no-such-node/inspect')).status, 404);
  });

  test('a bad policy file stops the server, naming the field and its line', async () => {
    const bad = join(cluster.dir, 'bad-policy.yaml');
    writeFileSync(bad, ['disk: { path: /var, warn: 80%, fail: 90% }', 'sysctls:', '  vm.swappiness: "about 10"', 'clockOffset: { warn: soon, fail: 2s }', ''].join('\n'));
    const { code, stderr } = await cluster.cli(['server', '--data-dir', join(cluster.dir, 'refused'), '--port', '0', '--inspect-policy', bad], { timeoutMs: 30_000 });
    assert.notEqual(code, 0);
    assert.match(stderr, /bad-policy\.yaml: sysctls\.vm\.swappiness \(line 3\): expected a comparison such as ">= 1024"/);
    assert.match(stderr, /bad-policy\.yaml: clockOffset\.warn \(line 4\): expected a duration/);
  });
});

describe('inspection policy and judgments', () => {
  test('the default policy parses into numbers; versions compare by number, sysctls by number or text', () => {
    const policy = parseInspectPolicy(DEFAULT_INSPECT_POLICY_YAML, 'default');
    assert.equal(policy.intervalMs, 300_000);
    assert.deepEqual(policy.disk, [{ path: '/var/lib/docker', warnPercent: 80, failPercent: 90 }]);
    assert.deepEqual(policy.clockOffset, { warnMs: 500, failMs: 2000 });
    assert.deepEqual(policy.sysctls['net.core.somaxconn'], { op: '>=', value: '1024' });
    assert.equal(versionAtLeast('6.8.0-45-generic', '4.19'), true);
    assert.equal(versionAtLeast('4.9.337', '4.19'), false, '9 < 19, though "4.9" > "4.19" as text');
    assert.equal(versionAtLeast('20.10.24+dfsg1', '20.10'), true);
    assert.equal(compare('32768 60999', '==', '32768 60999'), true);
    assert.equal(compare('0', '==', '1'), false);
    assert.equal(compare('4096', '>=', '1024'), true);
  });

  test('a sysctl name cannot leave /proc/sys; < and > compare numbers only', () => {
    for (const name of ['../../etc/passwd', 'kernel..pid_max', 'kernel/pid_max', 'pid_max']) {
      assert.throws(() => parseInspectPolicy(`sysctls:\n  "${name}": ">= 1"\n`, 'p'), /sysctls\./, name);
    }
    assert.throws(() => parseInspectPolicy('sysctls:\n  kernel.pid_max: ">= many"\n', 'p'), /compare numbers/);
    assert.throws(() => parseInspectPolicy('disk: { path: /var, warn: 95%, fail: 90% }\n', 'p'), /disk\[0\]\.warn \(line 1\): warn must not be above fail/);
  });
});

test('a periodic run that changes no status is not written again for a while; a change, or an asked run, is', async () => {
  const store = await openStore('sqlite::memory:');
  try {
    const inspections = new InspectionService(store, new EventLog(store), parseInspectPolicy(DEFAULT_INSPECT_POLICY_YAML, 'default'));
    const disk = (value: string, status: 'pass' | 'fail') => [{ check: 'disk:/', status, value, threshold: 'warn 80%, fail 90%', message: '' }] as const;
    const first = await inspections.record('n1', disk('41%', 'pass'), 1_000);
    assert.equal((await inspections.record('n1', disk('42%', 'pass'), 2_000)).at, first.at, 'nothing new: not written');
    assert.equal((await inspections.get('n1'))!.checks['disk:/']!.value, '41%');
    assert.equal((await inspections.record('n1', disk('43%', 'pass'), 3_000, true)).at, 3_000, 'asked for: written');
    assert.equal((await inspections.record('n1', disk('44%', 'pass'), 3_000 + REFRESH_UNCHANGED_MS)).at, 3_000 + REFRESH_UNCHANGED_MS, 'old enough: written');
    const failed = await inspections.record('n1', disk('95%', 'fail'), 3_001 + REFRESH_UNCHANGED_MS);
    assert.deepEqual([failed.at, failed.checks['disk:/']!.status], [3_001 + REFRESH_UNCHANGED_MS, 'fail'], 'a status change: written at once');
  } finally {
    await store.close();
  }
});
