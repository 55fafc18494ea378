// The web console's session: signed in by an HttpOnly cookie, unsafe calls proved by the CSRF
// value, cross-origin browsers refused, the CLI's bearer tokens unchanged. A real server over
// real HTTP (and a real WebSocket handshake).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../src/server/main.js';
import { STORE } from '../src/server/keys.js';

const ADMIN = 'gty_console_session_admin_token';
const PASSWORD = 'correct horse battery staple';

interface Sent {
  status: number;
  body: Record<string, any>;
  setCookie: string[];
}

describe('console sessions (cookie + CSRF)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-console-session-'));
  let server: RunningServer;

  const send = async (method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Sent> => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : {}, setCookie: response.headers.getSetCookie() };
  };
  const cookieLogin = async (user: string) => {
    const answer = await send('POST', '/v1/login', {}, { user, password: PASSWORD, session: 'cookie' });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const token = /^gantry_session=([^;]+)/.exec(answer.setCookie[0] ?? '')?.[1];
    assert.ok(token, answer.setCookie.join('\n'));
    return { cookie: `gantry_session=${token}`, token, csrf: answer.body.csrf as string, answer };
  };

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    for (const [name, role] of [['ada', 'admin'], ['bea', 'admin'], ['cy', 'member']] as const) {
      assert.equal((await send('POST', '/v1/users', { authorization: `Bearer ${ADMIN}` }, { name, password: PASSWORD, role })).status, 201);
    }
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('signing in with "session": "cookie" sets an HttpOnly SameSite=Strict cookie and answers no token', async () => {
    const { answer, token, csrf } = await cookieLogin('ada');
    assert.deepEqual(Object.keys(answer.body).sort(), ['csrf', 'expiresAt', 'role', 'user']);
    assert.equal(answer.body.user, 'ada');
    assert.ok(!JSON.stringify(answer.body).includes(token));
    assert.ok(csrf.length >= 32 && csrf !== token);
    const attributes = answer.setCookie[0]!.split(';').map((a) => a.trim().toLowerCase());
    for (const attribute of ['httponly', 'samesite=strict', 'path=/']) assert.ok(attributes.includes(attribute), answer.setCookie[0]);
    const maxAge = Number(attributes.find((a) => a.startsWith('max-age='))?.slice(8));
    assert.ok(maxAge > 11 * 3600 && maxAge <= 12 * 3600, `Max-Age ${maxAge}: the 12 h default`);
    assert.ok(!attributes.includes('secure'), 'plain HTTP: Secure would make the browser drop it');
    // Without the field, the CLI's sign-in is as it was: the token in the body, no cookie.
    const cli = await send('POST', '/v1/login', {}, { user: 'ada', password: PASSWORD });
    assert.equal(typeof cli.body.token, 'string');
    assert.deepEqual(cli.setCookie, []);
    const bad = await send('POST', '/v1/login', {}, { user: 'ada', password: PASSWORD, session: 'header' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /session/);
  });

  test('a cookie session reads without CSRF; whoami gives back its CSRF value and teams; a bearer session gets no csrf', async () => {
    const admin = { authorization: `Bearer ${ADMIN}` };
    assert.equal((await send('POST', '/v1/teams', admin, { name: 't-cy' })).status, 201);
    assert.equal((await send('PUT', '/v1/teams/t-cy/members/cy', admin, { role: 'viewer' })).status, 200);
    const { cookie, csrf } = await cookieLogin('cy');
    const me = await send('GET', '/v1/whoami', { cookie });
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.deepEqual(me.body, { name: 'cy', role: 'member', user: 'cy', teams: [{ team: 't-cy', role: 'viewer' }], csrf });
    const bearer = (await send('POST', '/v1/login', {}, { user: 'cy', password: PASSWORD })).body.token as string;
    const viaHeader = await send('GET', '/v1/whoami', { authorization: `Bearer ${bearer}` });
    assert.equal(viaHeader.status, 200);
    assert.equal(viaHeader.body.csrf, undefined);
  });

  test('an unsafe call by cookie needs the session\'s own CSRF header: none 403, wrong 403, another session\'s 403, right 201', async () => {
    const ada = await cookieLogin('ada');
    const bea = await cookieLogin('bea');
    const create = (name: string, headers: Record<string, string>) => send('POST', '/v1/teams', { cookie: ada.cookie, ...headers }, { name });
    const none = await create('t-none', {});
    assert.equal(none.status, 403);
    assert.equal(none.body.error, 'missing or wrong X-Gantry-CSRF header');
    assert.equal((await create('t-wrong', { 'x-gantry-csrf': 'x'.repeat(43) })).status, 403);
    assert.equal((await create('t-other', { 'x-gantry-csrf': bea.csrf })).status, 403, 'the CSRF value of another session');
    const right = await create('t-right', { 'x-gantry-csrf': ada.csrf });
    assert.equal(right.status, 201, JSON.stringify(right.body));
    // A token in the Authorization header needs no CSRF value (not ambient: the CLI, scripts).
    assert.equal((await send('POST', '/v1/teams', { authorization: `Bearer ${ADMIN}` }, { name: 't-bearer' })).status, 201);
    // A header wins over the cookie: the cookie cannot smuggle CSRF-free writes behind a bad header.
    assert.equal((await send('POST', '/v1/teams', { authorization: 'Bearer nonsense', cookie: ada.cookie, 'x-gantry-csrf': ada.csrf }, { name: 't-both' })).status, 401);
  });

  test('a cookie with a made-up or garbage token, or an API token, is a 401', async () => {
    assert.equal((await send('GET', '/v1/whoami', { cookie: 'gantry_session=gty_madeup' })).status, 401);
    assert.equal((await send('GET', '/v1/whoami', { cookie: `gantry_session=${'%'.repeat(3000)}` })).status, 401);
    assert.equal((await send('GET', '/v1/whoami', { cookie: 'gantry_session=' })).status, 401);
    // A valid API token is still no session: tokens belong in the Authorization header.
    const notSession = await send('GET', '/v1/whoami', { cookie: `gantry_session=${ADMIN}` });
    assert.equal(notSession.status, 401);
    assert.match(JSON.stringify(notSession.body), /holds no sign-in session/);
  });

  test('cross-origin requests by cookie are refused: Origin of another site, Sec-Fetch-Site, an SSE stream, a WebSocket', async () => {
    const { cookie } = await cookieLogin('ada');
    const own = server.url;
    assert.equal((await send('GET', '/v1/whoami', { cookie, origin: own })).status, 200);
    assert.equal((await send('GET', '/v1/whoami', { cookie, origin: 'http://evil.example' })).status, 403);
    assert.equal((await send('GET', '/v1/whoami', { cookie, origin: own.replace('127.0.0.1', 'localhost') })).status, 403);
    assert.equal((await send('GET', '/v1/whoami', { cookie, 'sec-fetch-site': 'same-site' })).status, 403);
    assert.equal((await send('GET', '/v1/whoami', { cookie, 'sec-fetch-site': 'same-origin' })).status, 200);
    const sse = await send('GET', '/v1/events?follow=true', { cookie, origin: 'http://evil.example', accept: 'text/event-stream' });
    assert.equal(sse.status, 403);
    // The same with a bearer token is not a browser's ambient credential: no Origin rule.
    assert.equal((await send('GET', '/v1/whoami', { authorization: `Bearer ${ADMIN}`, origin: 'http://evil.example' })).status, 200);

    const handshake = (headers: Record<string, string>, origin?: string) =>
      new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(`${own.replace('http', 'ws')}/v1/agent/connect`, { headers, ...(origin ? { origin } : {}) });
        socket.on('unexpected-response', (_req, response) => {
          resolve(response.statusCode ?? 0);
          socket.terminate();
        });
        socket.on('open', () => {
          resolve(101);
          socket.close();
        });
        socket.on('error', (err) => (err.message.includes('Unexpected server response') ? undefined : reject(err)));
      });
    assert.equal(await handshake({ cookie }, 'http://evil.example'), 403, 'cross-site WebSocket hijacking');
    assert.equal(await handshake({ cookie }), 403, 'a cookie WebSocket without Origin');
    assert.equal(await handshake({ cookie }, own), 101, 'the console itself');
  });

  test('logout with the cookie ends the session and clears the cookie', async () => {
    const { cookie, csrf } = await cookieLogin('ada');
    const out = await send('POST', '/v1/logout', { cookie, 'x-gantry-csrf': csrf });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.match(out.setCookie[0] ?? '', /^gantry_session=;.*Max-Age=0/i);
    assert.equal((await send('GET', '/v1/whoami', { cookie })).status, 401);
  });

  test('an expired session is refused', async () => {
    const { cookie, token } = await cookieLogin('bea');
    assert.equal((await send('GET', '/v1/whoami', { cookie })).status, 200);
    // Age the stored session (the server keeps only its hash): as if its 12 hours had passed.
    const key = STORE.tokens.key(createHash('sha256').update(token).digest('hex').slice(0, 16));
    const record = STORE.tokens.decode((await server.store.get(key))!.value);
    await server.store.put(key, STORE.tokens.encode({ ...record, expiresAt: Date.now() - 1000 }));
    await cookieLogin('bea'); // a sign-in reloads the server's tokens
    assert.equal((await send('GET', '/v1/whoami', { cookie })).status, 401);
  });
});
