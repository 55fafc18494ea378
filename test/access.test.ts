// Deny by default, on the matched route: every route the router holds, now or later, is called
// with no token, a wrong token, an agent token and a join token, and with its path spelled in
// every other way a router might accept (percent-encoding, doubled slashes, dot segments, case,
// trailing slash, %2f); none of them may reach a handler.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { startServer, type RunningServer } from '../src/server/main.js';
import { rawRequest } from './helpers/api.js';
import type { RouteEntry } from '../src/server/access.js';
import { POLICY } from '../src/server/policy.js';

const ADMIN = 'gty_access_test_admin_token';
/** A valid value for each path parameter, so a request matches its route. */
const SAMPLE: Record<string, string> = { app: 'shop', entry: 'web', id: 'shop-web-0a1b2c3d', name: 'n1', lease: 'abc123', release: '1' };

function concrete(url: string): string {
  return url.replace(/:([a-z]+)/g, (_m, param: string) => SAMPLE[param] ?? 'x');
}

/** Other spellings of a path that a lenient router could take for it. */
export function spellings(path: string): string[] {
  const out = new Set<string>();
  const pct = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  for (let i = 1; i < path.length; i++) {
    if (path[i] === '/') continue;
    out.add(path.slice(0, i) + pct(path[i]!) + path.slice(i + 1)); // one character encoded
    out.add(path.slice(0, i) + pct(path[i]!).toUpperCase() + path.slice(i + 1));
  }
  out.add([...path].map((c) => (c === '/' ? c : pct(c))).join('')); // every character encoded
  out.add(path.replace(/\//g, '//'));
  out.add(path.replace(/^\//, '//'));
  out.add(path.replace(/\/([^/]+)$/, '/./$1'));
  out.add(path.replace(/^\/v1\//, '/v1/../v1/'));
  out.add(path.toUpperCase());
  out.add(path.replace(/^\/v1/, '/V1'));
  out.add(`${path}/`);
  out.add(path.replace(/\/(?=[^/]*$)/, '%2f'));
  out.add(path.replace(/\//g, '%2F'));
  out.add(`${path};x=1`);
  out.add(`${path}%00`);
  out.add(`${path}#frag`);
  out.delete(path);
  return [...out];
}

const raw = rawRequest;

describe('access: deny by default on the matched route', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-access-'));
  let server: RunningServer;
  let routes: RouteEntry[];
  let agentToken = '';
  let joinToken = '';

  before(async () => {
    server = await startServer({ dataDir: dir, port: 0, bootstrapToken: ADMIN });
    routes = server.routes();
    const made = async (body: object) => {
      const response = await fetch(`${server.url}/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(response.status, 201);
      return ((await response.json()) as { token: string }).token;
    };
    agentToken = await made({ name: 'n1', role: 'agent' });
    joinToken = await made({ name: 'joiner', role: 'join' });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the router holds the routes we expect, and only /healthz, /openapi.json, the console\'s files, signing in and accepting an invitation are public', () => {
    assert.ok(routes.length > 30, `only ${routes.length} routes`);
    const open = routes.filter((r) => r.access === 'public').map((r) => `${r.method} ${r.url}`).sort();
    assert.deepEqual(open, ['GET /*', 'GET /healthz', 'GET /openapi.json', 'HEAD /*', 'HEAD /healthz', 'HEAD /openapi.json', 'POST /v1/invitations/accept', 'POST /v1/login']);
    assert.deepEqual(routes.filter((r) => r.access === 'person' && r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`).sort(), [
      'DELETE /v1/alert-silences/:id', 'DELETE /v1/invitations/:id', 'DELETE /v1/me/tokens/:name',
      'GET /v1/approvals', 'GET /v1/auth/can-i', 'GET /v1/invitations', 'GET /v1/me/tokens', 'GET /v1/whoami',
      'POST /v1/alert-silences', 'POST /v1/approvals/:app/approve', 'POST /v1/approvals/:app/reject', 'POST /v1/invitations', 'POST /v1/logout', 'POST /v1/me/tokens',
    ]);
    // Lists every person may ask for, answered with what the policy lets each see.
    assert.deepEqual(routes.filter((r) => r.access === 'list' && r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`).sort(), ['GET /v1/alert-silences', 'GET /v1/alerts', 'GET /v1/apps', 'GET /v1/discovery/prometheus', 'GET /v1/events', 'GET /v1/instances', 'GET /v1/metrics/instances', 'GET /v1/pools', 'GET /v1/registry', 'GET /v1/teams', 'GET /v1/usage', 'GET /v1/watch']);
    assert.deepEqual(routes.filter((r) => r.access === 'agent').map((r) => `${r.method} ${r.url}`).sort(), ['GET /v1/agent/connect', 'HEAD /v1/agent/connect']);
  });

  test('every route is in the policy table, and the table names no route the router lacks', () => {
    const held = new Set(routes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`));
    assert.deepEqual([...held].filter((route) => !Object.hasOwn(POLICY, route)), [], 'routes the policy table does not name (they would be admin-only by default)');
    assert.deepEqual(Object.keys(POLICY).filter((route) => !held.has(route)), [], 'table rows for routes that do not exist');
  });

  test('every route refuses no token, a wrong token, an agent token and a join token', async () => {
    for (const route of routes.filter((r) => r.access !== 'public')) {
      const path = concrete(route.url);
      const what = `${route.method} ${path}`;
      assert.equal((await raw(server.port, route.method, path)).status, 401, `${what} without a token`);
      assert.equal((await raw(server.port, route.method, path, { authorization: 'Bearer gty_wrong' })).status, 401, `${what} with a wrong token`);
      assert.equal((await raw(server.port, route.method, path, { authorization: `Basic ${ADMIN}` })).status, 401, `${what} with the admin token under another scheme`);
      if (route.access === 'agent') continue; // the agent connection: see the WebSocket test below
      for (const [role, token] of [['agent', agentToken], ['join', joinToken]]) {
        const refused = await raw(server.port, route.method, path, { authorization: `Bearer ${token}` });
        assert.equal(refused.status, 403, `${what} with a ${role} token: ${refused.body}`);
      }
    }
  });

  test('no spelling of any route gets past the check without a token', async () => {
    let tried = 0;
    for (const route of routes.filter((r) => r.access !== 'public' && r.method !== 'HEAD')) {
      for (const path of spellings(concrete(route.url))) {
        const response = await raw(server.port, route.method, path);
        tried++;
        assert.ok([400, 401].includes(response.status), `${route.method} ${path}: ${response.status} ${response.body}`);
      }
    }
    assert.ok(tried > 500, `only ${tried} spellings tried`);
    // And nothing happened: no token was created, no app exists.
    const tokens = (await (await fetch(`${server.url}/v1/tokens`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { tokens: unknown[] };
    assert.equal(tokens.tokens.length, 3);
  });

  test('the percent-encoded path of the report answers 401 and creates nothing', async () => {
    const response = await fetch(`${server.url}/%76%31/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', role: 'admin' }) });
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('connection'), 'close');
  });

  test('an unknown path is 401 without a token and 404 with one (other paths are the web console\'s: console-static.test.ts)', async () => {
    for (const path of ['/v1/nothing', '/v2/apps', '/V1/tokens', '/v1/apps/shop/nothing', '/.env', '/%2e%2e/etc/passwd']) {
      assert.equal((await raw(server.port, 'GET', path)).status, 401, path);
      assert.equal((await raw(server.port, 'GET', path, { authorization: `Bearer ${ADMIN}` })).status, 404, path);
      assert.equal((await raw(server.port, 'GET', path, { authorization: `Bearer ${agentToken}` })).status, 404, path);
    }
  });

  test('the agent connection upgrade is refused without a token, on other paths, and for an admin route token mix-up', async () => {
    const upgrade = (path: string, token?: string) => {
      const headers: Record<string, string> = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
      if (token) headers.authorization = `Bearer ${token}`;
      return new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers, agent: false });
        req.on('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    };
    assert.equal(await upgrade('/v1/agent/connect'), 401);
    assert.equal(await upgrade('/v1/agent/connect', 'gty_wrong'), 401);
    for (const path of spellings('/v1/agent/connect')) assert.ok([400, 401].includes(await upgrade(path)), path);
    assert.equal(await upgrade('/v1/apps', agentToken), 403);
    assert.equal(await upgrade('/v1/agent/other', ADMIN), 404);
    assert.equal(await upgrade('/v1/agent/connect', agentToken), 101);
  });

  test('every route is in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const missing = routes
      .filter((r) => r.method !== 'HEAD')
      // The console's catch-all `/*` is `/{path}` in OpenAPI's words.
      .filter((r) => !doc.paths[r.url.replace(/:([a-z]+)/g, '{$1}').replace(/\*$/, '{path}')]?.[r.method.toLowerCase()])
      .map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(missing, []);
  });
});
