// The web console's sign-in: a session token in an HttpOnly cookie instead of a header, and
// what a browser's ambient credential needs that a header does not. A cookie is sent by the
// browser with every request to this server, including ones another site makes it send, so a
// request that authenticates by cookie must also prove it comes from the console itself:
// - unsafe methods carry X-Gantry-CSRF, a value derived from the session (auth.csrfOf) that
//   the console holds in memory and another site cannot read;
// - an Origin, when the browser sends one, must be this server's, and a WebSocket upgrade must
//   send one (WebSockets ignore CORS: cross-site WebSocket hijacking);
// - Sec-Fetch-Site, when sent, must say same-origin (a same-site neighbour on another port, a
//   deployed app on this host, gets SameSite cookies too).
// A token in the Authorization header is never ambient, so none of this applies to it (the CLI).
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearer } from './auth.js';

export const SESSION_COOKIE = 'gantry_session';
export const CSRF_HEADER = 'x-gantry-csrf';

/** Where the request's token came from: the Authorization header (wins when both are sent) or the session cookie. */
export interface Credential {
  token: string;
  cookie: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The token the caller presented and how, set by the access check (logout ends it; whoami answers its CSRF value). */
    credential?: Credential;
  }
}

const UNSAFE: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function credentialOf(request: FastifyRequest): Credential | undefined {
  if (request.headers.authorization !== undefined) {
    const token = bearer(request.headers.authorization);
    return token === undefined ? undefined : { token, cookie: false };
  }
  const token = request.cookies?.[SESSION_COOKIE];
  return token ? { token, cookie: true } : undefined;
}

/** Why a request authenticated by the session cookie is refused, or undefined when it may go on. */
export function cookieRefusal(request: FastifyRequest, csrf: string): string | undefined {
  const origin = request.headers.origin;
  const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
  if (upgrade && origin === undefined) return 'a WebSocket signed in by cookie must send Origin';
  if (origin !== undefined && !sameOrigin(origin, request.headers.host)) return `cross-origin request refused: Origin ${origin.slice(0, 100)} is not this server`;
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `cross-origin request refused (Sec-Fetch-Site: ${site.slice(0, 20)})`;
  if (UNSAFE.has(request.method) && !equalText(request.headers[CSRF_HEADER], csrf)) return 'missing or wrong X-Gantry-CSRF header';
  return undefined;
}

/**
 * Whether Origin names the host the browser sent this request to. The scheme is not compared: a
 * TLS-terminating proxy in front talks plain HTTP to the server, and one host:port is one server.
 */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    return new URL(origin).host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}

function equalText(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Sets the session cookie (Secure when this request came over TLS). */
export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, token: string, expiresAt: number): void {
  reply.setCookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/', maxAge: Math.max(0, Math.floor((expiresAt - Date.now()) / 1000)), secure: request.protocol === 'https' });
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.setCookie(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 0, secure: request.protocol === 'https' });
}
