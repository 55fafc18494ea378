// Team configs end to end on the real Docker Engine, a server and an agent as separate
// processes, the CLI as a user runs it: a config mounted as a file is rewritten in place and the
// instance gets SIGHUP (a busybox shell's trap proves it) without a restart; a key-value config
// used as env rolls the instances onto the new values; history, diff and rollback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { TEST_IMAGE, skipWithoutDocker } from './helpers/env.js';
import type { AppDetailResponse } from '../src/model/api.js';

const run = promisify(execFile);
const skip = await skipWithoutDocker();

describe('team configs on docker instances', { skip }, () => {
  const cluster = new TestCluster();
  const hup = `e2e-cfg-hup-${cluster.id}`;
  const envApp = `e2e-cfg-env-${cluster.id}`;
  const node = `node-${cluster.id}`;

  const running = async (app: string) => ((await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse).instances.filter((i) => i.desired === 'running' && i.status?.state === 'running');
  const inside = async (id: string, script: string) => (await run('docker', ['exec', `gantry-${id}`, 'sh', '-c', script])).stdout;
  const apply = async (yaml: string) => {
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: yaml });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}\n${cluster.output.slice(-20).join('\n')}`);
  };

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '30400-30499' });
    await cluster.api('POST', '/v1/teams', { name: 'shop' });
  });

  after(async () => {
    for (const app of [hup, envApp]) await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    for (const app of [hup, envApp]) for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]);
  });

  test('a file config changed in place: the instance gets SIGHUP and reads the new file, without a restart', async () => {
    const set = await cluster.cli(['config', 'set', 'shop/app-conf', '--note', 'first'], { input: 'level=info\n' });
    assert.equal(set.code, 0, set.stderr);
    await apply(`
app: ${hup}
team: shop
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "trap 'cat /etc/app/app.conf > /tmp/reloaded' HUP; while true; do sleep 1 & wait $!; done"]
    stop: { grace: 2s, drain: 0s }
    files:
      - { path: /etc/app/app.conf, config: shop/app-conf, mode: "0444" }
    onConfigChange: { signal: SIGHUP }
`);
    const [before] = await running(hup);
    assert.equal(await inside(before!.id, 'cat /etc/app/app.conf'), 'level=info\n');
    const release = ((await cluster.api('GET', `/v1/apps/${hup}`)) as AppDetailResponse).app.release;

    const changed = await cluster.cli(['config', 'set', 'shop/app-conf'], { input: 'level=debug\n' });
    assert.equal(changed.code, 0, changed.stderr);
    assert.doesNotMatch(changed.stdout, /rolling/);
    const reloaded = await until('the trap to write the new file', async () => {
      const out = await inside(before!.id, 'cat /tmp/reloaded 2>/dev/null || true');
      return out.includes('level=debug') ? out : undefined;
    }, 30_000);
    assert.equal(reloaded, 'level=debug\n');
    const [after] = await running(hup);
    assert.equal(after!.id, before!.id);
    assert.equal(after!.status?.restarts, 0, 'not restarted');
    assert.equal(((await cluster.api('GET', `/v1/apps/${hup}`)) as AppDetailResponse).app.release, release, 'no new release');
    const configs = JSON.parse(readFileSync(join(cluster.dir, 'agents', node, 'configs.json'), 'utf8')) as Record<string, { version: number; text: string }>;
    assert.deepEqual(configs['shop/app-conf'], { version: 2, text: 'level=debug\n' }, 'the agent keeps the last version it got');
  });

  test('history, diff and rollback of a config; rolling back reloads in place too', async () => {
    const history = await cluster.cli(['config', 'history', 'shop/app-conf']);
    assert.match(history.stdout, /^1\s.*first$/m);
    assert.match(history.stdout, /^2\s/m);
    const diff = await cluster.cli(['config', 'diff', 'shop/app-conf', '--from', '1']);
    assert.match(diff.stdout, /~ line 1: "level=info" → "level=debug"/);
    const back = await cluster.cli(['config', 'rollback', 'shop/app-conf', '1']);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /back to version 1's content as version 3/);
    const [instance] = await running(hup);
    await until('the rolled back file to be read', async () => (await inside(instance!.id, 'cat /tmp/reloaded')).includes('level=info'), 30_000);
    assert.equal((await cluster.cli(['config', 'get', 'shop/app-conf', '--at', '2'])).stdout, 'level=debug\n');
  });

  test('a process instance: the file under GANTRY_FILES is rewritten and the process gets SIGHUP', async () => {
    const proc = `${hup}-proc`;
    assert.equal((await cluster.cli(['config', 'set', 'shop/proc-conf'], { input: 'one\n' })).code, 0);
    await apply(`
app: ${proc}
team: shop
entrypoints:
  worker:
    command: ["/bin/sh", "-c", "trap 'cat \\"$GANTRY_FILES/etc/worker.conf\\" > reloaded' HUP; while true; do sleep 1 & wait $!; done"]
    stop: { grace: 2s, drain: 0s }
    files: [{ path: /etc/worker.conf, config: shop/proc-conf }]
    onConfigChange: { signal: SIGHUP }
