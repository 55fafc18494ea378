// Invitations: admins invite anyone, team owners invite members into their own team; a code
// works once, until it expires, gets one answer when it does not, and never shows up in events
// or the audit log. A real server over real HTTP, and the CLI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { STORE } from '../src/server/keys.js';
import { jsonCaller, runCli, signedInUsers } from './helpers/api.js';

const ADMIN = 'gty_invitations_test_admin_token';
const PASSWORD = 'a long enough password';
const INVALID = /^this invitation code is not valid: it is unknown, used up or expired/;

describe('invitations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-invitations-'));
  let server: RunningServer;
  let tokens: Record<string, string> = {};
  const codes: string[] = [];

  const call = jsonCaller(() => server.url);
  const invite = async (token: string, body: object) => {
    const made = await call('POST', '/v1/invitations', token, body);
    if (made.status === 201) codes.push(made.body.code);
    return made;
  };
  const accept = (code: string, name: string, password = PASSWORD) => call('POST', '/v1/invitations/accept', undefined, { code, name, password });

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    tokens = await signedInUsers(call, ADMIN, ['olive', 'dan', 'eve'], PASSWORD);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'shop', owner: 'olive' })).status, 201);
    assert.equal((await call('PUT', '/v1/teams/shop/members/dan', tokens.olive!, { role: 'developer' })).status, 200);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'other', owner: 'eve' })).status, 201);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an admin invites; the invited person becomes a user in the team, signed in; the code works once', async () => {
    const made = await invite(ADMIN, { team: 'shop', role: 'viewer' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const { code, invitation } = made.body;
    assert.match(code, /^gti_[A-Za-z0-9_-]{32}$/);
    assert.match(made.body.accept, /^gantry accept-invite gti_\S+ --name <your name>$/);
    assert.deepEqual([invitation.platformRole, invitation.team, invitation.teamRole], ['member', 'shop', 'viewer']);
    const week = invitation.expiresAt - invitation.createdAt;
    assert.equal(week, 7 * 24 * 3_600_000, 'seven days by default');
    const listed = JSON.stringify((await call('GET', '/v1/invitations', ADMIN)).body);
    assert.ok(listed.includes(invitation.id) && !listed.includes(code) && !listed.includes('codeHash'), 'listed without the code or its hash');

    const joined = await accept(code, 'alice');
    assert.equal(joined.status, 201, JSON.stringify(joined.body));
    assert.deepEqual([joined.body.user, joined.body.role], ['alice', 'member']);
    const me = await call('GET', '/v1/whoami', joined.body.token);
    assert.deepEqual([me.status, me.body.user], [200, 'alice']);
    assert.equal((await call('GET', '/v1/teams/shop', joined.body.token)).body.team.members.alice, 'viewer');
    assert.equal((await call('POST', '/v1/login', undefined, { user: 'alice', password: PASSWORD })).status, 200, 'the password chosen works');

    const again = await accept(code, 'alice2');
    assert.equal(again.status, 403);
    assert.match(again.body.error, INVALID);
    const unknown = await accept(`gti_${'A'.repeat(32)}`, 'alice3');
    assert.deepEqual([unknown.status, unknown.body.error], [403, again.body.error], 'used and unknown: one answer');
    assert.deepEqual((await call('GET', '/v1/invitations', ADMIN)).body.invitations, [], 'used up');
  });

  test('an expired code gets the same answer; bad input is a 400 naming the field, nothing used up', async () => {
    const made = await invite(ADMIN, { platformRole: 'operator', expiresIn: '48h' });
    assert.equal(made.body.invitation.expiresAt - made.body.invitation.createdAt, 48 * 3_600_000);
    const short = await accept(made.body.code, 'otto', 'short');
    assert.equal(short.status, 400);
    assert.match(JSON.stringify(short.body.problems), /password/);
    assert.match(JSON.stringify((await accept(made.body.code, 'Not A Name')).body.problems), /user/);
    assert.equal((await call('POST', '/v1/invitations/accept', undefined, { code: 'x'.repeat(20_000), name: 'otto', password: PASSWORD })).status, 413);
    assert.equal((await call('POST', '/v1/invitations', ADMIN, { role: 'viewer' })).status, 400, 'a team role without a team');
    assert.match(JSON.stringify((await call('POST', '/v1/invitations', ADMIN, { expiresIn: '1000h' })).body.problems), /expiresIn/);
    assert.equal((await call('POST', '/v1/invitations', ADMIN, { team: 'nosuch' })).status, 404);
    assert.equal((await accept(made.body.code, 'olive')).status, 409, 'a name taken, and the code still works after');

    // Time passing, written as the store would hold it a week later.
    const key = STORE.invitations.key(made.body.invitation.id);
    const stored = STORE.invitations.decode((await server.store.get(key))!.value);
    await server.store.put(key, STORE.invitations.encode({ ...stored, expiresAt: Date.now() - 1000 }));
    const expired = await accept(made.body.code, 'otto');
    assert.equal(expired.status, 403);
    assert.match(expired.body.error, INVALID);
    assert.equal((await call('POST', '/v1/login', undefined, { user: 'otto', password: PASSWORD })).status, 401, 'no user made');
  });

  test('two accepts of one code at once: exactly one wins', async () => {
    const { code } = (await invite(ADMIN, { team: 'shop' })).body;
    const answers = await Promise.all(['racer-a', 'racer-b', 'racer-c'].map((name) => accept(code, name)));
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 403, 403], JSON.stringify(answers.map((a) => a.body)));
    const members = (await call('GET', '/v1/teams/shop', ADMIN)).body.team.members;
    assert.equal(Object.keys(members).filter((m) => m.startsWith('racer-')).length, 1);
  });

  test('an owner invites members into their own team only; a developer invites nobody', async () => {
    const ok = await invite(tokens.olive!, { team: 'shop', role: 'owner' });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const refused = async (token: string, body: object, why: RegExp) => {
      const answer = await invite(token, body);
      assert.equal(answer.status, 403, JSON.stringify(body));
      assert.match(answer.body.error, why);
    };
    await refused(tokens.olive!, { team: 'other' }, /only its owners/);
    await refused(tokens.olive!, { team: 'shop', platformRole: 'admin' }, /may not invite an admin/);
    await refused(tokens.olive!, { team: 'shop', platformRole: 'operator' }, /may not invite an operator/);
    await refused(tokens.olive!, {}, /only into a team they own/);
    await refused(tokens.dan!, { team: 'shop' }, /only its owners/);
    const otherTeams = await invite(tokens.eve!, { team: 'other' });
    assert.equal(otherTeams.status, 201);

    const seen = (await call('GET', '/v1/invitations', tokens.olive!)).body.invitations as Array<{ id: string; team: string }>;
    assert.deepEqual([...new Set(seen.map((i) => i.team))], ['shop'], "an owner sees their team's only");
    assert.deepEqual((await call('GET', '/v1/invitations', tokens.dan!)).body.invitations, []);
    assert.equal((await call('DELETE', `/v1/invitations/${otherTeams.body.invitation.id}`, tokens.olive!)).status, 404);
    assert.equal((await call('DELETE', `/v1/invitations/${ok.body.invitation.id}`, tokens.olive!)).status, 200);
    assert.match((await accept(ok.body.code, 'revoked-one')).body.error, INVALID);
  });

  test('the CLI: user invite prints the code and how to accept; accept-invite signs in', async () => {
    const cli = (args: string[], env: Record<string, string>, input?: string) => runCli(args, { GANTRY_SERVER: server.url, ...env }, input);
    const asAdmin = { GANTRY_TOKEN: ADMIN, GANTRY_CONFIG: join(dir, 'admin.json') };
    const made = await cli(['user', 'invite', '--team', 'shop', '--role', 'developer', '--expires', '48h'], asAdmin);
    assert.equal(made.code, 0, made.stderr);
    const code = /^(gti_\S+)$/m.exec(made.stdout)?.[1];
    assert.ok(code, made.stdout);
    codes.push(code);
    assert.match(made.stdout, /gantry accept-invite gti_\S+ --name <their name>/);
    assert.match((await cli(['user', 'invitations'], asAdmin)).stdout, /member\s+shop \(developer\)/);
    const bad = await cli(['user', 'invite', '--role', 'viewer'], asAdmin);
    assert.notEqual(bad.code, 0);

    const config = join(dir, 'carol.json');
    const accepted = await cli(['accept-invite', code, '--name', 'carol', '--password-stdin'], { GANTRY_CONFIG: config }, `${PASSWORD}\n`);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stdout, /welcome, carol \(member\)/);
    const saved = JSON.parse(readFileSync(config, 'utf8')) as { token: string };
    assert.equal((await call('GET', '/v1/whoami', saved.token)).body.user, 'carol');
    const twice = await cli(['accept-invite', code, '--name', 'carol2', '--password-stdin'], { GANTRY_CONFIG: join(dir, 'carol2.json') }, `${PASSWORD}\n`);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /not valid/);
  });

  test('no code (nor its hash) ever appears in events or the audit log; accepts are audited under the name asked for', async () => {
    await new Promise((resolve) => setTimeout(resolve, 300)); // audit entries are appended after each answer
    const events = JSON.stringify((await call('GET', '/v1/events?limit=10000', ADMIN)).body);
    const audit = JSON.stringify((await call('GET', '/v1/audit?limit=100000', ADMIN)).body);
    assert.ok(codes.length >= 6);
    for (const code of codes) {
      assert.ok(!events.includes(code) && !audit.includes(code), 'a code in the log');
      assert.ok(!events.includes(code.slice(4)) && !audit.includes(code.slice(4)));
    }
    assert.ok(!events.includes('codeHash') && !audit.includes(PASSWORD) && !events.includes(PASSWORD));
    const entries = (JSON.parse(audit) as { entries: Array<{ who: string; route: string; outcome: string }> }).entries;
    assert.ok(entries.some((e) => e.route === '/v1/invitations/accept' && e.who === 'alice' && e.outcome === 'ok'));
    assert.ok(entries.some((e) => e.route === '/v1/invitations/accept' && e.outcome === 'refused'));
    assert.match(events, /user alice \(member\) joined by invitation [0-9a-f]{16} of admin, viewer of team shop/);
  });

  test('guessing codes is counted like failed sign-ins: an address that keeps failing is refused for a while', async () => {
    const { code } = (await invite(ADMIN, { team: 'shop' })).body;
    let status = 0;
    for (let i = 0; i < 25 && status !== 429; i++) status = (await accept(`gti_guess${i}`, 'guesser')).status;
    assert.equal(status, 429);
    assert.equal((await accept(code, 'guesser')).status, 429, 'even a right code, from that address, for now');
  });
});
