// Who may call which route, decided once, on the route the router matched, before any handler
// runs, by the policy table (policy.ts: route → action → resource). Deny by default: a route the
// table does not name is for admins only; `public` routes are an explicit, short allow-list. Deciding on the matched route (not on the raw URL) means every
// spelling of a path the router accepts (percent-encoded, any case it folds) gets the same
// answer as the path itself, and a path that matches nothing is refused before a 404 can tell
// an anonymous caller what exists.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Caller, TokenAuth } from './auth.js';
import { cookieRefusal, credentialOf } from './session-cookie.js';
import { CONSOLE_ROUTE, isConsolePath } from './api/console.js';
import { decide, decideBeforeBody, ruleFor, type Rule, type TeamScope } from './policy.js';

/** How a route is reached, for listings and tests: the policy table's action, summed up. */
export type Access = 'public' | 'agent' | 'person' | 'list' | 'policy';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, set by the access check on every non-public route (also when it then refuses: the audit trail names who was refused). */
    caller?: Caller;
  }
}

/** One route as the router holds it, with who may call it. */
export interface RouteEntry {
  method: string;
  url: string;
  access: Access;
}

/**
 * Whether the request found no route of its own: the router's 404, or the console's catch-all
 * reached by a path that is not the console's (an API path spelled oddly is unknown, not a page).
 */
export function matchesNoRoute(request: FastifyRequest): boolean {
  return request.is404 || (request.routeOptions.url === CONSOLE_ROUTE && !isConsolePath(request.url));
}

/**
 * Installs the check on every route (and on the not-found handler), and returns the live list
 * of registered routes: register this before any route.
 */
export function installAccessCheck(server: FastifyInstance, auth: TokenAuth, teams: TeamScope): RouteEntry[] {
  const routes: RouteEntry[] = [];
  server.addHook('onRoute', (route) => {
    const url = route.url ?? route.path;
    for (const method of [route.method].flat()) routes.push({ method, url, access: accessOf(ruleFor(method, url)) });
  });
  server.addHook('onRequest', async (request, reply) => {
    const unmatched = matchesNoRoute(request);
    const rule: Rule = unmatched ? { action: 'do', kind: 'cluster', verb: 'read' } : ruleFor(request.method, request.routeOptions.url ?? '');
    if (rule.action === 'public') return;
    const credential = credentialOf(request);
    const caller = auth.verify(credential?.token);
    if (!caller || !credential) return refuse(reply, 401, 'missing or unknown token: send Authorization: Bearer <token> (gantry up prints the admin token on first start; people sign in with gantry login)');
    // An API, agent or robot token belongs in a header: only a sign-in session rides in the cookie.
    if (credential.cookie && !auth.isSession(credential.token)) return refuse(reply, 401, 'the session cookie holds no sign-in session: sign in again');
    // A cookie is sent by the browser whoever made it send the request: prove it is the console's.
    const cookieProblem = credential.cookie ? cookieRefusal(request, auth.csrfOf(credential.token)) : undefined;
    if (cookieProblem) return refuse(reply, 403, cookieProblem);
    request.credential = credential;
    if (unmatched) return refuse(reply, 404, `no route ${request.method} ${pathOf(request)}`);
    // Known from here on, refused or not: the audit trail names who was refused.
    request.caller = caller;
    // What the body names is decided once the route has read it (mayApply); here only whether the caller may write anywhere.
    if (rule.action === 'do' && rule.inBody) {
      const decision = decideBeforeBody(caller, rule, teams);
      return decision.allowed ? undefined : refuse(reply, 403, `${decision.why} (${request.method} ${request.routeOptions.url})`);
    }
    const resource = rule.action === 'do' && rule.param ? (request.params as Record<string, string> | undefined)?.[rule.param] : undefined;
    const decision = decide(caller, rule, typeof resource === 'string' ? resource.slice(0, 256) : undefined, teams);
    if (!decision.allowed) return refuse(reply, 403, `${decision.why} (${request.method} ${request.routeOptions.url})`);
  });
  return routes;
}

function accessOf(rule: Rule): Access {
  return rule.action === 'public' ? 'public' : rule.action === 'agent' ? 'agent' : rule.action === 'self' ? 'person' : rule.action === 'list' ? 'list' : 'policy';
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