`);
    try {
      const [instance] = await running(proc);
      assert.equal((await cluster.cli(['config', 'set', 'shop/proc-conf'], { input: 'two\n' })).code, 0);
      const reloaded = join(cluster.dir, 'agents', node, 'process', instance!.id, 'reloaded');
      await until('the trap to read the new file', () => existsSync(reloaded) && readFileSync(reloaded, 'utf8') === 'two\n', 30_000);
      const [after] = await running(proc);
      assert.deepEqual([after!.id, after!.status?.restarts], [instance!.id, 0], 'the same process, not restarted');
    } finally {
      await cluster.cli(['rm', proc, '--timeout', '30s']);
    }
  });

  test('onConfigChange hook: the file is rewritten, then the hook is POSTed on the instance\'s port', async () => {
    const hooked = `${hup}-hook`;
    assert.equal((await cluster.cli(['config', 'set', 'shop/hook-conf'], { input: 'a\n' })).code, 0);
    // busybox httpd runs /cgi-bin/reload for the hook: it copies the file it sees.
    const cgi = ['#!/bin/sh', 'cat /etc/hook.conf > /tmp/hooked', 'echo Content-Type: text/plain', 'echo', 'echo ok'];
    const script = `mkdir -p /tmp/w/cgi-bin && printf '%s\\n' ${cgi.map((line) => `'${line}'`).join(' ')} > /tmp/w/cgi-bin/reload && chmod +x /tmp/w/cgi-bin/reload && exec httpd -f -p 8080 -h /tmp/w`;
    await apply(`
app: ${hooked}
team: shop
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", ${JSON.stringify(script)}]
    ports: [{ name: http, container: 8080 }]
    stop: { grace: 2s, drain: 0s }
    files: [{ path: /etc/hook.conf, config: shop/hook-conf, mode: "0444" }]
    onConfigChange: { hook: { port: http, path: /cgi-bin/reload } }
`);
    try {
      const [instance] = await running(hooked);
      assert.equal((await cluster.cli(['config', 'set', 'shop/hook-conf'], { input: 'b\n' })).code, 0);
      await until('the hook to copy the new file', async () => (await inside(instance!.id, 'cat /tmp/hooked 2>/dev/null || true')) === 'b\n', 30_000);
    } finally {
      await cluster.cli(['rm', hooked, '--timeout', '30s']);
    }
  });

  test('a key-value config used as env: a new version rolls the instances onto it', async () => {
    assert.equal((await cluster.cli(['config', 'set', 'shop/app-env', '--set', 'MODE=blue', '--set', 'LIMIT=10'])).code, 0);
    await apply(`
app: ${envApp}
team: shop
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: [sleep, "3600"]
    replicas: 2
    stop: { grace: 2s, drain: 0s }
    env: { LIMIT: "20" }
    envFrom: [{ config: shop/app-env }]
`);
    const first = await running(envApp);
    for (const i of first) assert.equal(await inside(i.id, 'echo "$MODE $LIMIT"'), 'blue 20\n', "the entry's own env wins");
    const set = await cluster.cli(['config', 'set', 'shop/app-env', '--set', 'MODE=green', '--set', 'LIMIT=10']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, new RegExp(`rolling: ${envApp} \\(release 2\\)`));
    const replaced = await until('both instances replaced by release 2', async () => {
      const now = await running(envApp);
      return now.length === 2 && now.every((i) => i.release === 2 && !first.some((f) => f.id === i.id)) ? now : undefined;
    }, 90_000);
    for (const i of replaced) assert.equal(await inside(i.id, 'echo "$MODE"'), 'green\n');
    const history = await cluster.cli(['history', envApp]);
    assert.match(history.stdout, /config shop\/app-env changed \(version 2\)/);
  });

  test('while the server is down, an instance started afresh gets the last config version the agent received', async () => {
    const [victim] = await running(envApp);
    await cluster.stopServer();
    try {
      await run('docker', ['rm', '-f', `gantry-${victim!.id}`]);
      const mode = await until('a new container of the instance to run', async () => {
        try {
          return await inside(victim!.id, 'echo "$MODE"');
        } catch {
          return undefined; // not there yet
        }
      }, 60_000);
      assert.equal(mode, 'green\n');
    } finally {
      await cluster.startServer();
    }
  });

  test('bad input: a config of another kind, a missing one, or a foreign team is refused naming the field', async () => {
    const wrongKind = await cluster.cli(['apply', '-f', '-'], { input: `app: ${envApp}-x\nteam: shop\nentrypoints:\n  web:\n    image: ${TEST_IMAGE}\n    envFrom: [{ config: shop/app-conf }]\n` });
    assert.equal(wrongKind.code, 1);
    assert.match(wrongKind.stderr, /entrypoints\.web\.envFrom\[0\]\.config: config shop\/app-conf holds a file; envFrom needs key-values/);
    const both = await cluster.cli(['config', 'set', 'shop/x', '--from-file', '/etc/hostname', '--set', 'A=1']);
    assert.equal(both.code, 2);
    const badKey = await cluster.cli(['config', 'set', 'shop/x', '--set', '1A=1']);
    assert.equal(badKey.code, 2);
    assert.ok(!existsSync(join(cluster.dir, 'nothing')));
  });
});
