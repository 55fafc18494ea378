// Approvals: a team that gates an env keeps new releases there waiting for an owner's approval;
// nothing running changes until one approves, the one who asked may not (unless an admin), and
// a proposal overtaken by another change is refused. A real server over real HTTP, apps that
// need no agent (their instances stay unplaced).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { jsonCaller, runCli, signedInUsers } from './helpers/api.js';

const ADMIN = 'gty_approvals_test_admin_token';
const PASSWORD = 'four eyes see more';

describe('approvals before a release to a gated env', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-approvals-'));
  let server: RunningServer;
  let tokens: Record<string, string> = {};

  const call = jsonCaller(() => server.url);
  const spec = (app: string, env: string, team: string | undefined, command: string[], replicas = 1) => ({ app, env, ...(team ? { team } : {}), entrypoints: { web: { command, replicas } } });
  const release = async (app: string) => (await call('GET', `/v1/apps/${app}`, ADMIN)).body.app.release as number;
  const command = async (app: string) => (await call('GET', `/v1/apps/${app}`, ADMIN)).body.app.spec.entrypoints.web.command as string[];
  const events = async (app: string) => ((await call('GET', `/v1/events?app=${app}&limit=1000`, ADMIN)).body.events as Array<{ type: string; message: string }>);
  const eventually = async (check: () => Promise<boolean>, what: string) => {
    for (let i = 0; i < 50; i++) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`never: ${what}`);
  };

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    tokens = await signedInUsers(call, ADMIN, ['olive', 'oscar', 'dan', 'eve'], PASSWORD);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'shop', owner: 'olive' })).status, 201);
    assert.equal((await call('PUT', '/v1/teams/shop/members/oscar', tokens.olive!, { role: 'owner' })).status, 200);
    assert.equal((await call('PUT', '/v1/teams/shop/members/dan', tokens.olive!, { role: 'developer' })).status, 200);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'other', owner: 'eve' })).status, 201);
    // Two releases of the prod app before the rule, so that there is something to roll back to.
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '3600']))).status, 201);
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '3601']))).status, 200);
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-dev', 'dev', 'shop', ['sleep', '3600']))).status, 201);
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('other-web', 'prod', 'other', ['sleep', '3600']))).status, 201);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("owners (and admins) set which envs need approval; developers and other teams' owners do not", async () => {
    assert.equal((await call('PUT', '/v1/teams/shop/require-approval', tokens.dan!, { envs: ['prod'] })).status, 403);
    assert.equal((await call('PUT', '/v1/teams/shop/require-approval', tokens.eve!, { envs: ['prod'] })).status, 403);
    const bad = await call('PUT', '/v1/teams/shop/require-approval', tokens.olive!, { envs: ['Prod!'] });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body.problems), /envs/);
    const set = await call('PUT', '/v1/teams/shop/require-approval', tokens.olive!, { envs: ['prod', 'prod'] });
    assert.deepEqual([set.status, set.body.requireApproval], [200, ['prod']]);
    assert.deepEqual((await call('GET', '/v1/teams/shop', tokens.dan!)).body.team.requireApproval, ['prod']);
  });

  test('a developer\'s rollback of a prod app waits; the same developer and another team cannot approve; an owner can', async () => {
    const asked = await call('POST', '/v1/apps/shop-web/rollback', tokens.dan!, {});
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    assert.equal(asked.body.approval.kind, 'rollback');
    assert.equal(asked.body.approval.requestedBy, 'dan');
    assert.deepEqual(asked.body.approval.changes.map((c: { path: string }) => c.path), ['entrypoints.web.command']);
    assert.match(asked.body.message, /waiting for approval by an owner of team shop: gantry approve shop-web/);
    assert.equal(await release('shop-web'), 2, 'nothing changed');
    assert.deepEqual(await command('shop-web'), ['sleep', '3601']);

    const listed = await call('GET', '/v1/approvals', tokens.dan!);
    assert.deepEqual(listed.body.approvals.map((a: { app: string }) => a.app), ['shop-web']);
    assert.deepEqual((await call('GET', '/v1/approvals', tokens.eve!)).body.approvals, [], "another team's requests are not listed");

    const self = await call('POST', '/v1/approvals/shop-web/approve', tokens.dan!);
    assert.equal(self.status, 403);
    assert.match(self.body.error, /only an owner of team shop/);
    assert.equal((await call('POST', '/v1/approvals/shop-web/approve', tokens.eve!)).status, 403, "an owner of another team");
    assert.equal(await release('shop-web'), 2);

    const approved = await call('POST', '/v1/approvals/shop-web/approve', tokens.olive!);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.app.release, 3);
    assert.deepEqual(await command('shop-web'), ['sleep', '3600']);
    const made = (await call('GET', '/v1/apps/shop-web/releases/3', ADMIN)).body.release;
    assert.deepEqual([made.createdBy, made.approvedBy, made.note], ['dan', 'olive', 'rollback to release 1']);
    const rollout = (await call('GET', '/v1/apps/shop-web/rollout', ADMIN)).body.rollout;
    assert.deepEqual([rollout.from, rollout.to], [2, 3]);
    assert.deepEqual((await call('GET', '/v1/approvals', ADMIN)).body.approvals, [], 'used up');
    assert.equal((await call('POST', '/v1/approvals/shop-web/approve', tokens.olive!)).status, 404);
    await eventually(async () => (await events('shop-web')).some((e) => e.type === 'approval.approved' && /asked by dan approved by olive: release 3/.test(e.message)), 'the approval event');
  });

  test("a developer's apply to a prod app waits too; one to another team's app is refused before any request is made", async () => {
    const before = await release('shop-web');
    const asked = await call('POST', '/v1/apps', tokens.dan!, spec('shop-web', 'prod', 'shop', ['sleep', '42']));
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    assert.equal(asked.body.approval.requestedBy, 'dan');
    assert.equal(await release('shop-web'), before, 'nothing changed');
    assert.equal((await call('POST', '/v1/apps', tokens.eve!, spec('shop-web', 'prod', 'shop', ['sleep', '43']))).status, 403, "eve is not in team shop");
    assert.equal((await call('GET', '/v1/approvals', ADMIN)).body.approvals[0].requestedBy, 'dan', "eve's refused apply replaced nothing");
    assert.equal((await call('POST', '/v1/approvals/shop-web/reject', tokens.olive!, { reason: 'not now' })).status, 200);
  });

  test('four eyes: an owner who asked needs another owner; an admin may approve their own', async () => {
    assert.equal((await call('POST', '/v1/apps/shop-web/rollback', tokens.olive!, {})).status, 202);
    const own = await call('POST', '/v1/approvals/shop-web/approve', tokens.olive!);
    assert.equal(own.status, 403);
    assert.match(own.body.error, /four eyes/);
    assert.equal((await call('POST', '/v1/approvals/shop-web/approve', tokens.oscar!)).status, 200);
    assert.equal(await release('shop-web'), 4);

    const applied = await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '3602']));
    assert.equal(applied.status, 202, 'admins wait for approval too');
    assert.equal(await release('shop-web'), 4);
    assert.equal((await call('POST', '/v1/approvals/shop-web/approve', ADMIN)).status, 200);
    assert.deepEqual(await command('shop-web'), ['sleep', '3602']);
  });

  test('a newer apply replaces the request; reject drops it; scaling is not a release and passes', async () => {
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '1']))).status, 202);
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '2']))).status, 202);
    const pending = (await call('GET', '/v1/approvals?team=shop', tokens.oscar!)).body.approvals;
    assert.equal(pending.length, 1);
    assert.deepEqual(pending[0].changes[0].to, ['sleep', '2']);
    await eventually(async () => (await events('shop-web')).some((e) => e.type === 'approval.requested' && /replaces the request of admin/.test(e.message)), 'the replacing event');

    assert.equal((await call('POST', '/v1/approvals/shop-web/reject', tokens.dan!, {})).status, 403, 'a developer does not reject what others asked');
    const tooLong = await call('POST', '/v1/approvals/shop-web/reject', tokens.olive!, { reason: 'x'.repeat(501) });
    assert.equal(tooLong.status, 400);
    assert.equal((await call('POST', '/v1/approvals/shop-web/reject', tokens.olive!, { reason: 'not on a Friday' })).status, 200);
    assert.deepEqual((await call('GET', '/v1/approvals', ADMIN)).body.approvals, []);
    await eventually(async () => (await events('shop-web')).some((e) => e.type === 'approval.rejected' && /not on a Friday/.test(e.message)), 'the rejection event');
    assert.deepEqual(await command('shop-web'), ['sleep', '3602']);

    const scaled = await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '3602'], 3));
    assert.equal(scaled.status, 200);
    assert.equal(scaled.body.app.release, 5);
  });

  test('a proposal overtaken by another change is refused with 409', async () => {
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '3']))).status, 202);
    assert.equal((await call('POST', '/v1/apps/shop-web/entries/web/scale', tokens.dan!, { replicas: 2 })).status, 200);
    const stale = await call('POST', '/v1/approvals/shop-web/approve', tokens.olive!);
    assert.equal(stale.status, 409);
    assert.match(stale.body.error, /made on release 5, and the app has changed since .*apply the change again/);
    assert.deepEqual(await command('shop-web'), ['sleep', '3602']);
    assert.equal((await call('POST', '/v1/approvals/shop-web/reject', ADMIN, {})).status, 200);
  });

  test('a new app in a gated env waits too; the dev env and a team without the rule behave as before', async () => {
    const created = await call('POST', '/v1/apps', ADMIN, spec('shop-api', 'prod', 'shop', ['sleep', '3600']));
    assert.equal(created.status, 202);
    assert.equal(created.body.approval.kind, 'create');
    assert.equal((await call('GET', '/v1/apps/shop-api', ADMIN)).status, 404);
    assert.equal((await call('POST', '/v1/approvals/shop-api/approve', tokens.oscar!)).status, 200);
    assert.equal(await release('shop-api'), 1);
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-api', 'prod', 'shop', ['sleep', '1']))).status, 202);
    assert.ok([200, 202].includes((await call('DELETE', '/v1/apps/shop-api', tokens.olive!)).status));
    assert.deepEqual((await call('GET', '/v1/approvals', ADMIN)).body.approvals, [], "a removed app's request goes with it");

    const dev = await call('POST', '/v1/apps', ADMIN, spec('shop-dev', 'dev', 'shop', ['sleep', '3601']));
    assert.deepEqual([dev.status, dev.body.app.release], [200, 2]);
    const other = await call('POST', '/v1/apps', ADMIN, spec('other-web', 'prod', 'other', ['sleep', '3601']));
    assert.deepEqual([other.status, other.body.app.release], [200, 2]);

    const moved = await call('POST', '/v1/apps', ADMIN, spec('shop-dev', 'prod', 'shop', ['sleep', '3601']));
    assert.equal(moved.status, 202, 'moving an app into a gated env waits');
    assert.equal((await call('POST', '/v1/approvals/shop-dev/reject', ADMIN, {})).status, 200);

    assert.deepEqual((await call('PUT', '/v1/teams/shop/require-approval', tokens.olive!, { envs: [] })).body.requireApproval, []);
    assert.equal((await call('POST', '/v1/apps', ADMIN, spec('shop-web', 'prod', 'shop', ['sleep', '4']))).status, 200, 'the rule lifted');
  });

  test('the CLI: team set, apply waits, approvals lists the diff, approve, reject', async () => {
    const cli = (args: string[], token = ADMIN) => runCli(args, { GANTRY_SERVER: server.url, GANTRY_TOKEN: token, GANTRY_CONFIG: join(dir, 'cli.json') });
    const set = await cli(['team', 'set', 'shop', '--require-approval', 'prod,staging'], tokens.olive!);
    assert.equal(set.code, 0, set.stderr);
    assert.match((await cli(['team', 'show', 'shop'])).stdout, /approval required for: prod, staging/);
    const bad = await cli(['team', 'set', 'shop', '--require-approval', 'PROD']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /envs/);

    const file = join(dir, 'shop-web.json');
    writeFileSync(file, JSON.stringify(spec('shop-web', 'prod', 'shop', ['sleep', '5'])));
    const applied = await cli(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /waiting for approval by an owner of team shop: gantry approve shop-web/);
    assert.deepEqual(await command('shop-web'), ['sleep', '4']);

    const listed = await cli(['approvals', 'shop'], tokens.dan!);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /shop-web.*update.*admin/);
    assert.match(listed.stdout, /entrypoints\.web\.command: \["sleep","4"\] → \["sleep","5"\]/);

    const refused = await cli(['approve', 'shop-web'], tokens.dan!);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /only an owner of team shop/);
    const approved = await cli(['approve', 'shop-web'], tokens.olive!);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /shop-web: release \d+ approved/);
    assert.deepEqual(await command('shop-web'), ['sleep', '5']);
    assert.match((await cli(['history', 'shop-web'])).stdout, /admin, approved by olive\s+entrypoints\.web\.command\s*$/);

    writeFileSync(file, JSON.stringify(spec('shop-web', 'prod', 'shop', ['sleep', '6'])));
    assert.equal((await cli(['apply', '-f', file])).code, 0);
    const rejected = await cli(['reject', 'shop-web', '--reason', 'wrong image'], tokens.oscar!);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match((await cli(['approvals'])).stdout, /no changes wait for approval/);
  });

  test('a secret roll of an app in a gated env waits for approval (listed as waiting, not failed); the dev app rolls at once', async () => {
    const cli = (args: string[], token = ADMIN) => runCli(args, { GANTRY_SERVER: server.url, GANTRY_TOKEN: token, GANTRY_CONFIG: join(dir, 'cli.json') });
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/api-key', tokens.olive!, { value: 'first value' })).status, 200);
    const uses = { ...spec('shop-web', 'prod', 'shop', ['sleep', '7']) };
    uses.entrypoints.web = { ...uses.entrypoints.web, env: { API_KEY: { secret: 'shop/api-key' } } } as typeof uses.entrypoints.web;
    assert.equal((await call('POST', '/v1/apps', ADMIN, uses)).status, 202);
    assert.equal((await call('POST', '/v1/approvals/shop-web/approve', tokens.olive!)).status, 200);
    const dev = { ...spec('shop-dev', 'dev', 'shop', ['sleep', '7']) };
    dev.entrypoints.web = { ...dev.entrypoints.web, env: { API_KEY: { secret: 'shop/api-key' } } } as typeof dev.entrypoints.web;
    assert.equal((await call('POST', '/v1/apps', ADMIN, dev)).status, 200);
    const webRelease = await release('shop-web');

    const rolled = await call('PUT', '/v1/teams/shop/secrets/api-key', tokens.dan!, { value: 'second value', roll: true });
    assert.equal(rolled.status, 200, JSON.stringify(rolled.body));
    assert.deepEqual(rolled.body.rolled.map((r: { app: string }) => r.app), ['shop-dev']);
    assert.deepEqual(rolled.body.failed, []);
    assert.deepEqual(rolled.body.waiting.map((w: { app: string }) => w.app), ['shop-web']);
    assert.match(rolled.body.waiting[0].message, /waiting for approval by an owner of team shop/);
    assert.equal(await release('shop-web'), webRelease, 'nothing changed before the approval');

    // Again from the CLI (the newer roll replaces the waiting request): said, and not an error.
    const valueFile = join(dir, 'api-key');
    writeFileSync(valueFile, 'third value');
    const byCli = await cli(['secret', 'set', 'shop/api-key', '--from-file', valueFile, '--roll'], tokens.dan!);
    assert.equal(byCli.code, 0, byCli.stderr);
    assert.match(byCli.stdout, /rolling: shop-dev \(release \d+\)/);
    assert.match(byCli.stdout, /shop-web: waiting for approval by an owner of team shop: gantry approve shop-web/);
    assert.doesNotMatch(byCli.stderr, /not rolled/);
    assert.equal((await call('POST', '/v1/approvals/shop-web/approve', tokens.olive!)).status, 200);
    assert.equal(await release('shop-web'), webRelease + 1);
  });
});
