// People: signing in and out (/v1/login is public: it is how a person gets a token), who am I,
// and the users an admin manages. Passwords go in, never out; only their scrypt hashes are kept.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { name } from '../../model/names.js';
import { DURATION_PATTERN, parseDuration } from '../../model/units.js';
import type { CookieLoginResponse, LoginResponse, WhoAmI } from '../../model/api.js';
import type { Caller } from '../auth.js';
import { clearSessionCookie, setSessionCookie } from '../session-cookie.js';
import { decide, ruleOfWords } from '../policy.js';
import { teamScope } from '../services/teams.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../passwords.js';
import { requester, type ApiContext } from './context.js';

const MAX_SESSION_MS = 30 * 24 * 3_600_000;
export const password = z.string().min(MIN_PASSWORD_LENGTH, `password: at least ${MIN_PASSWORD_LENGTH} characters`).max(MAX_PASSWORD_LENGTH, `password: at most ${MAX_PASSWORD_LENGTH} characters`);
const UserParams = z.object({ name: name('user') });
const Login = z.strictObject({
  // Any name may be tried (an unknown one is a 401 like a wrong password; for the company
  // directory it is escaped), but not a huge one or one that could forge event log lines.
  user: z.string().min(1, 'user: a user name').max(256, 'user: at most 256 characters').regex(/^[^\p{Cc}]*$/u, 'user: no control characters'),
  // Not the creation rules: a wrong password of any length is just wrong, an empty one too
  // (it is never sent to the directory: an LDAP bind with no password "succeeds").
  password: z.string().max(MAX_PASSWORD_LENGTH),
  ttl: z.string().regex(DURATION_PATTERN, 'ttl: a duration such as "12h"').refine((t) => { const ms = parseDuration(t) ?? 0; return ms >= 60_000 && ms <= MAX_SESSION_MS; }, 'ttl: between 1m and 30 days').optional(),
  // The web console: the session goes into an HttpOnly cookie, never into the answer (session-cookie.ts).
  session: z.literal('cookie', { message: 'session: "cookie" or absent' }).optional(),
});
const CanI = z.object({ verb: z.string().max(32), resource: z.string().max(300), as: name('user').optional() });
const AuditQuery = z.object({
  user: z.string().max(64).optional(),
  team: name('team').optional(),
  since: z.string().regex(DURATION_PATTERN, 'since: a duration such as "30m" or "168h"').optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(1000),
});
const CreateUser = z.strictObject({ name: name('user'), password, role: z.enum(['admin', 'operator', 'member']).default('member') });
const UpdateUser = z.strictObject({ password: password.optional(), role: z.enum(['admin', 'operator', 'member']).optional() }).refine((b) => b.password !== undefined || b.role !== undefined, 'give a password, a role or both');

export function userRoutes(server: FastifyInstance, ctx: ApiContext): void {
  // Small bodies only: anyone may call this, and a password is short.
  server.post('/v1/login', { bodyLimit: 16 * 1024 }, async (request, reply): Promise<LoginResponse | CookieLoginResponse> => {
    const { user, password: given, ttl, session } = Login.parse(request.body ?? {});
    const signedIn = await ctx.users.signIn(user, given, request.ip, ttl === undefined ? undefined : parseDuration(ttl)!);
    if (session !== 'cookie') return signedIn;
    setSessionCookie(request, reply, signedIn.token, signedIn.expiresAt);
    return { user: signedIn.user, role: signedIn.role, expiresAt: signedIn.expiresAt, csrf: ctx.auth.csrfOf(signedIn.token) };
  });

  server.post('/v1/logout', async (request, reply) => {
    const credential = request.credential!;
    const ended = await ctx.auth.endSession(credential.token);
    if (!ended) return reply.code(400).send({ error: 'this token is an API token, not a session: revoke it with gantry token rm' });
    if (credential.cookie) clearSessionCookie(request, reply);
    ctx.terminals.endSignedIn(credential.token);
    ctx.events.note({ level: 'info', type: 'auth.logout', message: `${requester(request)} signed out` });
    return { ended: true };
  });

  server.get('/v1/whoami', async (request): Promise<WhoAmI> => {
    const caller = request.caller!;
    const credential = request.credential!;
    const teams = caller.user ? teamScope(ctx.state).teamsOf(caller.user).map(([team, role]) => ({ team, role })) : [];
    return {
      name: caller.name,
      role: caller.role,
      ...(caller.user ? { user: caller.user, teams } : {}),
      ...(credential.cookie ? { csrf: ctx.auth.csrfOf(credential.token) } : {}),
    };
  });

  server.get('/v1/auth/can-i', async (request, reply) => {
    const { verb, resource, as } = CanI.parse(request.query);
    const asked = ruleOfWords(verb, resource);
    if ('problem' in asked) return reply.code(400).send({ error: asked.problem });
    const caller = request.caller!;
    let subject: Pick<Caller, 'role' | 'name' | 'user'> = caller;
    if (as !== undefined && as !== caller.user) {
      if (caller.role !== 'admin') return reply.code(403).send({ error: 'only admins may ask about someone else (--as)' });
      const user = await ctx.users.find(as);
      if (!user) return reply.code(404).send({ error: `no user named "${as}"` });
      subject = { name: user.name, role: user.role, user: user.name };
    }
    return { as: subject.name, role: subject.role, ...decide(subject, asked.rule, asked.resource, teamScope(ctx.state)) };
  });

  server.get('/v1/audit', async (request) => {
    const { user, team, since, limit } = AuditQuery.parse(request.query);
    return { entries: await ctx.audit.list({ user, team, since: since === undefined ? undefined : Date.now() - parseDuration(since)!, limit }) };
  });

  server.get('/v1/users', async () => ({ users: await ctx.users.list() }));

  server.post('/v1/users', async (request, reply) => {
    const body = CreateUser.parse(request.body ?? {});
    return reply.code(201).send({ user: await ctx.users.create(body.name, body.password, body.role, requester(request)) });
  });

  server.patch('/v1/users/:name', async (request) => {
    const { name: user } = UserParams.parse(request.params);
    const updated = await ctx.users.update(user, UpdateUser.parse(request.body ?? {}), requester(request));
    ctx.terminals.endUser(user, `the password or role of ${user} changed`);
    return { user: updated };
  });

  server.delete('/v1/users/:name', async (request) => {
    const { name: user } = UserParams.parse(request.params);
    await ctx.users.remove(user, requester(request));
    ctx.terminals.endUser(user, `user ${user} was removed`);
    await ctx.teams.forgetUser(user, requester(request));
    return { removed: user };
  });
}
