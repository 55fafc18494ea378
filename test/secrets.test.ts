// Team secrets against a real server over real HTTP: who may list, set, read and use them;
// what an apply naming one must satisfy; that the value is in no answer but the owner's read
// (which the audit log records) and not in the store file; rolling apps onto a new value; and
// rotating the key the values are sealed with. The instances themselves: e2e-secrets.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';

const ADMIN = 'gty_secrets_test_admin_token';
const PASSWORD = 'secret keeper password';
const VALUE = `s3cr3t-${randomBytes(8).toString('hex')}`;
const NEWER = `n3w3r-${randomBytes(8).toString('hex')}`;
const REGISTRY_PASSWORD = `regpass-${randomBytes(8).toString('hex')}`;

describe('team secrets: who may do what, where values never appear, rolls and key rotation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-secrets-'));
  const dataDir = join(dir, 'server');
  let server: RunningServer;
  const tokens: Record<string, string> = {};
  const seen: string[] = [];

  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    seen.push(text);
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  const app = (name: string, team: string, env: Record<string, unknown>, files?: unknown[]) => ({ app: name, team, entrypoints: { web: { command: ['sleep', '3600'], replicas: 0, env, ...(files ? { files } : {}) } } });
  const start = () => startServer({ dataDir, port: 0, bootstrapToken: ADMIN });

  before(async () => {
    server = await start();
    for (const [user, role] of [['olive', 'member'], ['dev', 'member'], ['vic', 'member'], ['bea', 'member'], ['opal', 'operator']] as const) {
      assert.equal((await call('POST', '/v1/users', ADMIN, { name: user, password: PASSWORD, role })).status, 201);
      const login = await fetch(`${server.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password: PASSWORD }) });
      tokens[user] = ((await login.json()) as { token: string }).token;
    }
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'shop', owner: 'olive' })).status, 201);
    assert.equal((await call('PUT', '/v1/teams/shop/members/dev', tokens.olive!, { role: 'developer' })).status, 200);
    assert.equal((await call('PUT', '/v1/teams/shop/members/vic', tokens.olive!, { role: 'viewer' })).status, 200);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'blog', owner: 'bea' })).status, 201);
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('owners and developers set, viewers and other teams cannot; members list names, only owners read values; operators see nothing', async () => {
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/db-password', tokens.vic!, { value: VALUE })).status, 403, 'a viewer cannot set');
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/db-password', tokens.bea!, { value: VALUE })).status, 403, 'another team cannot set');
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/db-password', tokens.opal!, { value: VALUE })).status, 403, 'an operator cannot set');
    const set = await call('PUT', '/v1/teams/shop/secrets/db-password', tokens.dev!, { value: VALUE });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal((set.body.secret as { version: number }).version, 1);
    assert.equal((await call('PUT', '/v1/teams/blog/secrets/token', tokens.bea!, { value: 'blog-token-value' })).status, 200);

    for (const who of ['vic', 'dev', 'olive']) {
      const listed = await call('GET', '/v1/teams/shop/secrets', tokens[who]!);
      assert.equal(listed.status, 200, who);
      assert.deepEqual((listed.body.secrets as { name: string }[]).map((s) => s.name), ['db-password']);
    }
    for (const who of ['bea', 'opal']) assert.equal((await call('GET', '/v1/teams/shop/secrets', tokens[who]!)).status, 403, `${who} lists no secrets of shop`);
    for (const who of ['vic', 'dev', 'bea', 'opal']) {
      const refused = await call('GET', '/v1/teams/shop/secrets/db-password', tokens[who]!);
      assert.equal(refused.status, 403, `${who} reads no value`);
      assert.ok(!JSON.stringify(refused.body).includes(VALUE));
    }
    const read = await call('GET', '/v1/teams/shop/secrets/db-password', tokens.olive!);
    assert.equal(read.status, 200);
    assert.equal(read.body.value, VALUE);
    assert.equal((await call('GET', '/v1/teams/shop/secrets/db-password', ADMIN)).body.value, VALUE);
  });

  test('bad input is a 400 naming the field; the limits hold', async () => {
    const empty = await call('PUT', '/v1/teams/shop/secrets/x', tokens.dev!, { value: '' });
    assert.equal(empty.status, 400);
    assert.deepEqual((empty.body.problems as { path: string }[]).map((p) => p.path), ['value']);
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/x', tokens.dev!, { value: 'x'.repeat(64 * 1024 + 1) })).status, 400);
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/x', tokens.dev!, { value: 'a\u0000b' })).status, 400);
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/Bad_Name', tokens.dev!, { value: 'v' })).status, 400);
    assert.equal((await call('PUT', '/v1/teams/shop/secrets/x', tokens.dev!, { value: 'v', extra: 1 })).status, 400);
    assert.equal((await call('PUT', '/v1/teams/nope/secrets/x', ADMIN, { value: 'v' })).status, 404);
    assert.equal((await call('GET', '/v1/teams/shop/secrets/x', ADMIN)).status, 404, 'nothing was stored by the refused sets');
  });

  test('an apply may use only its own team\'s existing secrets: else 400 naming the field, nothing stored', async () => {
    const foreign = await call('POST', '/v1/apps', ADMIN, app('thief', 'shop', { TOKEN: { secret: 'blog/token' } }));
    assert.equal(foreign.status, 400);
    assert.deepEqual(foreign.body.problems, [{ path: 'entrypoints.web.env.TOKEN', message: "secret blog/token belongs to team blog, not to this app's team shop: an app uses only its own team's secrets" }]);
    const missing = await call('POST', '/v1/apps', ADMIN, app('thief', 'shop', {}, [{ path: '/run/x', secret: 'shop/nope' }]));
    assert.equal(missing.status, 400);
    assert.equal((missing.body.problems as { path: string }[])[0]!.path, 'entrypoints.web.files[0].secret');
    assert.equal((await call('POST', '/v1/apps', tokens.bea!, app('thief', 'shop', { P: { secret: 'shop/db-password' } }))).status, 403, 'bea cannot apply into shop');
    assert.equal((await call('GET', '/v1/apps/thief', ADMIN)).status, 404);
  });

  test('the spec, releases, diff, app and events hold the reference, never the value; set answers who uses it', async () => {
    // Members creating apps is the lead's part (a body-aware apply check); an admin creates it here.
    const applied = await call('POST', '/v1/apps', ADMIN, app('cart', 'shop', { DB_PASSWORD: { secret: 'shop/db-password' }, PLAIN: 'x' }, [{ path: '/run/secrets/db', secret: 'shop/db-password', mode: '0440' }]));
    assert.equal(applied.status, 201, JSON.stringify(applied.body));
    const spec = (applied.body.app as { spec: { entrypoints: { web: { env: Record<string, unknown>; files: unknown[] } } } }).spec.entrypoints.web;
    assert.deepEqual(spec.env.DB_PASSWORD, { secret: 'shop/db-password', version: 1 });
    assert.deepEqual(spec.files, [{ path: '/run/secrets/db', secret: 'shop/db-password', mode: '0440', version: 1 }]);

    const again = await call('PUT', '/v1/teams/shop/secrets/db-password', tokens.dev!, { value: NEWER });
    assert.deepEqual((again.body.secret as { usedBy: string[]; version: number }).usedBy, ['cart']);
    assert.equal(again.body.rolled, undefined, 'no roll unless asked');
    assert.equal(((await call('GET', '/v1/apps/cart', ADMIN)).body.app as { release: number }).release, 1, 'nothing restarted');
    assert.equal((await call('DELETE', '/v1/teams/shop/secrets/db-password', tokens.dev!)).status, 409, 'in use');

    const rolled = await call('PUT', '/v1/teams/shop/secrets/db-password', tokens.dev!, { value: NEWER, roll: true });
    assert.deepEqual(rolled.body.rolled, [{ app: 'cart', release: 2 }], JSON.stringify(rolled.body));
    const releases = (await call('GET', '/v1/apps/cart/releases', tokens.dev!)).body.releases as { release: number; note?: string; changes: { path: string }[] }[];
    const last = releases.at(-1)!;
    assert.equal(last.note, 'secret shop/db-password changed (version 3)');
    // The diff compares lists whole: the files list changed, in its version only.
    assert.deepEqual(last.changes.map((c) => c.path).sort(), ['entrypoints.web.env.DB_PASSWORD.version', 'entrypoints.web.files']);
    const [before, after] = [releases.at(-2)!, last].map((r) => (r as unknown as { spec: { entrypoints: { web: { files: unknown[] } } } }).spec.entrypoints.web.files);
    assert.deepEqual(after, (before as { version: number }[]).map((f) => ({ ...f, version: 3 })));
    await call('GET', '/v1/apps/cart/diff?from=1&to=2', tokens.dev!);
    await call('GET', '/v1/apps/cart/releases/2', tokens.dev!);
    await call('GET', '/v1/events?limit=500', ADMIN);
    await call('GET', '/v1/audit', ADMIN);
    const rollback = await call('POST', '/v1/apps/cart/rollback', tokens.dev!, {});
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    // Only the owners' and admin's reads above hold the value.
    const answersWithValue = seen.filter((text) => text.includes(VALUE) || text.includes(NEWER));
    assert.equal(answersWithValue.length, 2, answersWithValue.join('\n').slice(0, 400));
  });

  test('every read of a value is in the audit log, refused ones too', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200)); // appended after each answer
    const entries = (await call('GET', '/v1/audit', ADMIN)).body.entries as { who: string; method: string; route: string; outcome: string; team?: string }[];
    const reads = entries.filter((e) => e.method === 'GET' && e.route === '/v1/teams/:team/secrets/:name');
    assert.ok(reads.some((e) => e.who === 'olive' && e.outcome === 'ok' && e.team === 'shop'), JSON.stringify(reads));
    assert.ok(reads.some((e) => e.who === 'vic' && e.outcome === 'refused'), JSON.stringify(reads));
    assert.ok(!entries.some((e) => e.method === 'GET' && e.route === '/v1/teams/:team/secrets'), 'listing names is not a read of values');
  });

  test('rotate-key re-seals secrets and registry passwords; after it the old key can go', async () => {
    assert.equal((await call('PUT', '/v1/registries/registry.example.com', ADMIN, { username: 'u', password: REGISTRY_PASSWORD })).status, 200);
    assert.equal((await call('POST', '/v1/secrets/rotate-key', tokens.olive!, {})).status, 403, 'admins only');
    assert.equal((await call('POST', '/v1/secrets/rotate-key', tokens.opal!, {})).status, 403, 'admins only');
    await server.close();
    const keyFile = join(dataDir, 'secret.key');
    writeFileSync(`${keyFile}.previous`, readFileSync(keyFile));
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`);
    server = await start();
    assert.equal(statSync(`${keyFile}.previous`).mode & 0o777, 0o600, 'the previous keys are private too');
    assert.equal((await call('GET', '/v1/teams/shop/secrets/db-password', tokens.olive!)).body.value, NEWER, 'opens with the previous key');
    const rotated = await call('POST', '/v1/secrets/rotate-key', ADMIN, {});
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.body.secrets, 2);
    assert.equal(rotated.body.registryLogins, 1);
    assert.equal((await call('POST', '/v1/secrets/rotate-key', ADMIN, {})).body.secrets, 0, 'nothing left to re-seal');
    await server.close();
    rmSync(`${keyFile}.previous`);
    server = await start();
    assert.equal((await call('GET', '/v1/teams/shop/secrets/db-password', tokens.olive!)).body.value, NEWER, 'opens without the old key');
    assert.equal((await call('GET', '/v1/teams/blog/secrets/token', tokens.bea!)).body.value, 'blog-token-value');
  });

  test('a team that keeps secrets is not removed', async () => {
    const refused = await call('DELETE', '/v1/teams/blog', ADMIN);
    assert.equal(refused.status, 409);
    assert.match(String(refused.body.error), /team blog still has secret token/);
  });

  test('no value is in the store file', async () => {
    await server.close();
    for (const file of ['gantry.db', 'gantry.db-wal']) {
      const path = join(dataDir, file);
      if (!existsSync(path)) continue;
      const bytes = readFileSync(path);
      for (const secret of [VALUE, NEWER, REGISTRY_PASSWORD, 'blog-token-value']) assert.equal(bytes.indexOf(secret), -1, `${secret.slice(0, 6)}… found in ${file}`);
    }
    server = await start();
  });
});
