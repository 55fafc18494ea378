// The web console's files: served from the build directory at /, index.html for client-side
// routes, with the security headers; nothing outside the directory; the API's paths stay the
// API's. Real servers over real HTTP, pointed at a temporary build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/main.js';
import { rawRequest } from './helpers/api.js';

const ADMIN = 'gty_console_static_admin_token';
const INDEX = '<!doctype html><title>console under test</title><script type="module" src="/assets/app-3f9a.js"></script>';

const raw = rawRequest;

describe('the web console is served', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-console-static-'));
  const web = join(dir, 'web');
  let server: RunningServer;
  let unbuilt: RunningServer;

  before(async () => {
    mkdirSync(join(web, 'assets'), { recursive: true });
    writeFileSync(join(web, 'index.html'), INDEX);
    writeFileSync(join(web, 'assets', 'app-3f9a.js'), 'console.log("console");\n');
    writeFileSync(join(dir, 'secret.txt'), 'outside the web directory');
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN, webDir: web });
    unbuilt = await startServer({ dataDir: join(dir, 'unbuilt'), port: 0, bootstrapToken: ADMIN, webDir: join(dir, 'no-such-dir') });
  });
  after(async () => {
    await server.close();
    await unbuilt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('/ and any client-side route answer index.html with the security headers, without a token', async () => {
    for (const path of ['/', '/apps', '/apps/shop/logs', '/nodes/n1?tab=instances', '/admin']) {
      const page = await raw(server.port, 'GET', path);
      assert.equal(page.status, 200, path);
      assert.equal(page.body, INDEX, path);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      const csp = String(page.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/, 'no inline or remote scripts');
      assert.equal(page.headers['x-content-type-options'], 'nosniff');
      assert.equal(page.headers['referrer-policy'], 'same-origin');
      assert.equal(page.headers['cache-control'], 'no-cache', 'a new build is seen at the next load');
    }
    assert.equal((await raw(server.port, 'HEAD', '/')).status, 200);
  });

  test('built assets are served with a long cache; a missing one is a 404, not the page', async () => {
    const script = await raw(server.port, 'GET', '/assets/app-3f9a.js');
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /javascript/);
    assert.match(String(script.headers['cache-control']), /immutable/);
    assert.equal((await raw(server.port, 'GET', '/assets/gone-1234.js')).status, 404);
    assert.equal((await raw(server.port, 'GET', '/favicon.ico')).status, 404);
  });

  test('nothing outside the directory, no dotfiles, and the API paths stay the API\'s', async () => {
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e%2f%2e%2e%2fsecret.txt', '/..%2fsecret.txt', '/.env', '//etc/passwd']) {
      const answer = await raw(server.port, 'GET', path);
      assert.ok(!answer.body.includes('outside the web directory'), `${path}: ${answer.status} ${answer.body}`);
      assert.ok(answer.status === 401 || answer.body === INDEX, `${path}: ${answer.status} ${answer.body}`);
    }
    for (const path of ['/v1/nothing', '/v1', '/V1/apps', '/metrics/x', '/agent', '/v2/apps']) {
      assert.equal((await raw(server.port, 'GET', path)).status, 401, path);
      assert.equal((await raw(server.port, 'GET', path, { authorization: `Bearer ${ADMIN}` })).status, 404, path);
    }
    // Only GETs: a POST to a console path is an unknown route.
    assert.equal((await raw(server.port, 'POST', '/apps')).status, 401);
    // The API still answers JSON, now with nosniff too.
    const healthz = await raw(server.port, 'GET', '/healthz');
    assert.equal(healthz.status, 200);
    assert.equal(healthz.headers['x-content-type-options'], 'nosniff');
  });

  test('without a build, / says how to make one', async () => {
    const page = await raw(unbuilt.port, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.body, /npm run build/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.match((await raw(unbuilt.port, 'GET', '/apps/shop')).body, /npm run build/);
  });
});
