// Personal tokens (a user's own, for scripts on their laptop: they act as the user, narrowed by
// a scope) and robot tokens (a team's, for its CI: they act in that team only, as a developer or
// viewer, narrowed by a scope). Both may expire. Made from a sign-in session only: a token
// cannot make another token, so a leaked read-only token cannot mint a stronger one.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TOKEN_NAME, TOKEN_NAME_RULE } from '../../model/names.js';
import { DURATION_PATTERN, parseDuration } from '../../model/units.js';
import { requester, type ApiContext } from './context.js';
import { TeamParams } from './params.js';
import { SCOPE_ITEM, SCOPE_WORDS } from '../policy.js';
import { ForbiddenError } from '../errors.js';
import type { Caller } from '../auth.js';

const MAX_TTL_MS = 366 * 24 * 3_600_000;
const Label = z.string().regex(TOKEN_NAME, `token name: ${TOKEN_NAME_RULE}`);

const Scope = z
  .array(z.string().max(64))
  .min(1, 'scope: at least one item')
  .max(32, 'scope: at most 32 items')
  .default(['read'])
  .transform((items, ctx) => {
    const out = new Set<string>();
    items.forEach((item, i) => {
      if (Object.hasOwn(SCOPE_WORDS, item)) for (const word of SCOPE_WORDS[item]!) out.add(word);
      else if (SCOPE_ITEM.test(item)) out.add(item);
      else ctx.addIssue({ code: 'custom', path: [i], message: `"${item.slice(0, 64)}": read, write, all, or <kind>:<verb> (kind or verb may be *; e.g. app:write, log:read)` });
    });
    return [...out];
  });

const ExpiresIn = z
  .string()
  .regex(DURATION_PATTERN, 'expiresIn: a duration such as "720h" (30 days) or "12h"')
  .refine((text) => {
    const ms = parseDuration(text)!;
    return ms >= 60_000 && ms <= MAX_TTL_MS;
  }, 'expiresIn: between 1m and 8784h (366 days)')
  .optional();

const PersonalBody = z.strictObject({ name: Label, scope: Scope, expiresIn: ExpiresIn });
const RobotBody = z.strictObject({ name: Label, role: z.enum(['developer', 'viewer']).default('viewer'), scope: Scope, expiresIn: ExpiresIn });
const MyToken = z.object({ name: Label });
const TeamToken = TeamParams.extend({ name: Label });

/** The caller as a signed-in person (a session, not a token): who may make and revoke tokens. */
function sessionUser(caller: Caller, what: string): string {
  if (caller.user === undefined || caller.scope !== undefined || caller.robot) throw new ForbiddenError(`${caller.name} may not ${what}: tokens are made and revoked from a sign-in session (gantry login), not with a token`);
  return caller.user;
}

const expiry = (expiresIn: string | undefined) => (expiresIn === undefined ? undefined : Date.now() + parseDuration(expiresIn)!);

export function scopedTokenRoutes(server: FastifyInstance, ctx: ApiContext): void {
  const me = (request: FastifyRequest) => {
    const caller = request.caller!;
    if (caller.user === undefined) throw new ForbiddenError(`${caller.name} is no user: personal tokens belong to people`);
    return caller.user;
  };

  server.get('/v1/me/tokens', async (request) => ({ tokens: await ctx.auth.listScoped({ purpose: 'personal', user: me(request) }) }));

  server.post('/v1/me/tokens', async (request, reply) => {
    const user = sessionUser(request.caller!, 'make a personal token');
    const { name, scope, expiresIn } = PersonalBody.parse(request.body ?? {});
    const { token, info } = await ctx.auth.createScoped({ purpose: 'personal', user, role: request.caller!.role }, name, scope, expiry(expiresIn));
    ctx.events.note({ level: 'info', type: 'token.created', message: `personal token "${name}" of ${user} (scope ${scope.join(', ')}) created` });
    return reply.code(201).send({ ...info, token });
  });

  server.delete('/v1/me/tokens/:name', async (request) => {
    const user = sessionUser(request.caller!, 'revoke a personal token');
    const { name } = MyToken.parse(request.params);
    const revoked = await ctx.auth.revokeScoped({ purpose: 'personal', user }, name);
    ctx.events.note({ level: 'warning', type: 'token.revoked', message: `personal token "${name}" of ${user} revoked` });
    return { revoked };
  });

  server.get('/v1/teams/:team/tokens', async (request) => {
    const { team } = TeamParams.parse(request.params);
    ctx.teams.get(team);
    return { tokens: await ctx.auth.listScoped({ purpose: 'robot', team }) };
  });

  server.post('/v1/teams/:team/tokens', async (request, reply) => {
    sessionUser(request.caller!, 'make a robot token');
    const { team } = TeamParams.parse(request.params);
    ctx.teams.get(team);
    const { name, role, scope, expiresIn } = RobotBody.parse(request.body ?? {});
    const { token, info } = await ctx.auth.createScoped({ purpose: 'robot', team, teamRole: role }, name, scope, expiry(expiresIn));
    ctx.events.note({ level: 'info', type: 'token.created', message: `robot token "${name}" of team ${team} (${role}, scope ${scope.join(', ')}) created by ${requester(request)}` });
    return reply.code(201).send({ ...info, token });
  });

  server.delete('/v1/teams/:team/tokens/:name', async (request) => {
    sessionUser(request.caller!, 'revoke a robot token');
    const { team, name } = TeamToken.parse(request.params);
    const revoked = await ctx.auth.revokeScoped({ purpose: 'robot', team }, name);
    ctx.events.note({ level: 'warning', type: 'token.revoked', message: `robot token "${name}" of team ${team} revoked by ${requester(request)}` });
    return { revoked };
  });
}
