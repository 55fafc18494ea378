// Teams own apps: a member acts on the apps of their teams by name, as their role there allows,
// and on nothing of another team's; owners manage their team's members. What `can-i` answers
// is what the server does: both come from the one policy table. A real server over real HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { jsonCaller, runCli, signedInUsers } from './helpers/api.js';

const ADMIN = 'gty_teams_test_admin_token';
const PASSWORD = 'team player password';

describe('teams: who may do what to whose apps', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-teams-'));
  let server: RunningServer;
  const tokens: Record<string, string> = {};

  const call = jsonCaller(() => server.url);
  const app = (name: string, team?: string) => ({ app: name, ...(team ? { team } : {}), entrypoints: { web: { command: ['sleep', '3600'], replicas: 1 } } });

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    Object.assign(tokens, await signedInUsers(call, ADMIN, ['alice', 'vera', 'bob', 'mallory'], PASSWORD));
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'a', owner: 'alice' })).status, 201);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'b', owner: 'bob' })).status, 201);
    for (const spec of [app('app-a', 'a'), app('app-b', 'b'), app('app-none')]) assert.equal((await call('POST', '/v1/apps', ADMIN, spec)).status, 201);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("owners manage their own team's members, never another team's; the last owner stays", async () => {
    assert.equal((await call('PUT', '/v1/teams/a/members/vera', tokens.alice!, { role: 'viewer' })).status, 200);
    assert.equal((await call('PUT', '/v1/teams/a/members/mallory', tokens.bob!, { role: 'owner' })).status, 403, "bob is no owner of a");
    assert.equal((await call('PUT', '/v1/teams/a/members/alice', tokens.alice!, { role: 'developer' })).status, 409, 'the last owner');
    assert.equal((await call('PUT', '/v1/teams/a/members/vera', tokens.vera!, { role: 'owner' })).status, 403, 'a viewer cannot promote herself');
    assert.equal((await call('PUT', '/v1/teams/b/members/mallory', tokens.bob!, { role: 'developer' })).status, 200);
    assert.equal((await call('PUT', '/v1/teams/b/members/vera', tokens.mallory!, { role: 'viewer' })).status, 403, 'a developer does not manage members');
    assert.equal((await call('DELETE', '/v1/teams/b/members/bob', tokens.mallory!)).status, 403, 'nor remove them');
    assert.equal((await call('DELETE', '/v1/teams/b/members/mallory', tokens.bob!)).status, 200);
    assert.equal((await call('PUT', '/v1/teams/a/members/nobody', tokens.alice!, { role: 'viewer' })).status, 404);
    assert.equal((await call('DELETE', '/v1/teams/a', tokens.alice!)).status, 403, 'owners do not delete teams');
    const listed = (await call('GET', '/v1/teams', tokens.vera!)).body.teams as { name: string }[];
    assert.deepEqual(listed.map((t) => t.name), ['a']);
    assert.equal((await call('GET', '/v1/teams/b', tokens.vera!)).status, 403);
    assert.equal((await call('GET', '/v1/teams/a', tokens.vera!)).status, 200);
  });

  // [who, method, path, body, expected status]
  const MATRIX: Array<[string, string, string, unknown, number]> = [
    ['alice', 'GET', '/v1/apps/app-a', undefined, 200],
    ['alice', 'GET', '/v1/apps/app-a/releases', undefined, 200],
    ['alice', 'GET', '/v1/apps/app-a/rollout', undefined, 200],
    ['alice', 'POST', '/v1/apps/app-a/entries/web/scale', { replicas: 2 }, 200],
    ['alice', 'GET', '/v1/apps/app-b', undefined, 403],
    ['alice', 'GET', '/v1/apps/app-b/releases', undefined, 403],
    ['alice', 'POST', '/v1/apps/app-b/entries/web/scale', { replicas: 0 }, 403],
    ['alice', 'POST', '/v1/apps/app-b/stop', undefined, 403],
    ['alice', 'GET', '/v1/apps/app-none', undefined, 403],
    // Lists answer what each may see (test/isolation.test.ts checks what they hold).
    ['alice', 'GET', '/v1/instances', undefined, 200],
    ['alice', 'GET', '/v1/events', undefined, 200],
    ['alice', 'GET', '/v1/discovery/prometheus', undefined, 200],
    ['alice', 'GET', '/v1/registry', undefined, 200],
    ['alice', 'GET', '/v1/pools', undefined, 200],
    ['alice', 'GET', '/v1/nodes', undefined, 403],
    ['alice', 'GET', '/v1/tokens', undefined, 403],
    ['alice', 'POST', '/v1/apps', app('app-b', 'b'), 403],
    ['alice', 'GET', '/v1/instances/app-b-web-0a1b2c3d/logs', undefined, 403],
    ['vera', 'GET', '/v1/apps/app-a', undefined, 200],
    ['vera', 'POST', '/v1/apps/app-a/entries/web/scale', { replicas: 3 }, 403],
    ['vera', 'POST', '/v1/apps/app-a/rollback', {}, 403],
    ['vera', 'DELETE', '/v1/apps/app-a', undefined, 403],
    ['mallory', 'GET', '/v1/apps/app-a', undefined, 403],
    ['mallory', 'GET', '/v1/apps/app-b', undefined, 403],
    ['bob', 'GET', '/v1/apps/app-a', undefined, 403],
    ['bob', 'POST', '/v1/apps/app-b/stop', undefined, 200],
  ];

  test('each member reaches their teams\' apps as their role allows, and nothing of another team\'s', async () => {
    for (const [who, method, path, body, expected] of MATRIX) {
      const answer = await call(method, path, tokens[who]!, body);
      assert.equal(answer.status, expected, `${who} ${method} ${path}: ${JSON.stringify(answer.body)}`);
      if (expected === 403) assert.match(String(answer.body.error), new RegExp(`^${who} \\(member\\) may not`), `${who} ${method} ${path}`);
    }
  });

  test('the app list holds what each may see: a member their teams\' apps, an admin all', async () => {
    const names = async (token: string) => ((await call('GET', '/v1/apps', token)).body.apps as { name: string }[]).map((a) => a.name);
    assert.deepEqual(await names(tokens.alice!), ['app-a']);
    assert.deepEqual(await names(tokens.vera!), ['app-a']);
    assert.deepEqual(await names(tokens.bob!), ['app-b']);
    assert.deepEqual(await names(tokens.mallory!), []);
    assert.deepEqual(await names(ADMIN), ['app-a', 'app-b', 'app-none']);
    // Upgrade path: an app whose spec names no team is the default team's (made on start), and its spec is as it was.
    const defaultTeam = (await call('GET', '/v1/teams/default', ADMIN)).body.team as { name: string; members: object };
    assert.deepEqual([defaultTeam.name, defaultTeam.members], ['default', {}]);
    assert.equal(((await call('GET', '/v1/apps/app-none', ADMIN)).body.app as { spec: { team?: string } }).spec.team, undefined);
    assert.equal((await call('GET', '/v1/auth/can-i?verb=read&resource=app/app-none&as=alice', ADMIN)).body.allowed, false);
    assert.ok(!JSON.stringify((await call('GET', '/v1/apps', tokens.alice!)).body).includes('entrypoints'), 'summaries, never specs');
  });

  test('can-i answers what the server does', async () => {
    const ask = async (as: string, verb: string, resource: string) => (await call('GET', `/v1/auth/can-i?verb=${verb}&resource=${resource}&as=${as}`, ADMIN)).body.allowed;
    assert.equal(await ask('alice', 'scale', 'app/app-a'), true);
    assert.equal(await ask('alice', 'scale', 'app/app-b'), false);
    assert.equal(await ask('vera', 'read', 'app/app-a'), true);
    assert.equal(await ask('vera', 'apply', 'app/app-a'), false);
    assert.equal(await ask('bob', 'delete', 'app/app-b'), true);
    assert.equal(await ask('alice', 'delete', 'team/a'), false);
    assert.equal(await ask('mallory', 'read', 'app/app-a'), false);
    const own = (await call('GET', '/v1/auth/can-i?verb=logs&resource=app/app-a', tokens.vera!)).body;
    assert.equal(own.allowed, true);
  });

  test('an owner removes their team\'s app; a team that owns apps is not removed', async () => {
    assert.equal((await call('DELETE', '/v1/apps/app-a', tokens.vera!)).status, 403);
    assert.equal((await call('DELETE', '/v1/teams/b', ADMIN)).status, 409);
    const removed = await call('DELETE', '/v1/apps/app-b', tokens.bob!);
    assert.ok([200, 202].includes(removed.status), JSON.stringify(removed.body));
    assert.equal((await call('DELETE', '/v1/teams/b', ADMIN)).status, 200);
  });

  test('the CLI: team create, add, show, kick, ls', async () => {
    const cli = (args: string[]) => runCli(args, { GANTRY_SERVER: server.url, GANTRY_TOKEN: ADMIN, GANTRY_CONFIG: join(dir, 'cli.json') });
    assert.equal((await cli(['team', 'create', 'c', '--owner', 'mallory'])).code, 0);
    assert.equal((await cli(['team', 'add', 'c', 'vera', '--role', 'viewer'])).code, 0);
    assert.match((await cli(['team', 'show', 'c'])).stdout, /mallory\s+owner[\s\S]*vera\s+viewer|vera\s+viewer[\s\S]*mallory\s+owner/);
    assert.equal((await cli(['team', 'kick', 'c', 'vera'])).code, 0);
    const kickLast = await cli(['team', 'kick', 'c', 'mallory']);
    assert.equal(kickLast.code, 1);
    assert.match(kickLast.stderr, /last owner/);
    assert.match((await cli(['team', 'ls'])).stdout, /^c\s+1\s+mallory$/m);
    await new Promise((resolve) => setTimeout(resolve, 200)); // audit entries are appended after each answer
    const exported = await cli(['audit', '--since', '1h', '-o', 'jsonl']);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as { route: string; target: Record<string, string> });
    assert.ok(lines.some((e) => e.route === '/v1/teams/:team/members/:user' && e.target.user === 'vera'), exported.stdout.slice(0, 500));
    assert.match((await cli(['audit', '--team', 'c'])).stdout, /PUT \/v1\/teams\/:team\/members\/:user\s+team=c user=vera\s+ok 200/);
  });

  test('the audit log: who asked what of which target, refused or not, sign-ins too; no bodies; read-only; kept across a restart', async () => {
    await fetch(`${server.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', password: 'not her password' }) });
    const entries = async (query: string) => (await call('GET', `/v1/audit?${query}`, ADMIN)).body.entries as Array<{ who: string; team?: string; method: string; route: string; target: Record<string, string>; status: number; outcome: string; summary?: string }>;
    await new Promise((resolve) => setTimeout(resolve, 200)); // appended after each answer
    const alice = await entries('user=alice');
    const refused = alice.find((e) => e.route === '/v1/apps/:app/entries/:entry/scale' && e.target.app === 'app-b');
    assert.deepEqual(refused && [refused.method, refused.status, refused.outcome, refused.team], ['POST', 403, 'refused', 'b']);
    const scaled = alice.find((e) => e.route === '/v1/apps/:app/entries/:entry/scale' && e.target.app === 'app-a');
    assert.deepEqual(scaled && [scaled.status, scaled.outcome, scaled.team, scaled.summary], [200, 'ok', 'a', 'web: 2 replicas']);
    // An apply names its app (from the body) and sums the change up, without values.
    const created = (await entries('team=a')).find((e) => e.route === '/v1/apps' && e.target.app === 'app-a');
    assert.deepEqual(created && [created.method, created.summary], ['POST', 'release 1: created']);
    assert.ok(alice.some((e) => e.route === '/v1/login' && e.outcome === 'refused'), 'a failed sign-in');
    assert.ok(alice.some((e) => e.route === '/v1/login' && e.outcome === 'ok'), 'a sign-in');
    assert.ok(!alice.some((e) => e.method === 'GET' && e.route !== '/v1/login'), 'reads are not audited');
    const teamA = await entries('team=a');
    assert.ok(teamA.length > 0 && teamA.every((e) => e.team === 'a'));
    const all = JSON.stringify(await entries('limit=100000'));
    assert.ok(!all.includes(PASSWORD) && !all.includes('not her password'), 'no passwords');
    assert.equal((await call('GET', '/v1/audit', tokens.alice!)).status, 403, 'members do not read the log');
    for (const method of ['POST', 'PUT', 'DELETE']) assert.equal((await fetch(`${server.url}/v1/audit`, { method, headers: { authorization: `Bearer ${ADMIN}` } })).status, 404, `${method} /v1/audit`);

    const before = (await entries('limit=100000')).length;
    await server.close();
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    assert.ok((await entries('limit=100000')).length >= before, 'kept across a restart');
  });
});
