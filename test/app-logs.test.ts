// `gantry logs <app>`: three process instances on two agents (one host), their lines merged by
// time and prefixed by instance, following while the app scales up, grep on the agents, and a
// member of another team refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { GANTRY, TestCluster, until } from './helpers/cluster.js';
import type { AppDetailResponse } from '../src/model/api.js';

const PASSWORD = 'correct horse battery staple';

/** `<instance> | tick <n> <ms since epoch>`: each instance prints its own clock, so the merge can be checked against it. */
const TICKER = 'i=0; while :; do i=$((i+1)); echo "tick $i $(date +%s%3N)"; sleep 0.2; done';

describe('logs of an app across instances and nodes', () => {
  const cluster = new TestCluster();
  const app = `logs-${cluster.id}`;
  const tokens: Record<string, string> = {};
  const instances = async () => ((await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse).instances;
  const call = async (who: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${cluster.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${tokens[who] ?? cluster.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, text: await response.text() };
  };

  const noDocker = join(cluster.dir, 'no-docker.sock');
  const nodeA = { name: `logs-a-${cluster.id}`, portRange: '32200-32249', dockerSocket: noDocker };

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent(nodeA);
    await cluster.startAgent({ name: `logs-b-${cluster.id}`, portRange: '32250-32299', dockerSocket: noDocker });
    for (const user of ['alice', 'bob']) {
      assert.equal((await call('admin', 'POST', '/v1/users', { name: user, password: PASSWORD })).status, 201);
      const login = await fetch(`${cluster.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password: PASSWORD }) });
      tokens[user] = ((await login.json()) as { token: string }).token;
    }
    assert.equal((await call('admin', 'POST', '/v1/teams', { name: 'ta', owner: 'alice' })).status, 201);
    assert.equal((await call('admin', 'POST', '/v1/teams', { name: 'tb', owner: 'bob' })).status, 201);
    const spec = { app, team: 'ta', entrypoints: { web: { command: ['sh', '-c', TICKER], replicas: 3, resources: { cpu: 0.01, memory: '16Mi' } } } };
    assert.equal((await call('admin', 'POST', '/v1/apps', spec)).status, 201);
    await until('3 instances running on both nodes', async () => {
      const list = await instances();
      return list.length === 3 && list.every((i) => i.status?.state === 'running') && new Set(list.map((i) => i.node)).size === 2;
    }, 60_000);
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.close();
  });

  const parse = (stdout: string) =>
    stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const match = /^(\S+) \| tick (\d+) (\d+)$/.exec(line);
        assert.ok(match, `a merged line: ${line}`);
        return { instance: match[1]!, n: Number(match[2]), time: Number(match[3]) };
      });

  test('every instance on both nodes, prefixed, merged by time', async () => {
    const ids = (await instances()).map((i) => i.id).sort();
    const lines = await until('5 lines of each instance', async () => {
      const result = await cluster.cli(['logs', app, '--tail', '5']);
      assert.equal(result.code, 0, result.stderr);
      const read = parse(result.stdout);
      return ids.every((id) => read.filter((l) => l.instance === id).length === 5) && read;
    });
    assert.deepEqual([...new Set(lines.map((l) => l.instance))].sort(), ids);
    for (const id of ids) assert.equal(lines.filter((l) => l.instance === id).length, 5, `5 lines of ${id}`);
    // Each instance's own lines in order.
    for (const id of ids) {
      const own = lines.filter((l) => l.instance === id).map((l) => l.n);
      assert.deepEqual(own, [...own].sort((a, b) => a - b));
    }
  });

  test('a plain read is in time order across instances, and --since cuts it, to the line', async () => {
    // The instances print every 200 ms, so lines grouped by instance would go back in time by seconds.
    const lines = await until('30 lines of the app', async () => {
      const result = await cluster.cli(['logs', app]);
      assert.equal(result.code, 0, result.stderr);
      const read = parse(result.stdout);
      return read.length >= 30 && read;
    });
    let switches = 0;
    for (let i = 1; i < lines.length; i++) {
      // A line's clock is read (date) just before the runtime stamps it: a few ms apart, more on a busy machine.
      assert.ok(lines[i]!.time >= lines[i - 1]!.time - 100, `line ${i} (${lines[i]!.instance} at ${lines[i]!.time}) after line ${i - 1} (${lines[i - 1]!.instance} at ${lines[i - 1]!.time})`);
      if (lines[i]!.instance !== lines[i - 1]!.instance) switches++;
    }
    assert.ok(switches >= lines.length / 2, `interleaved: ${switches} switches of instance in ${lines.length} lines`);

    const cut = lines[Math.floor(lines.length / 2)]!.time;
    const since = await cluster.cli(['logs', app, '--since', new Date(cut).toISOString()]);
    assert.equal(since.code, 0, since.stderr);
    const after = parse(since.stdout);
    assert.ok(after.length > 0 && after.length < lines.length + 30, `${after.length} lines since the cut`);
    for (const line of after) assert.ok(line.time >= cut - 100, `${line.instance} tick ${line.n} at ${line.time} is from before ${cut}`);
    // Everything of the first read from well after the cut is there.
    const expected = lines.filter((l) => l.time > cut + 100).map((l) => `${l.instance} ${l.n}`);
    const got = new Set(after.map((l) => `${l.instance} ${l.n}`));
    for (const key of expected) assert.ok(got.has(key), `${key} missing since the cut`);
  });

  test('-f merges by the time lines were written and joins an instance scaled up meanwhile', async () => {
    const before = new Set((await instances()).map((i) => i.id));
    const child = spawn(process.execPath, [...GANTRY, 'logs', app, '-f', '--tail', '0'], { env: { ...process.env, GANTRY_SERVER: cluster.url, GANTRY_TOKEN: cluster.token, GANTRY_CONFIG: join(cluster.dir, 'cli.json') } });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    try {
      await until('followed lines of all 3 instances', () => new Set(parse(stdout).map((l) => l.instance)).size === 3);
      const scaled = await cluster.cli(['scale', app, 'web', '4', '--timeout', '60s']);
      assert.equal(scaled.code, 0, scaled.stdout + scaled.stderr);
      const added = (await instances()).map((i) => i.id).find((id) => !before.has(id));
      assert.ok(added, 'a fourth instance');
      await until(`lines of the new instance ${added}`, () => parse(stdout.slice(0, stdout.lastIndexOf('\n') + 1)).filter((l) => l.instance === added).length >= 3, 30_000);
    } finally {
      child.kill('SIGTERM');
    }
    const lines = parse(stdout.slice(0, stdout.lastIndexOf('\n') + 1));
    // Merged by time: the clock each line carries never goes back by more than the slack of
    // two processes' `date` calls and the runtime's 200 ms polling of the files.
    for (let i = 1; i < lines.length; i++) {
      assert.ok(lines[i]!.time >= lines[i - 1]!.time - 1000, `line ${i} (${lines[i]!.instance} at ${lines[i]!.time}) after line ${i - 1} (${lines[i - 1]!.instance} at ${lines[i - 1]!.time})`);
    }
    await cluster.cli(['scale', app, 'web', '3', '--timeout', '60s']);
  });

  test('-f goes on across a restart of an agent, of the app and of one instance: lines continue, none repeated, none lost', async () => {
    const onA = (await instances()).filter((i) => i.node === nodeA.name).map((i) => i.id);
    assert.ok(onA.length > 0, 'an instance on node a');
    const follow = (target: string) => {
      const child = spawn(process.execPath, [...GANTRY, 'logs', target, '-f', '--tail', '0'], { env: { ...process.env, GANTRY_SERVER: cluster.url, GANTRY_TOKEN: cluster.token, GANTRY_CONFIG: join(cluster.dir, 'cli.json') } });
      const state = { child, stdout: '' };
      child.stdout.on('data', (d) => (state.stdout += d));
      return state;
    };
    const ofApp = follow(app);
    const ofOne = follow(onA[0]!);
    const complete = () => parse(ofApp.stdout.slice(0, ofApp.stdout.lastIndexOf('\n') + 1));
    // `gantry logs <instance>` prints the bare lines: prefixed here to read them alike.
    const completeOne = () => parse(ofOne.stdout.slice(0, ofOne.stdout.lastIndexOf('\n') + 1).replace(/^(?=.)/gm, `${onA[0]} | `));
    try {
      await until('followed lines of node a', () => complete().filter((l) => onA.includes(l.instance)).length >= 2 * onA.length && completeOne().length >= 2);
      await cluster.stopAgent(nodeA.name);
      await new Promise((r) => setTimeout(r, 1500)); // its instances keep writing meanwhile
      await cluster.startAgent(nodeA);
      const back = Date.now();
      await until('lines of node a written after its agent came back', () => complete().some((l) => onA.includes(l.instance) && l.time > back + 500) && completeOne().some((l) => l.time > back + 500), 30_000);
    } finally {
      ofApp.child.kill('SIGTERM');
      ofOne.child.kill('SIGTERM');
    }
    const consecutive = (what: string, ticks: number[]) => {
      for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i], ticks[i - 1]! + 1, `${what}: tick ${ticks[i]} after ${ticks[i - 1]} (${ticks.join(' ')})`);
    };
    for (const id of onA) consecutive(id, complete().filter((l) => l.instance === id).map((l) => l.n));
    consecutive(`gantry logs ${onA[0]}`, completeOne().map((l) => l.n));
  });

  test('--grep is applied on the agents; a bad or catastrophic pattern is a 400 naming grep', async () => {
    const result = await cluster.cli(['logs', app, '--grep', 'tick [0-9]*7 ']);
    assert.equal(result.code, 0, result.stderr);
    const lines = parse(result.stdout);
    assert.ok(lines.length > 0);
    for (const line of lines) assert.match(String(line.n), /7$/);
    for (const bad of ['(', '(a+)+$', '(x|xx)*y']) {
      const refused = await call('admin', 'GET', `/v1/apps/${app}/logs?grep=${encodeURIComponent(bad)}`);
      assert.equal(refused.status, 400, refused.text);
      assert.match(refused.text, /grep/);
    }
    const since = await call('admin', 'GET', `/v1/apps/${app}/logs?since=yesterday`);
    assert.equal(since.status, 400);
    assert.match(since.text, /since/);
  });

  test('a member of the app\'s team reads its logs; a member of another team is refused', async () => {
    const mine = await call('alice', 'GET', `/v1/apps/${app}/logs?tail=1`);
    assert.equal(mine.status, 200, mine.text);
    assert.equal(parse(mine.text).length, (await instances()).length);
    const other = await call('bob', 'GET', `/v1/apps/${app}/logs?tail=1`);
    assert.equal(other.status, 403, other.text);
  });
});
