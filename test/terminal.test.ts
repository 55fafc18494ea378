// Terminals into instances: a real server, a real agent (process runtime and Docker), a real
// WebSocket client. What people type reaches a shell in the instance and what it prints comes
// back; who may not is refused before the upgrade; a hostile client costs only its own session.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import Docker from 'dockerode';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { jsonCaller, rawRequest, signedInUsers } from './helpers/api.js';
import { TEST_IMAGE, skipWithoutDocker } from './helpers/env.js';
import type { AppDetailResponse } from '../src/model/api.js';

const PASSWORD = 'terminal test password';
const skipDocker = await skipWithoutDocker();

interface Session {
  status: number;
  /** Everything printed so far. */
  output(): string;
  send(message: unknown): void;
  sendRaw(data: string | Buffer): void;
  /** Resolves with the terminal's last message (exit or error) and the close code. */
  ended: Promise<{ last?: Record<string, unknown>; code: number }>;
  /** Waits until a printed line (without its \r\n) satisfies `test`. */
  line(test: RegExp | string, timeoutMs?: number): Promise<string>;
  close(): void;
}

/** Printed lines, each without the shell's prompt in front (it may come before output when input was typed ahead). */
function lines(printed: string): string[] {
  return printed.split(/\r?\n/).map((l) => l.replace(/^(?:[#$] )+/, ''));
}

describe('terminals into instances', () => {
  const cluster = new TestCluster();
  const call = jsonCaller(() => cluster.url);
  const node = `term-${cluster.id}`;
  let tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  /** Opens GET /v1/instances/:id/exec; `status` is 101 when upgraded, else the HTTP answer's. */
  const open = (id: string, token: string | undefined, query = '', headers: Record<string, string> = {}): Promise<Session> =>
    new Promise((resolve, reject) => {
      const socket = new WebSocket(`${cluster.url.replace('http', 'ws')}/v1/instances/${id}/exec${query}`, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });
      let printed = '';
      let last: Record<string, unknown> | undefined;
      const ended = new Promise<{ last?: Record<string, unknown>; code: number }>((done) => socket.on('close', (code) => done({ last, code })));
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as Record<string, unknown>;
        if (message.type === 'output') printed += String(message.data);
        else last = message;
      });
      const session: Session = {
        status: 101,
        output: () => printed,
        send: (message) => socket.send(JSON.stringify(message)),
        sendRaw: (data) => socket.send(data),
        ended,
        line: (want, timeoutMs = 15_000) =>
          until(`a line ${want} in the terminal (printed so far: ${JSON.stringify(printed.slice(-400))})`, () => lines(printed).find((l) => (typeof want === 'string' ? l === want : want.test(l))), timeoutMs, 50),
        close: () => socket.close(),
      };
      socket.on('open', () => resolve(session));
      socket.on('unexpected-response', (_req, response) => {
        let body = '';
        response.on('data', (d: Buffer) => (body += d));
        response.on('end', () => resolve({ ...session, status: response.statusCode ?? 0, output: () => body }));
      });
      socket.on('error', (err) => (err.message.includes('Unexpected server response') ? undefined : reject(err)));
    });

  const deploy = async (app: string, team: string, entry: object) => {
    await cluster.api('POST', '/v1/apps', { app, team, entrypoints: { main: { replicas: 1, resources: { cpu: 0.1, memory: '32Mi' }, restart: 'always', ...entry } } });
    return until(`app ${app} to run`, async () => {
      const { instances } = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
      return instances[0]?.status?.state === 'running' ? instances[0].id : undefined;
    }, 60_000);
  };

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '31300-31399' });
    tokens = await signedInUsers(call, cluster.token, ['alice', 'dev', 'vera', 'olga', 'bob'], PASSWORD, { olga: 'operator' });
    assert.equal((await call('POST', '/v1/teams', cluster.token, { name: 'a', owner: 'alice' })).status, 201);
    assert.equal((await call('POST', '/v1/teams', cluster.token, { name: 'b', owner: 'bob' })).status, 201);
    assert.equal((await call('PUT', '/v1/teams/a/members/dev', cluster.token, { role: 'developer' })).status, 200);
    assert.equal((await call('PUT', '/v1/teams/a/members/vera', cluster.token, { role: 'viewer' })).status, 200);
    ids.proc = await deploy(`tproc-${cluster.id}`, 'a', { command: ['sleep', '3600'] });
    ids.b = await deploy(`tb-${cluster.id}`, 'b', { command: ['sleep', '3600'] });
    if (!skipDocker) ids.dock = await deploy(`tdock-${cluster.id}`, 'a', { image: TEST_IMAGE, command: ['sleep', '3600'] });
  });
  after(async () => {
    await cluster.close();
    // The agent is gone by now (a test stops it); its container would outlive the test otherwise.
    if (!skipDocker) for (const { id } of await dockerContainers(`tdock-${cluster.id}`)) await new Docker().getContainer(id).remove({ force: true });
  });

  test('echo hi in a process instance prints hi, in the instance\'s directory, and exit ends the session with its code', async () => {
    const t = await open(ids.proc!, tokens.dev);
    assert.equal(t.status, 101, t.output());
    t.send({ type: 'input', data: 'echo hi\n' });
    await t.line('hi');
    t.send({ type: 'input', data: 'echo "$GANTRY_INSTANCE"; exit 3\n' });
    await t.line(ids.proc!);
    const { last, code } = await t.ended;
    assert.deepEqual(last, { type: 'exit', code: 3 });
    assert.equal(code, 1000);
  });

  test('echo hi in a Docker instance prints hi', { skip: skipDocker }, async () => {
    const t = await open(ids.dock!, tokens.alice);
    assert.equal(t.status, 101, t.output());
    t.send({ type: 'input', data: 'echo hi; hostname\n' });
    await t.line('hi');
    t.send({ type: 'input', data: 'exit\n' });
    assert.deepEqual((await t.ended).last, { type: 'exit', code: 0 });
  });

  test('a Docker terminal closed by its client leaves no shell running in the container', { skip: skipDocker }, async () => {
    const [container] = await dockerContainers(`tdock-${cluster.id}`);
    const shells = async () => ((await new Docker().getContainer(container!.id).top()) as { Processes: string[][] }).Processes.filter((p) => /^(\/bin\/)?sh$/.test(p.at(-1) ?? '')).length;
    const t = await open(ids.dock!, tokens.alice);
    t.send({ type: 'input', data: 'echo opened\n' });
    await t.line('opened');
    assert.equal(await shells(), 1);
    t.close();
    await until('the shell to be gone', async () => (await shells()) === 0, 10_000);
  });

  for (const kind of ['proc', 'dock'] as const) {
    test(`resize changes stty size (${kind === 'proc' ? 'process' : 'Docker'})`, { skip: kind === 'dock' && skipDocker }, async () => {
      const t = await open(ids[kind]!, tokens.alice, '?cols=100&rows=30');
      assert.equal(t.status, 101, t.output());
      t.send({ type: 'input', data: 'stty size\n' });
      await t.line('30 100');
      t.send({ type: 'resize', cols: 132, rows: 43 });
      t.send({ type: 'input', data: 'stty size\n' });
      await t.line('43 132');
      t.close();
      assert.equal((await t.ended).code, 1005);
    });
  }

  test('viewers, operators, other teams and no token are refused before the upgrade', async () => {
    assert.equal((await open(ids.proc!, tokens.vera)).status, 403, 'a viewer of the team');
    assert.equal((await open(ids.proc!, tokens.olga)).status, 403, 'an operator');
    const other = await open(ids.proc!, tokens.bob);
    assert.equal(other.status, 403, "the owner of team b, into team a's instance");
    assert.match(other.output(), /belongs to team a/);
    assert.equal((await open(ids.proc!, undefined)).status, 401);
    const own = await open(ids.b!, tokens.bob);
    assert.equal(own.status, 101, "bob's own team's instance");
    own.close();
  });

  test('bad ids and sizes are 400s naming the field; an unknown instance is a 404', async () => {
    assert.equal((await open('nope-main-00000000', cluster.token)).status, 404);
    assert.equal((await open('nope-main-00000000', tokens.alice)).status, 403, 'a member learns nothing of what is not theirs');
    const zero = await open(ids.proc!, tokens.alice, '?cols=0');
    assert.equal(zero.status, 400);
    assert.match(zero.output(), /cols/);
    assert.equal((await open(ids.proc!, tokens.alice, '?rows=100000')).status, 400);
    assert.equal((await open(ids.proc!, tokens.alice, '?command=%5B1%5D')).status, 400);
    for (const path of ['/v1/instances/..%2f..%2fetc/exec', '/v1/instances/../../etc/exec', `/v1/instances/${'a'.repeat(300)}/exec`]) {
      const answer = await rawRequest(cluster.port, 'GET', path, { authorization: `Bearer ${cluster.token}` });
      assert.ok([400, 404].includes(answer.status), `${path}: ${answer.status} ${answer.body}`);
    }
  });

  test('a hostile client loses only its session: bad resize, huge frame, binary, garbage, a flood', async () => {
    const cases: [string, (t: Session) => void, RegExp][] = [
      ['resize to 0', (t) => t.send({ type: 'resize', cols: 0, rows: 24 }), /cols/],
      ['resize to 100000', (t) => t.send({ type: 'resize', cols: 80, rows: 100_000 }), /rows/],
      ['a huge input', (t) => t.send({ type: 'input', data: 'x'.repeat(70_000) }), /data/],
      ['a huge frame', (t) => t.sendRaw('x'.repeat(500_000)), /at most/],
      ['a binary frame', (t) => t.sendRaw(Buffer.from([1, 2, 3])), /JSON text/],
      ['garbage', (t) => t.sendRaw('{"type":"input"'), /JSON/],
      ['an unknown type', (t) => t.send({ type: 'exec', data: 'rm -rf /' }), /invalid/],
      ['a flood', (t) => { for (let i = 0; i < 3000; i++) t.send({ type: 'input', data: ':' }); }, /too much input/],
    ];
    for (const [what, attack, why] of cases) {
      const t = await open(ids.proc!, tokens.alice);
      assert.equal(t.status, 101, what);
      attack(t);
      const { last, code } = await t.ended;
      assert.equal(last?.type, 'error', `${what}: ${JSON.stringify(last)}`);
      assert.match(String(last?.message), why, what);
      assert.ok(code === 1008 || code === 1009, `${what}: close code ${code}`);
    }
    // The server and the agent are fine: a new terminal works.
    const t = await open(ids.proc!, tokens.alice);
    t.send({ type: 'input', data: 'echo still here\n' });
    await t.line('still here');
    t.close();
  });

  test('each session is audited: who, which instance, when, bytes in and out', async () => {
    const { entries } = (await cluster.api('GET', '/v1/audit?user=dev')) as { entries: { route: string; target: Record<string, string>; summary?: string; team?: string; ms: number }[] };
    const terminal = entries.filter((e) => e.route === '/v1/instances/:id/exec');
    assert.ok(terminal.some((e) => e.summary === `terminal opened in ${ids.proc}`), JSON.stringify(terminal));
    const closed = terminal.find((e) => /exited with code 3/.test(e.summary ?? ''));
    assert.ok(closed, JSON.stringify(terminal));
    assert.match(closed.summary!, /\d+ bytes in, \d+ bytes out/);
    assert.equal(closed.target.id, ids.proc);
    assert.equal(closed.team, 'a');
  });

  test('too many terminals for one caller: a 429', async () => {
    const open8 = await Promise.all(Array.from({ length: 8 }, () => open(ids.proc!, tokens.dev)));
    assert.ok(open8.every((t) => t.status === 101));
    assert.equal((await open(ids.proc!, tokens.dev)).status, 429);
    for (const t of open8) t.close();
    await Promise.all(open8.map((t) => t.ended));
    await until('room again', async () => (await open(ids.proc!, tokens.dev)).status === 101 || undefined, 10_000);
  });

  test('a changed password ends the user\'s terminals with their sessions', async () => {
    const t = await open(ids.proc!, tokens.dev);
    assert.equal(t.status, 101);
    assert.equal((await call('PATCH', '/v1/users/dev', cluster.token, { password: `${PASSWORD} changed` })).status, 200);
    assert.deepEqual((await t.ended).last, { type: 'error', message: 'the password or role of dev changed' });
    assert.equal((await open(ids.proc!, tokens.dev)).status, 401, 'the session itself ended too');
  });

  test('a cookie session\'s terminal needs its own Origin, and ends when the session signs out', async () => {
    const login = await fetch(`${cluster.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', password: PASSWORD, session: 'cookie' }) });
    const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
    const { csrf } = (await login.json()) as { csrf: string };
    assert.equal((await open(ids.proc!, undefined, '', { cookie, origin: 'http://evil.example' })).status, 403);
    const t = await open(ids.proc!, undefined, '', { cookie, origin: cluster.url });
    assert.equal(t.status, 101, t.output());
    t.send({ type: 'input', data: 'echo cookie\n' });
    await t.line('cookie');
    const out = await fetch(`${cluster.url}/v1/logout`, { method: 'POST', headers: { cookie, 'x-gantry-csrf': csrf } });
    assert.equal(out.status, 200);
    const { last } = await t.ended;
    assert.deepEqual(last, { type: 'error', message: 'signed out' });
  });

  test('gantry exec runs a command (its exit code is the CLI\'s), pipes stdin into a shell, and is refused to a viewer', async () => {
    const hi = await cluster.cli(['exec', ids.proc!, '--', 'echo', 'hi']);
    assert.equal(hi.code, 0, hi.stderr);
    assert.equal(hi.stdout, 'hi\n');
    assert.equal((await cluster.cli(['exec', ids.proc!, '--', 'sh', '-c', 'exit 7'])).code, 7);
    const piped = await cluster.cli(['exec', ids.proc!], { input: 'echo piped-$((6*7))\nexit 5\n' });
    assert.equal(piped.code, 5, piped.stderr);
    assert.ok(lines(piped.stdout).includes('piped-42'), piped.stdout);
    const refused = await cluster.cli(['exec', ids.proc!, '--', 'id'], { env: { GANTRY_TOKEN: tokens.vera! } });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /vera \(member\) may not write instance/);
  });

  test('removing the instance\'s app ends its terminals; so does its agent going away', async () => {
    const t = await open(ids.b!, tokens.bob);
    assert.equal(t.status, 101);
    t.send({ type: 'input', data: 'echo before\n' });
    await t.line('before');
    assert.ok([200, 202].includes((await call('DELETE', `/v1/apps/tb-${cluster.id}`, tokens.bob)).status));
    const removed = await t.ended;
    assert.equal(removed.last?.type, 'error');
    assert.match(String(removed.last?.message), /removed|exited|ended/);

    const u = await open(ids.proc!, tokens.alice);
    assert.equal(u.status, 101);
    await cluster.stopAgent(node);
    const gone = await u.ended;
    assert.match(String(gone.last?.message), /disconnected/);
  });
});
