// Who may call which route, decided once, on the route the router matched, before any handler
// runs. Deny by default: a route that says nothing is for admins only; `public` routes are an
// explicit, short allow-list. Deciding on the matched route (not on the raw URL) means every
// spelling of a path the router accepts (percent-encoded, any case it folds) gets the same
// answer as the path itself, and a path that matches nothing is refused before a 404 can tell
// an anonymous caller what exists.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bearer, type Caller, type TokenAuth } from './auth.js';

/**
 * public: no token (health, the API document, signing in). agent: the node agent connection (an
 * agent token bound to a node, a join token, or an admin token). person: a signed-in user's own
 * session (who am I, sign out), admin or not. admin: everything else.
 */
export type Access = 'public' | 'agent' | 'person' | 'admin';

/** Route options for routes that are not admin-only: `server.get(url, { config: access('public') }, ...)`. */
export const access = (level: Access) => ({ access: level });

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** The verified caller; set by the access check on every non-public route. */
    caller?: Caller;
  }
}

const ROLES_FOR: Record<Exclude<Access, 'public'>, readonly Caller['role'][]> = {
  agent: ['agent', 'join', 'admin'],
  person: ['admin', 'member'],
  admin: ['admin'],
};

/** One route as the router holds it, with who may call it. */
export interface RouteEntry {
  method: string;
  url: string;
  access: Access;
}

/**
 * Installs the check on every route (and on the not-found handler), and returns the live list
 * of registered routes: register this before any route.
 */
export function installAccessCheck(server: FastifyInstance, auth: TokenAuth): RouteEntry[] {
  const routes: RouteEntry[] = [];
  server.addHook('onRoute', (route) => {
    const level = route.config?.access ?? 'admin';
    for (const method of [route.method].flat()) routes.push({ method, url: route.url ?? route.path, access: level });
  });
  server.addHook('onRequest', async (request, reply) => {
    const level = request.is404 ? 'admin' : (request.routeOptions.config.access ?? 'admin');
    if (level === 'public') return;
    const caller = auth.verify(bearer(request.headers.authorization));
    if (!caller) return refuse(reply, 401, 'missing or unknown token: send Authorization: Bearer <token> (gantry up prints the admin token on first start)');
    if (request.is404) return refuse(reply, 404, `no route ${request.method} ${pathOf(request)}`);
    if (!ROLES_FOR[level].includes(caller.role)) return refuse(reply, 403, `a${caller.role === 'admin' || caller.role === 'agent' ? 'n' : ''} ${caller.role} token cannot use ${request.method} ${request.routeOptions.url}`);
    request.caller = caller;
  });
  return routes;
}

function pathOf(request: FastifyRequest): string {
  const path = request.url.split('?')[0] ?? '';
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

/**
 * Answers and closes the connection: a refused client must not keep a socket open by
 * trickling the body of a request that was already answered.
 */
export function refuse(reply: FastifyReply, status: number, error: string): FastifyReply {
  return reply.code(status).header('connection', 'close').send({ error });
}
