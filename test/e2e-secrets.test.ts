// Team secrets end to end: a server and an agent as separate processes on the real Docker
// Engine, the CLI as a user runs it. An instance sees its secret in env and as a read-only file;
// a new value reaches running instances only through `--roll`; the value is never in the store
// file, the server's or agent's output, or the answers about the app, its releases and events.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { TEST_IMAGE, skipWithoutDocker } from './helpers/env.js';
import type { AppDetailResponse } from '../src/model/api.js';

const run = promisify(execFile);
const skip = await skipWithoutDocker();
const VALUE = `first-${randomBytes(8).toString('hex')}`;
const NEWER = `second-${randomBytes(8).toString('hex')}`;

describe('team secrets on docker instances', { skip }, () => {
  const cluster = new TestCluster();
  const app = `e2e-secrets-${cluster.id}`;
  const node = `node-${cluster.id}`;
  const answers: string[] = [];
  const spec = (team: string, ref: string) => `
app: ${app}
team: ${team}
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: [sleep, "3600"]
    replicas: 2
    resources: { cpu: 0.1, memory: 32Mi }
    stop: { grace: 2s, drain: 0s }
    env:
      PLAIN: visible
      DB_PASSWORD: { secret: ${ref} }
    files:
      - { path: /run/secrets/db-password, secret: ${ref} }
`;
  const api = async (path: string) => {
    const answer = await cluster.api('GET', path);
    answers.push(JSON.stringify(answer));
    return answer;
  };
  const running = async () => ((await api(`/v1/apps/${app}`)) as AppDetailResponse).instances.filter((i) => i.desired === 'running' && i.status?.state === 'running');
  const seenInside = async (id: string) => (await run('docker', ['exec', `gantry-${id}`, 'sh', '-c', 'echo "$DB_PASSWORD"; cat /run/secrets/db-password; echo; stat -c %a /run/secrets/db-password'])).stdout.trim().split('\n');

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '30300-30399' });
    await cluster.api('POST', '/v1/teams', { name: 'shop' });
    await cluster.api('POST', '/v1/teams', { name: 'blog' });
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]);
  });

  test('gantry secret set reads the value from stdin, never argv; an instance sees it in env and as a read-only file', async () => {
    const set = await cluster.cli(['secret', 'set', 'shop/db-password'], { input: `${VALUE}\n` });
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /secret shop\/db-password set \(version 1\)/);
    assert.equal((await cluster.cli(['secret', 'set', 'blog/token'], { input: 'blog-only' })).code, 0);
    const bad = await cluster.cli(['secret', 'set', 'not a ref'], { input: 'x' });
    assert.equal(bad.code, 2);

    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: spec('shop', 'shop/db-password') });
    assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}\n${cluster.output.slice(-30).join('\n')}`);
    const instances = await running();
    assert.equal(instances.length, 2);
    for (const instance of instances) assert.deepEqual(await seenInside(instance.id), [VALUE, VALUE, '400']);
    const write = await run('docker', ['exec', `gantry-${instances[0]!.id}`, 'sh', '-c', 'echo x > /run/secrets/db-password && echo written || echo refused']);
    assert.equal(write.stdout.trim(), 'refused', 'the file is mounted read-only');

    const listed = await cluster.cli(['secret', 'ls', 'shop']);
    assert.match(listed.stdout, new RegExp(`shop/db-password\\s+1\\s.*${app}`));
    assert.ok(!listed.stdout.includes(VALUE));

    const agentDir = join(cluster.dir, 'agents', node);
    assert.equal(statSync(join(agentDir, 'secrets.json')).mode & 0o777, 0o600);
    assert.equal(statSync(join(agentDir, 'files')).mode & 0o777, 0o700);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(agentDir, 'secrets.json'), 'utf8')) as object), ['shop/db-password'], 'the node keeps only what its instances use');
  });

  test("an apply naming another team's secret is refused with the field's path; nothing changes", async () => {
    const refused = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: spec('shop', 'blog/token') });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /entrypoints\.web\.env\.DB_PASSWORD: secret blog\/token belongs to team blog/);
    assert.equal(((await api(`/v1/apps/${app}`)) as AppDetailResponse).app.release, 1);
  });

  test('a new value: set says who uses it and restarts nothing; --roll rolls the app and its new instances see the new value', async () => {
    const before = (await running()).map((i) => i.id).sort();
    const set = await cluster.cli(['secret', 'set', 'shop/db-password'], { input: NEWER });
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, new RegExp(`used by ${app}: running instances keep the value they started with`));
    assert.deepEqual((await running()).map((i) => i.id).sort(), before);
    for (const id of before) assert.equal((await seenInside(id))[0], VALUE);

    const rolled = await cluster.cli(['secret', 'set', 'shop/db-password', '--roll'], { input: NEWER });
    assert.equal(rolled.code, 0, rolled.stderr);
    assert.match(rolled.stdout, new RegExp(`rolling: ${app} \\(release 2\\)`));
    const replaced = await until('every instance replaced by release 2', async () => {
      const now = await running();
      return now.length === 2 && now.every((i) => i.release === 2 && !before.includes(i.id)) ? now : undefined;
    }, 90_000);
    for (const instance of replaced) assert.deepEqual(await seenInside(instance.id), [NEWER, NEWER, '400']);
    const history = await cluster.cli(['history', app]);
    assert.match(history.stdout, /secret shop\/db-password changed \(version 3\)/);
  });

  test('with the server down, an instance whose container went is started again with its secrets from the agent', async () => {
    const [victim] = await running();
    await cluster.stopServer();
    try {
      await run('docker', ['rm', '-f', `gantry-${victim!.id}`]);
      await until('the agent to start the instance again', async () => {
        const { stdout } = await run('docker', ['ps', '--filter', `name=^gantry-${victim!.id}$`, '--format', '{{.State}}']);
        return stdout.trim() === 'running';
      }, 60_000);
      assert.deepEqual(await seenInside(victim!.id), [NEWER, NEWER, '400']);
    } finally {
      await cluster.startServer();
    }
  });

  test('a process instance gets the value in env and as a file in its own directory (GANTRY_FILES)', async () => {
    const proc = `${app}-proc`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], {
      input: `
