// Personal tokens act as their user, narrowed by a scope; robot tokens act in their team only,
// as developer or viewer, narrowed by a scope; both may expire, are made from a sign-in session
// only (a token cannot mint a stronger one) and stop at once when revoked. A real server over HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { jsonCaller, runCli, signedInUsers } from './helpers/api.js';

const ADMIN = 'gty_scoped_tokens_admin';
const PASSWORD = 'scoped tokens password';

describe('personal and robot tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-scoped-'));
  let server: RunningServer;
  const sessions: Record<string, string> = {};
  const api = jsonCaller(() => server.url);
  const call = (token: string, method: string, path: string, body?: unknown) => api(method, path, token, body);
  const app = (name: string, team: string, replicas = 1) => ({ app: name, team, entrypoints: { web: { command: ['sleep', '3600'], replicas } } });

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    Object.assign(sessions, await signedInUsers(api, ADMIN, ['alice', 'bob'], PASSWORD));
    assert.equal((await call(ADMIN, 'POST', '/v1/teams', { name: 'shop', owner: 'alice' })).status, 201);
    assert.equal((await call(ADMIN, 'POST', '/v1/teams', { name: 'books', owner: 'bob' })).status, 201);
    assert.equal((await call(ADMIN, 'POST', '/v1/apps', app('cart', 'shop'))).status, 201);
    assert.equal((await call(ADMIN, 'POST', '/v1/apps', app('shelf', 'books'))).status, 201);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a personal token acts as its user, no further than its scope', async () => {
    const made = await call(sessions.alice!, 'POST', '/v1/me/tokens', { name: 'laptop', scope: ['read'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.deepEqual([made.body.name, made.body.scope], ['laptop', ['*:read']]);
    const reader = made.body.token as string;
    assert.equal((await call(reader, 'GET', '/v1/apps/cart')).status, 200);
    assert.equal((await call(reader, 'GET', '/v1/apps/shelf')).status, 403, 'no more than alice herself');
    const scale = await call(reader, 'POST', '/v1/apps/cart/entries/web/scale', { replicas: 2 });
    assert.equal(scale.status, 403);
    assert.match(String(scale.body.error), /alice\/laptop's token may not write app cart: its scope is \*:read/);
    assert.equal((await call(reader, 'POST', '/v1/apps', app('cart', 'shop', 3))).status, 403, 'nor apply');
    assert.equal((await call(reader, 'POST', '/v1/me/tokens', { name: 'stronger', scope: ['all'] })).status, 403, 'a token does not mint tokens');
    const invite = await call(reader, 'POST', '/v1/invitations', { team: 'shop', role: 'developer' });
    assert.equal(invite.status, 403, 'nor invites people, which alice herself may');
    assert.match(String(invite.body.error), /may not write users: its scope is \*:read/);
    assert.equal((await call(sessions.alice!, 'POST', '/v1/invitations', { team: 'shop', role: 'developer' })).status, 201, 'her session may');
    assert.deepEqual((await call(reader, 'GET', '/v1/whoami')).body.user, 'alice');

    const deployer = (await call(sessions.alice!, 'POST', '/v1/me/tokens', { name: 'deploy', scope: ['app:write', 'app:read'], expiresIn: '1h' })).body;
    assert.ok(typeof deployer.expiresAt === 'number' && deployer.expiresAt > Date.now());
    assert.equal((await call(deployer.token as string, 'POST', '/v1/apps/cart/entries/web/scale', { replicas: 2 })).status, 200);
    assert.equal((await call(deployer.token as string, 'GET', '/v1/apps/cart/releases')).status, 403, 'releases are not in its scope');
    const listed = (await call(sessions.alice!, 'GET', '/v1/me/tokens')).body.tokens as { name: string }[];
    assert.deepEqual(listed.map((t) => t.name), ['deploy', 'laptop']);
    assert.ok(!JSON.stringify(listed).includes(reader), 'never the token');
    assert.deepEqual(((await call(sessions.bob!, 'GET', '/v1/me/tokens')).body.tokens as unknown[]), [], "bob sees none of alice's");
    assert.equal((await call(sessions.alice!, 'DELETE', '/v1/me/tokens/laptop')).status, 200);
    assert.equal((await call(reader, 'GET', '/v1/apps/cart')).status, 401, 'revoked: gone at once');
    assert.equal((await call(sessions.bob!, 'DELETE', '/v1/me/tokens/deploy')).status, 404, "bob cannot revoke alice's");
  });

  test('a robot token acts in its team only, with its role and scope; only owners make them, from a session', async () => {
    assert.equal((await call(sessions.bob!, 'POST', '/v1/teams/shop/tokens', { name: 'ci', role: 'developer', scope: ['write'] })).status, 403, 'bob owns no shop');
    const made = await call(sessions.alice!, 'POST', '/v1/teams/shop/tokens', { name: 'ci', role: 'developer', scope: ['write'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const ci = made.body.token as string;
    assert.equal((await call(ci, 'POST', '/v1/apps', app('cart', 'shop', 2))).status, 200, 'applies the team\'s app');
    assert.equal((await call(ci, 'POST', '/v1/apps', app('cart-worker', 'shop'))).status, 201, 'and makes new ones in the team');
    assert.equal((await call(ci, 'POST', '/v1/apps', app('shelf', 'books'))).status, 403, 'never another team\'s');
    assert.equal((await call(ci, 'GET', '/v1/apps/shelf')).status, 403);
    assert.equal((await call(ci, 'DELETE', '/v1/apps/cart')).status, 403, 'delete is not in its scope (and a developer does not delete)');
    assert.equal((await call(ci, 'PUT', '/v1/teams/shop/members/bob', { role: 'owner' })).status, 403, 'a robot manages no members');
    assert.equal((await call(ci, 'POST', '/v1/teams/shop/tokens', { name: 'another' })).status, 403, 'nor makes tokens');
    assert.deepEqual(((await call(ci, 'GET', '/v1/apps')).body.apps as { name: string }[]).map((a) => a.name), ['cart', 'cart-worker']);

    const viewer = (await call(sessions.alice!, 'POST', '/v1/teams/shop/tokens', { name: 'dashboard', scope: ['all'] })).body;
    assert.equal(viewer.teamRole, 'viewer', 'viewer unless asked');
    assert.equal((await call(viewer.token as string, 'POST', '/v1/apps/cart/entries/web/scale', { replicas: 1 })).status, 403, 'a viewer writes nothing, whatever its scope');
    const listed = (await call(sessions.alice!, 'GET', '/v1/teams/shop/tokens')).body.tokens as { name: string; teamRole: string }[];
    assert.deepEqual(listed.map((t) => [t.name, t.teamRole]), [['ci', 'developer'], ['dashboard', 'viewer']]);
    assert.equal((await call(sessions.bob!, 'GET', '/v1/teams/shop/tokens')).status, 403);
    assert.equal((await call(sessions.alice!, 'DELETE', '/v1/teams/shop/tokens/ci')).status, 200);
    assert.equal((await call(ci, 'GET', '/v1/apps/cart')).status, 401);
  });

  test('bad input is a 400 naming the field; a removed team takes its robots along', async () => {
    const bad = await call(sessions.alice!, 'POST', '/v1/me/tokens', { name: 'x', scope: ['apps:fly'] });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /apps:fly/);
    assert.equal((await call(sessions.alice!, 'POST', '/v1/me/tokens', { name: 'y', expiresIn: '5y' })).status, 400);
    assert.equal((await call(sessions.alice!, 'POST', '/v1/me/tokens', { name: 'Bad Name' })).status, 400);
    assert.equal((await call(ADMIN, 'POST', '/v1/me/tokens', { name: 'z' })).status, 403, 'an API token is no person');
    assert.equal((await call(sessions.alice!, 'POST', '/v1/me/tokens', { name: 'deploy' })).status, 409, 'names are unique per user');

    assert.equal((await call(ADMIN, 'POST', '/v1/teams', { name: 'gone', owner: 'bob' })).status, 201);
    const robot = (await call(sessions.bob!, 'POST', '/v1/teams/gone/tokens', { name: 'ci' })).body.token as string;
    assert.equal((await call(robot, 'GET', '/v1/apps')).status, 200);
    assert.equal((await call(ADMIN, 'DELETE', '/v1/teams/gone')).status, 200);
    assert.equal((await call(robot, 'GET', '/v1/apps')).status, 401);
  });

  test('the CLI: token create --mine and --team, ls, rm', async () => {
    const cli = (args: string[], token: string) => runCli(args, { GANTRY_SERVER: server.url, GANTRY_TOKEN: token, GANTRY_CONFIG: join(dir, 'cli.json') });
    const made = await cli(['token', 'create', 'ci2', '--team', 'shop', '--team-role', 'developer', '--scope', 'app:write,app:read', '--expires', '720h'], sessions.alice!);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /robot token of team shop \(developer\) "ci2", scope app:write, app:read, valid until/);
    const token = /\n\s+(gty_\S+)\n/.exec(made.stdout)?.[1];
    assert.ok(token);
    assert.equal((await call(token, 'GET', '/v1/apps/cart')).status, 200);
    assert.match((await cli(['token', 'ls', '--team', 'shop'], sessions.alice!)).stdout, /^ci2\s+developer\s+app:write,app:read\s+/m);
    assert.equal((await cli(['token', 'rm', 'ci2', '--team', 'shop'], sessions.alice!)).code, 0);
    const both = await cli(['token', 'ls', '--mine', '--team', 'shop'], sessions.alice!);
    assert.equal(both.code, 2);
    assert.match((await cli(['token', 'ls', '--mine'], sessions.alice!)).stdout, /^deploy\s+app:write,app:read\s+/m);
  });
});
