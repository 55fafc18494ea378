// What goes into the audit log (services/audit.ts): every request that asks for a change (any
// method but GET and HEAD) from a caller the server could identify, refused or not, and every
// sign-in attempt. Recorded once the answer is sent, so the outcome is in it. Requests without a
// valid token are not (they name nobody, and an anonymous flood must not flood the log too);
// failed sign-ins are, under the user name they tried.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditRecord } from '../model/types.js';
import type { ClusterState } from './state.js';
import type { AuditLog } from './services/audit.js';
import { teamOfSpec } from '../model/spec.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** What a route adds to its audit entry once it knows: the target a body named, a summary of the change (never a value). */
    auditDetail?: { target?: Record<string, string>; summary?: string };
  }
}

const LOGIN = '/v1/login';
/** Made a user and signed them in: audited like a sign-in, under the name asked for (never the code). */
const ACCEPT_INVITATION = '/v1/invitations/accept';
/** Changes in name only: an outside service renewing its registry lease every few seconds would bury the log. */
const NOT_AUDITED: ReadonlySet<string> = new Set(['POST /v1/registry/leases/:lease/keepalive']);
/** Reads recorded like changes: who read which secret's value (or was refused it). */
const READS_AUDITED: ReadonlySet<string> = new Set(['GET /v1/teams/:team/secrets/:name']);

export function installAuditTrail(server: FastifyInstance, audit: AuditLog, state: ClusterState): void {
  server.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (!route || request.is404) return;
    const login = route === LOGIN || route === ACCEPT_INVITATION;
    const auditedRead = (request.method === 'GET' || request.method === 'HEAD') && READS_AUDITED.has(`GET ${route}`);
    if (!login && !auditedRead && (request.method === 'GET' || request.method === 'HEAD' || NOT_AUDITED.has(`${request.method} ${route}`))) return;
    const caller = request.caller;
    if (!caller && !login) return;
    const target = { ...targetOf(request), ...request.auditDetail?.target };
    const status = reply.statusCode;
    const entry: AuditRecord = {
      time: Date.now(),
      who: caller?.user ?? caller?.name ?? triedUser(request),
      ...(caller ? { role: caller.role } : {}),
      ...(caller?.user ? { user: caller.user } : {}),
      method: request.method,
      route,
      target,
      ...(request.auditDetail?.summary ? { summary: request.auditDetail.summary.slice(0, 512) } : {}),
      status,
      outcome: status < 400 ? 'ok' : status === 401 || status === 403 || status === 429 ? 'refused' : 'failed',
      from: request.ip,
      ms: Math.round(reply.elapsedTime),
    };
    const team = teamOf(state, target);
    if (team !== undefined) entry.team = team;
    audit.append(entry);
  });
}

/** The route's parameters (which app, node, user …), each cut to a sane length. */
function targetOf(request: FastifyRequest): Record<string, string> {
  const target: Record<string, string> = {};
  const params = (request.params ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(params).slice(0, 8)) if (typeof value === 'string') target[key.slice(0, 32)] = value.slice(0, 256);
  return target;
}

/** The user name a sign-in tried (never the password). */
function triedUser(request: FastifyRequest): string {
  const asked = request.body as { user?: unknown; name?: unknown } | undefined;
  const user = asked?.user ?? asked?.name;
  return typeof user === 'string' && user.length > 0 ? user.slice(0, 64) : 'anonymous';
}

function teamOf(state: ClusterState, target: Record<string, string>): string | undefined {
  if (target.team !== undefined) return state.teams.has(target.team) ? target.team : undefined;
  const app = target.app ?? (target.id !== undefined ? state.instances.get(target.id)?.app : undefined);
  const record = app === undefined ? undefined : state.apps.get(app);
  return record && teamOfSpec(record.spec);
}
