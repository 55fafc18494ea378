// Team configs against a real server over real HTTP: who may read, set, roll back and remove
// them; bad input; versions, history and diff; an apply's checks; what a new version does to
// the apps using it (a release for entries that restart, none for those that reload in place).
// The instances themselves: e2e-configs.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { jsonCaller, runCli, signedInUsers } from './helpers/api.js';

const ADMIN = 'gty_configs_test_admin_token';
const PASSWORD = 'config keeper password';

describe('team configs: access, versions, and what a change does to the apps using it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-configs-'));
  let server: RunningServer;
  const tokens: Record<string, string> = {};

  const call = jsonCaller(() => server.url);
  const entry = (extra: Record<string, unknown>) => ({ command: ['sleep', '3600'], replicas: 0, ...extra });

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    Object.assign(tokens, await signedInUsers(call, ADMIN, ['olive', 'dev', 'vic', 'bea', 'opal'], PASSWORD, { opal: 'operator' }));
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'shop', owner: 'olive' })).status, 201);
    assert.equal((await call('PUT', '/v1/teams/shop/members/dev', tokens.olive!, { role: 'developer' })).status, 200);
    assert.equal((await call('PUT', '/v1/teams/shop/members/vic', tokens.olive!, { role: 'viewer' })).status, 200);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'blog', owner: 'bea' })).status, 201);
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('developers set, viewers read, other teams and operators neither; owners remove', async () => {
    assert.equal((await call('PUT', '/v1/teams/shop/configs/web', tokens.vic!, { text: 'a' })).status, 403);
    assert.equal((await call('PUT', '/v1/teams/shop/configs/web', tokens.bea!, { text: 'a' })).status, 403);
    assert.equal((await call('PUT', '/v1/teams/shop/configs/web', tokens.opal!, { text: 'a' })).status, 403);
    assert.equal((await call('PUT', '/v1/teams/shop/configs/web', tokens.dev!, { text: 'port=80\nworkers=2\n', note: 'first' })).status, 200);
    assert.equal((await call('GET', '/v1/teams/shop/configs/web', tokens.vic!)).status, 200, 'a viewer reads it');
    for (const who of ['bea', 'opal']) assert.equal((await call('GET', '/v1/teams/shop/configs/web', tokens[who]!)).status, 403, who);
    assert.equal((await call('GET', '/v1/teams/shop/configs', tokens.opal!)).status, 403);
    assert.equal((await call('PUT', '/v1/teams/shop/configs/tmp', tokens.dev!, { values: { A: '1' } })).status, 200);
    assert.equal((await call('DELETE', '/v1/teams/shop/configs/tmp', tokens.dev!)).status, 403, 'developers do not remove');
    assert.equal((await call('DELETE', '/v1/teams/shop/configs/tmp', tokens.olive!)).status, 200);
  });

  test('bad input is a 400 naming the field; a config keeps its kind', async () => {
    const neither = await call('PUT', '/v1/teams/shop/configs/x', tokens.dev!, {});
    assert.equal(neither.status, 400);
    assert.equal((neither.body.problems as { path: string }[])[0]!.path, 'text');
    assert.equal((await call('PUT', '/v1/teams/shop/configs/x', tokens.dev!, { text: 'a', values: { A: 'b' } })).status, 400);
    const badKey = await call('PUT', '/v1/teams/shop/configs/x', tokens.dev!, { values: { '1A': 'b' } });
    assert.equal(badKey.status, 400);
    assert.equal((await call('PUT', '/v1/teams/shop/configs/x', tokens.dev!, { text: 'x'.repeat(256 * 1024 + 1) })).status, 400);
    assert.equal((await call('PUT', '/v1/teams/shop/configs/web', tokens.dev!, { values: { A: '1' } })).status, 409, 'a file config stays a file');
    assert.equal((await call('GET', '/v1/teams/shop/configs/web?version=abc', tokens.dev!)).status, 400);
    assert.equal((await call('GET', '/v1/teams/shop/configs/x', tokens.dev!)).status, 404, 'nothing stored');
  });

  test('versions, history, diff, rollback', async () => {
    assert.equal((await call('PUT', '/v1/teams/shop/configs/web', tokens.dev!, { text: 'port=80\nworkers=4\n' })).status, 200);
    const history = (await call('GET', '/v1/teams/shop/configs/web/history', tokens.vic!)).body.versions as { version: number; note?: string; text: string }[];
    assert.deepEqual(history.map((v) => [v.version, v.note]), [[1, 'first'], [2, undefined]]);
    const diff = await call('GET', '/v1/teams/shop/configs/web/diff?from=1', tokens.vic!);
    assert.deepEqual(diff.body, { from: 1, to: 2, changes: [{ path: 'line 2', kind: 'changed', from: 'workers=2', to: 'workers=4' }] });
    assert.equal((await call('POST', '/v1/teams/shop/configs/web/rollback', tokens.vic!, { version: 1 })).status, 403);
    const back = await call('POST', '/v1/teams/shop/configs/web/rollback', tokens.dev!, { version: 1 });
    assert.equal(back.status, 200, JSON.stringify(back.body));
    const current = (await call('GET', '/v1/teams/shop/configs/web', tokens.dev!)).body.config as { version: number; text: string; note: string };
    assert.deepEqual([current.version, current.text, current.note], [3, 'port=80\nworkers=2\n', 'rollback to version 1']);
    assert.equal((await call('POST', '/v1/teams/shop/configs/web/rollback', tokens.dev!, { version: 3 })).status, 409);
    assert.equal((await call('GET', '/v1/teams/shop/configs/web?version=9', tokens.dev!)).status, 404);
  });

  test("an apply uses only its team's configs of the right kind; a change rolls entries that restart and leaves those that reload in place", async () => {
    assert.equal((await call('PUT', '/v1/teams/blog/configs/theme', tokens.bea!, { text: 'dark' })).status, 200);
    const foreign = await call('POST', '/v1/apps', ADMIN, { app: 'thief', team: 'shop', entrypoints: { web: entry({ files: [{ path: '/etc/t', config: 'blog/theme' }] }) } });
    assert.equal(foreign.status, 400);
    assert.equal((foreign.body.problems as { path: string }[])[0]!.path, 'entrypoints.web.files[0].config');
    const both = await call('POST', '/v1/apps', ADMIN, { app: 'thief', team: 'shop', entrypoints: { web: entry({ files: [{ path: '/etc/t', config: 'shop/web', secret: 'shop/x' }] }) } });
    assert.equal(both.status, 400);
    const badHook = await call('POST', '/v1/apps', ADMIN, { app: 'thief', team: 'shop', entrypoints: { web: entry({ onConfigChange: { hook: { port: 'admin', path: '/reload' } } }) } });
    assert.deepEqual((badHook.body.problems as { path: string }[]).map((p) => p.path), ['entrypoints.web.onConfigChange.hook.port']);

    const spec = {
      app: 'site',
      team: 'shop',
      entrypoints: {
        restarts: entry({ files: [{ path: '/etc/web.conf', config: 'shop/web' }] }),
        reloads: entry({ files: [{ path: '/etc/web.conf', config: 'shop/web' }], onConfigChange: { signal: 'SIGHUP' } }),
      },
    };
    const applied = await call('POST', '/v1/apps', ADMIN, spec);
    assert.equal(applied.status, 201, JSON.stringify(applied.body));
    const entries = (applied.body.app as { spec: { entrypoints: Record<string, { files: { version?: number }[] }> } }).spec.entrypoints;
    assert.equal(entries.restarts!.files[0]!.version, 3, 'pinned: a change makes a release');
    assert.equal(entries.reloads!.files[0]!.version, undefined, 'not pinned: a change is done in place');

    const changed = await call('PUT', '/v1/teams/shop/configs/web', tokens.dev!, { text: 'port=8080\n' });
    assert.deepEqual(changed.body.rolled, [{ app: 'site', release: 2 }]);
    const { release } = (await call('GET', '/v1/apps/site/releases/2', ADMIN)).body as { release: { note: string; changes: { path: string }[] } };
    assert.equal(release.note, 'config shop/web changed (version 4)');
    assert.deepEqual(release.changes.map((c) => c.path), ['entrypoints.restarts.files'], 'the entry that reloads in place is not in the release');
    const listed = (await call('GET', '/v1/teams/shop/configs', tokens.vic!)).body.configs as { name: string; usedBy: string[] }[];
    assert.deepEqual(listed.find((c) => c.name === 'web')!.usedBy, ['site']);
    assert.equal((await call('DELETE', '/v1/teams/shop/configs/web', tokens.olive!)).status, 409, 'in use');
  });

  test('a config kept for one app or one env is used by it only; a scope that would leave out an app using it is refused', async () => {
    assert.equal((await call('PUT', '/v1/teams/shop/configs/prod-db', tokens.dev!, { values: { DB_HOST: 'db.prod' }, env: 'prod' })).status, 200);
    const inDev = await call('POST', '/v1/apps', ADMIN, { app: 'cart', team: 'shop', env: 'dev', entrypoints: { web: entry({ envFrom: [{ config: 'shop/prod-db' }] }) } });
    assert.equal(inDev.status, 400);
    assert.match(JSON.stringify(inDev.body.problems), /config shop\/prod-db is for env prod only \(this is app cart in env dev\)/);
    assert.equal((await call('POST', '/v1/apps', ADMIN, { app: 'cart', team: 'shop', env: 'prod', entrypoints: { web: entry({ envFrom: [{ config: 'shop/prod-db' }] }) } })).status, 201);
    const narrowed = await call('PUT', '/v1/teams/shop/configs/prod-db', tokens.dev!, { values: { DB_HOST: 'db.prod' }, app: 'billing' });
    assert.equal(narrowed.status, 409, 'cart uses it');
    assert.match(String(narrowed.body.error), /used by cart, which app billing in env prod only would leave out/);
    const kept = await call('PUT', '/v1/teams/shop/configs/prod-db', tokens.dev!, { values: { DB_HOST: 'db2.prod' } });
    assert.equal(kept.status, 200);
    assert.equal((kept.body.config as { env?: string }).env, 'prod', 'a new version keeps its scope unless told');
    const cli = (args: string[], input: string) => runCli(args, { GANTRY_SERVER: server.url, GANTRY_TOKEN: ADMIN, GANTRY_CONFIG: join(dir, 'cli.json') }, input);
    const scoped = await cli(['config', 'set', 'shop/cart-flags', '--app', 'cart', '--env', 'prod'], 'FAST=1\n');
    assert.equal(scoped.code, 0, scoped.stderr);
    assert.match(scoped.stdout, /config shop\/cart-flags version 1 stored \(for app cart in env prod only\)/);
    const lifted = await cli(['config', 'set', 'shop/cart-flags', '--app', ''], 'FAST=2\n');
    assert.match(lifted.stdout, /version 2 stored \(for env prod only\)/);
  });
});
