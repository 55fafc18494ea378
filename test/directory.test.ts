// Signing in against a company directory: a real OpenLDAP (Debian's slapd, started here with a
// small organisation) and a real Gantry server over real HTTP. A directory user's groups give
// their team roles and platform role, refreshed at each sign-in; what the person types is never
// a filter of its own; local break-glass admins sign in with the directory down.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { startServer, type RunningServer } from '../src/server/main.js';
import { loadDirectoryConfig } from '../src/server/directory/config.js';
import { GANTRY } from './helpers/cluster.js';
import { skipWithoutProgram } from './helpers/env.js';
import { SERVICE_DN, SERVICE_PASSWORD, SUFFIX, TestSlapd, groupDn, groupEntry, personEntry, userDn } from './helpers/ldap.js';

const ADMIN = 'gty_directory_test_admin_token';
const BREAK_GLASS = 'break glass password';
const PEOPLE = {
  alice: 'alice directory password',
  bob: 'bob directory password',
  carol: 'carol directory password',
  dave: 'dave directory password',
  erin: 'erin directory password',
  twin: 'twin directory password',
};

const configYaml = (url: string) => `
url: ${url}
timeout: 3s
bind:
  dn: ${SERVICE_DN}
  passwordFile: ldap-password
users:
  base: ${SUFFIX}
  filter: (&(objectClass=inetOrgPerson)(uid={user}))
groups:
  search:
    base: ou=groups,${SUFFIX}
    filter: (&(objectClass=groupOfNames)(member={dn}))
mapping:
  - group: ${groupDn('shop-developers')}
    team: shop
    role: developer
  - group: billing-developers
    team: billing
    role: developer
  - group: ${groupDn('gantry-admins')}
    platformRole: admin
  - group: gantry-admins
    team: platform
    role: owner
`;

const skip = skipWithoutProgram('slapd', 'slapd') || skipWithoutProgram('ldapadd', 'ldap-utils');

