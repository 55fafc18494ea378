// The OpenAPI document's part for people and the web console: signing in and out (by token or
// by cookie), who am I, the console's files, and the terminal into an instance.
import { DURATION_PATTERN } from '../../model/units.js';
import { INSTANCE_ID } from '../../model/names.js';
import { body, error, errors, list, matching, object, ok, op, pathParam, queryParam } from './openapi-helpers.js';

const role = { type: 'string', enum: ['admin', 'operator', 'member'] };

export function consolePaths(): Record<string, object> {
  return {
    '/v1/login': {
      post: {
        summary: 'Sign in as a user: a session token that expires (no token needed)',
        description:
          'The same 401 for an unknown user and a wrong password (an empty one too). After 5 failures within 5 minutes for one user name (20 from one address), its sign-ins are refused with 429 for a while. With a company directory configured (--directory), a name that is no local user with a password is signed in through the directory; 503 when it does not answer.\n\n' +
          'With `"session": "cookie"` (the web console) the token is set as the cookie `gantry_session` (HttpOnly, SameSite=Strict, Path=/, Max-Age its lifetime, Secure over TLS) and the answer holds `csrf` instead of the token: requests by that cookie send it as `X-Gantry-CSRF` on POST, PUT, PATCH and DELETE (else 403), and may not come from another origin (Origin, Sec-Fetch-Site; a WebSocket must send Origin).',
        security: [],
        requestBody: body(
          {
            user: { type: 'string', minLength: 1, maxLength: 256 },
            password: { type: 'string', maxLength: 1024 },
            ttl: { type: 'string', pattern: DURATION_PATTERN.source, description: 'session length, 1m to 30 days (default 12h)' },
            session: { type: 'string', enum: ['cookie'], description: 'the web console: the session goes into an HttpOnly cookie, never into the answer' },
          },
          ['user', 'password'],
        ),
        responses: {
          '200': ok(
            'Signed in: the token (by default), or `csrf` and the cookie (`"session": "cookie"`)',
            object({ user: { type: 'string' }, role, token: { type: 'string' }, csrf: { type: 'string' }, expiresAt: { type: 'integer' } }, ['user', 'role', 'expiresAt']),
          ),
          '400': errors['400'],
          '401': error('Wrong user name or password'),
          '429': error('Too many failed sign-ins for this user or from this address lately'),
          '503': error('The company directory did not answer (directory users only; local users sign in as always)'),
        },
      },
    },
    '/v1/logout': {
      post: op({ summary: "End the caller's session (its token stops working); by cookie, the cookie is cleared and the session's terminals close", responses: { '200': ok('Ended', object({ ended: { type: 'boolean' } })) } }),
    },
    '/v1/whoami': {
      get: op({
        summary: "Who the token belongs to: its name and role; a session's user and their teams; a cookie session's CSRF value (a reloaded console gets it back)",
        responses: { '200': ok('The caller', object({ name: { type: 'string' }, role: { type: 'string' }, user: { type: 'string' }, teams: list(object({ team: { type: 'string' }, role: { type: 'string', enum: ['owner', 'developer', 'viewer'] } })), csrf: { type: 'string' } }, ['name', 'role'])) },
      }),
    },
    '/v1/instances/{id}/exec': {
      get: op({
        summary: 'A terminal in an instance: a WebSocket to a shell (`sh`) in its container or working directory, run by its node\'s agent',
        description:
          'Allowed to whoever may write the instance (its team\'s owners and developers, admins). Client → server text frames: `{"type":"input","data":"…"}` (at most 64 KiB of data), `{"type":"resize","cols":N,"rows":N}` (1–1000 each). Server → client: `{"type":"output","data":"…"}`, `{"type":"exit","code":N}`, `{"type":"error","message":"…"}`; the socket then closes. A session ends when either side closes, the instance is removed, its agent goes away or the session signs out. Each session is audited (who, instance, start, end, bytes in and out). Too many open terminals for the caller or the node: an error message, then close.',
        parameters: [
          pathParam('id', matching(INSTANCE_ID), 'Instance id'),
          queryParam('cols', { type: 'integer', minimum: 1, maximum: 1000, default: 80 }, 'terminal width'),
          queryParam('rows', { type: 'integer', minimum: 1, maximum: 1000, default: 24 }, 'terminal height'),
        ],
        responses: { '101': { description: 'Switching protocols: the terminal' } },
      }),
    },
    '/{path}': {
      get: {
        summary: 'The web console: its built files, and index.html for any other path that is not the API\'s (client-side routes)',
        description: 'No token needed (the files hold no data). Served with Content-Security-Policy (default-src \'self\', frame-ancestors \'none\'), X-Content-Type-Options: nosniff, Referrer-Policy: same-origin. Paths under /v1/, /metrics, /agent, and odd spellings of them, are not the console\'s: they answer like any unknown path (401 without a token, 404 with one). Without a build, a short page says that `npm run build` makes it.',
        security: [],
        parameters: [pathParam('path', { type: 'string' }, 'any path that is not the API\'s')],
        responses: { '200': { description: 'A file, or index.html', content: { 'text/html': { schema: { type: 'string' } } } }, '404': error('A path naming a file that is not there') },
      },
    },
  };
}