app: ${proc}
team: shop
entrypoints:
  worker:
    command:
      - /bin/sh
      - -c
      - |
        printf '%s|' "$DB_PASSWORD" > seen; cat "$GANTRY_FILES/etc/app/db" >> seen; stat -c %a "$GANTRY_FILES/etc/app/db" >> seen; exec sleep 3600
    env: { DB_PASSWORD: { secret: shop/db-password } }
    files: [{ path: /etc/app/db, secret: shop/db-password, mode: "0440" }]
`,
    });
    try {
      assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
      const [instance] = ((await api(`/v1/apps/${proc}`)) as AppDetailResponse).instances;
      const seen = join(cluster.dir, 'agents', node, 'process', instance!.id, 'seen');
      const text = await until('the process to say what it sees', () => (existsSync(seen) && readFileSync(seen, 'utf8').includes('\n') ? readFileSync(seen, 'utf8') : undefined));
      assert.equal(text.trim(), `${NEWER}|${NEWER}440`);
    } finally {
      await cluster.cli(['rm', proc, '--timeout', '30s']);
    }
  });

  test('the value is in no answer about the app, its releases or events, no process output, and not in the store file', async () => {
    await api(`/v1/apps/${app}/releases`);
    await api(`/v1/apps/${app}/releases/2`);
    await api(`/v1/apps/${app}/diff?from=1&to=2`);
    await api('/v1/events?limit=1000');
    await api('/v1/teams/shop/secrets');
    await api(`/v1/instances`);
    for (const text of [...answers, ...cluster.output]) {
      for (const secret of [VALUE, NEWER, 'blog-only']) assert.ok(!text.includes(secret), `${secret.slice(0, 6)}… in ${text.slice(0, 200)}`);
    }
    for (const file of ['gantry.db', 'gantry.db-wal']) {
      const path = join(cluster.dir, 'server', file);
      if (!existsSync(path)) continue;
      const bytes = readFileSync(path);
      for (const secret of [VALUE, NEWER, 'blog-only']) assert.equal(bytes.indexOf(secret), -1, `${secret.slice(0, 6)}… in ${file}`);
    }
    const owner = await cluster.cli(['secret', 'get', 'shop/db-password']);
    assert.equal(owner.stdout, NEWER, 'the admin reads it');
  });
});