describe('company directory sign-in (a real slapd)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-directory-'));
  const slapd = new TestSlapd();
  const configFile = join(dir, 'directory.yaml');
  let server: RunningServer;

  const call = async (method: string, path: string, token: string | undefined, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const login = (user: string, password: string) => call('POST', '/v1/login', undefined, { user, password });
  const members = async (team: string) => (await call('GET', `/v1/teams/${team}`, ADMIN)).body.team as { members: Record<string, string> };
  const app = (name: string, team: string) => ({ app: name, team, entrypoints: { web: { command: ['sleep', '3600'], replicas: 1 } } });
  const cli = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [...GANTRY, ...args], { env: { ...process.env, GANTRY_CONFIG: join(dir, 'cli.json'), ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });

  before(async () => {
    await slapd.start();
    await slapd.seed([
      ...Object.entries(PEOPLE).map(([uid, password]) => personEntry({ uid, password })),
      // A second "twin" elsewhere in the tree: a name that finds two people finds nobody.
      personEntry({ uid: 'twin', password: PEOPLE.twin, ou: 'contractors' }),
      groupEntry('shop-developers', [userDn('alice'), userDn('erin'), userDn('twin')]),
      groupEntry('billing-developers', [userDn('bob')]),
      groupEntry('gantry-admins', [userDn('carol')]),
      groupEntry('staff', [userDn('dave'), userDn('alice')]),
    ]);
    writeFileSync(join(dir, 'ldap-password'), `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
    writeFileSync(configFile, configYaml(slapd.url));
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN, directory: loadDirectoryConfig(configFile) });
    for (const team of ['shop', 'billing', 'ops']) assert.equal((await call('POST', '/v1/teams', ADMIN, { name: team })).status, 201);
    for (const spec of [app('shop-web', 'shop'), app('billing-web', 'billing')]) assert.equal((await call('POST', '/v1/apps', ADMIN, spec)).status, 201);
    assert.equal((await call('POST', '/v1/users', ADMIN, { name: 'root', password: BREAK_GLASS, role: 'admin' })).status, 201);
  });

  after(async () => {
    await server?.close();
    await slapd.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a directory user signs in: a session, the team roles and the platform role their groups give', async () => {
    const alice = await login('alice', PEOPLE.alice);
    assert.equal(alice.status, 200, JSON.stringify(alice.body));
    assert.equal(alice.body.role, 'member');
    assert.deepEqual((await call('GET', '/v1/whoami', alice.body.token as string)).body, { name: 'alice', role: 'member', user: 'alice', teams: [{ team: 'shop', role: 'developer' }] });
    assert.equal((await members('shop')).members.alice, 'developer');
    assert.equal((await members('billing')).members.alice, undefined);

    const carol = await login('carol', PEOPLE.carol);
    assert.equal(carol.body.role, 'admin');
    assert.equal((await call('GET', '/v1/nodes', carol.body.token as string)).status, 200, 'an admin by her group');
    // Teams are an admin's to make, not the directory's: a mapping to a missing one waits for it.
    assert.equal((await call('GET', '/v1/teams/platform', ADMIN)).status, 404);
    assert.match(JSON.stringify((await call('GET', '/v1/events?limit=1000', ADMIN)).body), /directory\.team_missing[^}]*carol in team platform/);

    const users = (await call('GET', '/v1/users', ADMIN)).body.users as Array<Record<string, unknown>>;
    const listed = Object.fromEntries(users.map((u) => [u.name, u]));
    assert.equal(listed.alice!.source, 'directory');
    assert.equal(listed.alice!.dn, userDn('alice'));
    assert.equal(listed.root!.source, 'local');
    assert.ok(users.every((u) => !('passwordHash' in u)));
    const ls = await cli(['user', 'ls'], { GANTRY_SERVER: server.url, GANTRY_TOKEN: ADMIN });
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /SOURCE/);
    assert.match(ls.stdout, /^alice\s+member\s+directory\b/m);
    assert.match(ls.stdout, /^root\s+admin\s+local\b/m);
  });

  test('the policy applies to directory users: a developer of shop acts on shop, not on billing', async () => {
    const { token } = (await login('alice', PEOPLE.alice)).body as { token: string };
    assert.equal((await call('POST', '/v1/apps/shop-web/entries/web/scale', token, { replicas: 2 })).status, 200);
    assert.equal((await call('POST', '/v1/apps/billing-web/entries/web/scale', token, { replicas: 2 })).status, 403);
    assert.equal((await call('GET', '/v1/apps/billing-web', token)).status, 403);
  });

  test('a wrong password, an empty one, a name that finds two people or only unmapped groups: 401', async () => {
    for (const [user, password, why] of [
      ['alice', 'not her password', 'wrong password'],
      ['alice', '', 'empty password (an LDAP unauthenticated bind would "succeed")'],
      ['nobody', 'whatever password', 'unknown'],
      ['twin', PEOPLE.twin, 'two entries'],
      ['dave', PEOPLE.dave, 'in no mapped group'],
    ]) {
      const answer = await login(user!, password!);
      assert.equal(answer.status, 401, `${why}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error, 'wrong user name or password', why);
    }
    assert.ok((await login('alice', PEOPLE.alice)).status === 200, 'and a success clears the failures');
  });

  test('the name is escaped: "*", ")(uid=*" and "al*" with a real password match nobody', async () => {
    // Unescaped, "al*" would be a wildcard that finds alice (and her password would then bind):
    // the attack is real in this directory.
    const ldap = new Client({ url: slapd.url, timeout: 3000 });
    await ldap.bind(SERVICE_DN, SERVICE_PASSWORD);
    const { searchEntries } = await ldap.search(SUFFIX, { scope: 'sub', filter: '(&(objectClass=inetOrgPerson)(uid=al*))' });
    await ldap.unbind();
    assert.deepEqual(searchEntries.map((e) => e.dn), [userDn('alice')]);
    for (const user of ['*', ')(uid=*', 'al*', 'alice)(|(uid=*', '*)(objectClass=*']) {
      const answer = await login(user, PEOPLE.alice);
      assert.equal(answer.status, 401, `${user}: ${JSON.stringify(answer.body)}`);
    }
    assert.ok((await login('alice', PEOPLE.alice)).status === 200);
    const users = ((await call('GET', '/v1/users', ADMIN)).body.users as Array<{ name: string }>).map((u) => u.name);
    assert.deepEqual(users.sort(), ['alice', 'carol', 'root']);
  });

  test('a group change in the directory shows at the next sign-in; memberships given by hand stay', async () => {
    const before = (await login('alice', PEOPLE.alice)).body.token as string;
    // By hand in Gantry: viewer of ops.
    assert.equal((await call('PUT', '/v1/teams/ops/members/alice', ADMIN, { role: 'viewer' })).status, 200);
    await slapd.modify([
      `dn: ${groupDn('shop-developers')}\nchangetype: modify\ndelete: member\nmember: ${userDn('alice')}`,
      `dn: ${groupDn('billing-developers')}\nchangetype: modify\nadd: member\nmember: ${userDn('alice')}`,
    ].join('\n\n'));
    const after = await login('alice', PEOPLE.alice);
    assert.equal(after.status, 200);
    assert.equal((await members('shop')).members.alice, undefined, 'the directory took shop away');
    assert.equal((await members('billing')).members.alice, 'developer', 'and gave billing');
    assert.equal((await members('ops')).members.alice, 'viewer', 'the hand-given membership stays');
    assert.equal((await call('POST', '/v1/apps/billing-web/entries/web/scale', after.body.token as string, { replicas: 1 })).status, 200);
    assert.equal((await call('POST', '/v1/apps/shop-web/entries/web/scale', before, { replicas: 1 })).status, 403, 'her older session follows the team change too');

    // A platform role from the directory: her sessions carry the old role, so they end.
    await slapd.modify(`dn: ${groupDn('gantry-admins')}\nchangetype: modify\nadd: member\nmember: ${userDn('alice')}`);
    const promoted = await login('alice', PEOPLE.alice);
    assert.equal(promoted.body.role, 'admin');
    assert.equal((await call('GET', '/v1/whoami', before)).status, 401, 'the member session ended');
    assert.equal((await call('GET', '/v1/nodes', promoted.body.token as string)).status, 200);
  });

  test("a directory user's password is not set through Gantry", async () => {
    const refused = await call('PATCH', '/v1/users/alice', ADMIN, { password: 'a new password here' });
    assert.equal(refused.status, 409);
    assert.match(refused.body.error as string, /company directory/);
    assert.equal((await login('alice', PEOPLE.alice)).status, 200, 'her directory password still works');
  });

  test('someone gone from the directory cannot sign in, and their sessions end', async () => {
    const { token } = (await login('bob', PEOPLE.bob)).body as { token: string };
    assert.equal((await call('GET', '/v1/whoami', token)).status, 200);
    await slapd.modify(`dn: ${userDn('bob')}\nchangetype: delete`);
    assert.equal((await login('bob', PEOPLE.bob)).status, 401);
    assert.equal((await call('GET', '/v1/whoami', token)).status, 401);
  });

  test('failures count against directory users like local ones: 429 after five', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await login('erin', `wrong password ${i}`)).status, 401);
    assert.equal((await login('erin', PEOPLE.erin)).status, 429, 'even the right password waits');
  });

  test('directory down: local break-glass admins sign in, directory users get a 503 that says so', async () => {
    await slapd.stop();
    const root = await login('root', BREAK_GLASS);
    assert.equal(root.status, 200, JSON.stringify(root.body));
    assert.equal(root.body.role, 'admin');
    const alice = await login('alice', PEOPLE.alice);
    assert.equal(alice.status, 503);
    assert.match(alice.body.error as string, new RegExp(`the company directory at ${slapd.url.replaceAll('.', '\\.')} did not answer`));
    const events = (await call('GET', '/v1/events?limit=1000', ADMIN)).body as unknown;
    assert.match(JSON.stringify(events), /auth\.directory_unavailable/);
    const audit = ((await call('GET', '/v1/audit', ADMIN)).body.entries as Array<{ route: string; status: number }>).filter((e) => e.route === '/v1/login');
    assert.ok(audit.some((e) => e.status === 503) && audit.some((e) => e.status === 200) && audit.some((e) => e.status === 401));
  });

  test('no password reaches the store, an event or the audit log', async () => {
    const db = readdirSync(join(dir, 'server')).filter((f) => f.startsWith('gantry.db')).map((f) => readFileSync(join(dir, 'server', f)).toString('latin1')).join('');
    const events = JSON.stringify((await call('GET', '/v1/events?limit=10000', ADMIN)).body);
    const audit = JSON.stringify((await call('GET', '/v1/audit', ADMIN)).body);
    for (const secret of [SERVICE_PASSWORD, ...Object.values(PEOPLE)]) {
      assert.ok(!db.includes(secret) && !events.includes(secret) && !audit.includes(secret), 'a password leaked');
    }
  });

  test('a bad directory file stops the server with the file and the field named', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, configYaml(slapd.url).replace('(uid={user})', '(uid=someone)').replace('team: billing', 'team: Billing!'));
    assert.throws(() => loadDirectoryConfig(bad), (err: Error) => /users\.filter: must contain \{user\}/.test(err.message) && /mapping\[1\]\.team/.test(err.message) && err.message.includes(bad));
    const leaky = join(dir, 'leaky.yaml');
    writeFileSync(leaky, configYaml(slapd.url).replace('passwordFile: ldap-password', 'passwordFile: open-password'));
    writeFileSync(join(dir, 'open-password'), 'x\n');
    chmodSync(join(dir, 'open-password'), 0o644);
    assert.throws(() => loadDirectoryConfig(leaky), /bind\.passwordFile: .*may be read by others/);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, configYaml(slapd.url).replace('(&(objectClass=groupOfNames)(member={dn}))', '(&(member={dn})'));
    assert.throws(() => loadDirectoryConfig(broken), /groups\.search\.filter: unbalanced parentheses/);

    const started = await cli(['server', '--data-dir', join(dir, 'refused'), '--port', '0', '--directory', bad]);
    assert.notEqual(started.code, 0);
    assert.match(started.stderr, /users\.filter/);
    assert.doesNotMatch(started.stderr + started.stdout, new RegExp(SERVICE_PASSWORD));
  });
});
