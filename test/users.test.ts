// People who sign in: users created by an admin, passwords kept only as scrypt hashes, sessions
// that expire, end on logout and with the user, and sign-ins that cannot be guessed at speed.
// A real server over real HTTP, and the CLI as a user runs it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { GANTRY } from './helpers/cluster.js';
import type { GantryEvent } from '../src/model/types.js';

const ADMIN = 'gty_users_test_admin_token';
const PASSWORD = 'correct horse battery staple';

describe('users and sessions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-users-'));
  let server: RunningServer;

  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const login = (user: string, password: string, ttl?: string) => call('POST', '/v1/login', undefined, { user, password, ...(ttl ? { ttl } : {}) });
  const events = async () => (await call('GET', '/v1/events?limit=1000', ADMIN)).body.events as GantryEvent[];
  const cli = (args: string[], input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [...GANTRY, ...args], { env: { ...process.env, GANTRY_SERVER: server.url, GANTRY_TOKEN: '', GANTRY_CONFIG: join(dir, 'cli.json') } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      if (input !== undefined) child.stdin.end(input);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an admin creates users; the password is refused when short and never answered', async () => {
    assert.equal((await call('POST', '/v1/users', ADMIN, { name: 'alice', password: 'short' })).status, 400);
    const created = await call('POST', '/v1/users', ADMIN, { name: 'alice', password: PASSWORD, role: 'admin' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await call('POST', '/v1/users', ADMIN, { name: 'bob', password: PASSWORD })).status, 201);
    assert.equal((await call('POST', '/v1/users', ADMIN, { name: 'bob', password: PASSWORD })).status, 409);
    const listed = JSON.stringify((await call('GET', '/v1/users', ADMIN)).body);
    assert.match(listed, /"alice"/);
    assert.ok(!listed.includes(PASSWORD) && !listed.includes('scrypt$'), listed);
  });

  test('a session works like the user: an admin session may do everything, a member only what is theirs', async () => {
    const admin = await login('alice', PASSWORD);
    assert.equal(admin.status, 200, JSON.stringify(admin.body));
    assert.equal(admin.body.role, 'admin');
    const adminToken = admin.body.token as string;
    assert.equal((await call('GET', '/v1/apps', adminToken)).status, 200);
    assert.deepEqual((await call('GET', '/v1/whoami', adminToken)).body, { name: 'alice', role: 'admin', user: 'alice', teams: [] });

    const member = await login('bob', PASSWORD);
    const memberToken = member.body.token as string;
    assert.equal(member.body.role, 'member');
    assert.deepEqual((await call('GET', '/v1/apps', memberToken)).body, { apps: [] }, 'a member in no team sees no app');
    assert.deepEqual((await call('GET', '/v1/instances', memberToken)).body, { instances: [], unplaced: [] }, 'nor any instance');
    assert.equal((await call('POST', '/v1/apps', memberToken, { app: 'mine', entrypoints: { web: { command: ['sleep', '1'] } } })).status, 403, 'nor may apply one');
    assert.equal((await call('POST', '/v1/users', memberToken, { name: 'eve', password: PASSWORD, role: 'admin' })).status, 403);
    assert.equal((await call('GET', '/v1/whoami', memberToken)).status, 200);
    // Sessions are not API tokens: not listed, not revocable by name.
    const tokens = JSON.stringify((await call('GET', '/v1/tokens', ADMIN)).body);
    assert.ok(!tokens.includes('alice') && !tokens.includes('bob'), tokens);
  });

  test('an operator runs nodes and reads what runs, never app specs, tokens or users; can-i answers from the same table', async () => {
    assert.equal((await call('POST', '/v1/users', ADMIN, { name: 'olga', password: PASSWORD, role: 'operator' })).status, 201);
    const operator = (await login('olga', PASSWORD)).body.token as string;
    for (const path of ['/v1/nodes', '/v1/instances', '/v1/events', '/v1/pools']) assert.equal((await call('GET', path, operator)).status, 200, path);
    assert.equal((await call('POST', '/v1/nodes/n1/cordon', operator)).status, 404, 'past the policy: no such node');
    for (const [method, path] of [['GET', '/v1/apps/shop'], ['GET', '/v1/tokens'], ['GET', '/v1/users'], ['POST', '/v1/apps'], ['GET', '/v1/registries']] as const) {
      const refused = await call(method, path, operator, method === 'POST' ? {} : undefined);
      assert.equal(refused.status, 403, `${method} ${path}`);
      assert.match(String(refused.body.error), /olga \(operator\) may not/);
    }
    const ask = async (token: string, verb: string, resource: string, as?: string) => (await call('GET', `/v1/auth/can-i?verb=${verb}&resource=${encodeURIComponent(resource)}${as ? `&as=${as}` : ''}`, token)).body;
    assert.equal((await ask(operator, 'cordon', 'node/n1')).allowed, true);
    assert.equal((await ask(operator, 'apply', 'app/shop')).allowed, false);
    assert.equal((await ask(ADMIN, 'apply', 'app/shop', 'olga')).allowed, false);
    assert.equal((await ask(ADMIN, 'apply', 'app/shop', 'alice')).allowed, true);
    assert.equal((await call('GET', '/v1/auth/can-i?verb=apply&resource=app/shop&as=alice', operator)).status, 403, 'only admins ask about others');
    assert.equal((await call('GET', '/v1/auth/can-i?verb=fly&resource=app/shop', operator)).status, 400);
  });

  test('logout ends the session; removing a user or changing the password ends all of theirs', async () => {
    const first = (await login('bob', PASSWORD)).body.token as string;
    const second = (await login('bob', PASSWORD)).body.token as string;
    assert.equal((await call('POST', '/v1/logout', first)).status, 200);
    assert.equal((await call('GET', '/v1/whoami', first)).status, 401);
    assert.equal((await call('GET', '/v1/whoami', second)).status, 200);
    assert.equal((await call('POST', '/v1/logout', ADMIN)).status, 400, 'an API token is not a session');
    assert.equal((await call('PATCH', '/v1/users/bob', ADMIN, { password: `${PASSWORD}!` })).status, 200);
    assert.equal((await call('GET', '/v1/whoami', second)).status, 401);
    assert.equal((await login('bob', PASSWORD)).status, 401, 'the old password');
    const third = (await login('bob', `${PASSWORD}!`)).body.token as string;
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'bobs', owner: 'bob' })).status, 201);
    assert.equal((await call('DELETE', '/v1/users/bob', ADMIN)).status, 200);
    const team = (await call('GET', '/v1/teams/bobs', ADMIN)).body.team as { members: object };
    assert.deepEqual(team.members, {}, 'a removed user leaves their teams (a new bob does not inherit them)');
    assert.equal((await call('GET', '/v1/whoami', third)).status, 401);
    assert.equal((await login('bob', `${PASSWORD}!`)).status, 401);
  });

  test('an unknown user and a wrong password get the same answer; too many failures are refused for a while; all are events without the password', async () => {
    const unknown = await login('nobody', 'whatever-it-is');
    const wrong = await login('alice', 'not-the-password');
    assert.deepEqual([unknown.status, wrong.status], [401, 401]);
    assert.equal(unknown.body.error, wrong.body.error);
    for (let i = 0; i < 4; i++) await login('alice', `wrong-${i}`);
    const refused = await login('alice', PASSWORD);
    assert.equal(refused.status, 429, 'the right password too, while the user is locked');
    const kinds = (await events()).map((e) => e.type);
    assert.ok(kinds.includes('auth.login_failed') && kinds.includes('auth.login_refused') && kinds.includes('auth.login'), kinds.join(', '));
    assert.ok(!JSON.stringify(await events()).includes(PASSWORD));
  });

  test('bad sign-in bodies are 400s naming the field; a huge one is refused unread', async () => {
    const bad = await call('POST', '/v1/login', undefined, { user: 'carol\nsigned in as root', password: 'x' });
    assert.equal(bad.status, 400, 'a name that would forge an event line');
    assert.match(JSON.stringify(bad.body), /user/);
    // Any other name is just unknown (the company directory escapes it; the store never sees it).
    assert.equal((await call('POST', '/v1/login', undefined, { user: '../etc', password: 'x' })).status, 401);
    const huge = await fetch(`${server.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'carol', password: 'x'.repeat(100_000) }) });
    assert.equal(huge.status, 413);
  });

  test('a session expires', async () => {
    assert.equal((await call('POST', '/v1/users', ADMIN, { name: 'dave', password: PASSWORD })).status, 201);
    const short = await login('dave', PASSWORD, '1m');
    assert.equal(short.status, 200);
    assert.ok((short.body.expiresAt as number) - Date.now() <= 60_000);
    assert.equal((await login('dave', PASSWORD, '1s')).status, 400, 'below a minute');
  });

  test('the store holds scrypt hashes, never a password; the CLI signs in, saves the session 0600, and signs out', async () => {
    const db = readdirSync(join(dir, 'server')).filter((f) => f.startsWith('gantry.db')).map((f) => readFileSync(join(dir, 'server', f)).toString('latin1')).join('');
    assert.ok(!db.includes(PASSWORD) && db.includes('scrypt$'));

    assert.equal((await call('POST', '/v1/users', ADMIN, { name: 'erin', password: PASSWORD, role: 'admin' })).status, 201);
    const signedIn = await cli(['login', '-u', 'erin', '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(signedIn.code, 0, signedIn.stderr);
    assert.match(signedIn.stdout, /signed in to .* as erin \(admin\)/);
    assert.equal(statSync(join(dir, 'cli.json')).mode & 0o777, 0o600);
    const me = await cli(['whoami']);
    assert.match(me.stdout, /^erin \(admin, signed in\)/);
    const ls = await cli(['user', 'ls']);
    assert.match(ls.stdout, /erin\s+admin/);
    const no = await cli(['auth', 'can-i', 'apply', 'app/shop', '--as', 'olga']);
    assert.equal(no.code, 1);
    assert.match(no.stdout, /^no: olga \(operator\) may not write app shop/);
    assert.equal((await cli(['auth', 'can-i', 'drain', 'node/n1', '--as', 'olga'])).stdout.trim(), 'yes');
    const out = await cli(['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(!('token' in JSON.parse(readFileSync(join(dir, 'cli.json'), 'utf8'))), 'the saved token is dropped');
    assert.equal((await cli(['whoami'])).code, 1);
  });

  test('one address guessing at many users is refused for a while too (the last test: it locks this address)', async () => {
    for (let i = 0; i < 20; i++) await login(`guess-${i}`, 'whatever-it-is');
    assert.equal((await login('dave', PASSWORD)).status, 429);
  });
});
