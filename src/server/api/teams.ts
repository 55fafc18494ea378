// /v1/teams: teams and their members. An admin makes and removes teams; a team's owners manage
// its members (the policy table decides, on the team named in the path).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { name } from '../../model/names.js';
import { requester, type ApiContext } from './context.js';

import { TeamParams } from './params.js';
const MemberParams = z.object({ team: name('team'), user: name('user') });
const CreateTeam = z.strictObject({ name: name('team'), owner: name('user').optional() });
const SetMember = z.strictObject({ role: z.enum(['owner', 'developer', 'viewer']) });

export function teamRoutes(server: FastifyInstance, ctx: ApiContext): void {
  // Everyone signed in may list teams: admins and operators see all, others the ones they are in.
  server.get('/v1/teams', async (request) => {
    const caller = request.caller!;
    return { teams: ctx.teams.list(caller.role === 'admin' || caller.role === 'operator' ? undefined : (caller.user ?? '\0')) };
  });

  server.post('/v1/teams', async (request, reply) => {
    const body = CreateTeam.parse(request.body ?? {});
    return reply.code(201).send({ team: await ctx.teams.create(body.name, body.owner, requester(request)) });
  });

  server.get('/v1/teams/:team', async (request) => ({ team: ctx.teams.get(TeamParams.parse(request.params).team) }));

  server.delete('/v1/teams/:team', async (request) => {
    const { team } = TeamParams.parse(request.params);
    await ctx.teams.remove(team, requester(request));
    await ctx.auth.revokeTeamTokens(team);
    return { removed: team };
  });

  server.put('/v1/teams/:team/members/:user', async (request) => {
    const { team, user } = MemberParams.parse(request.params);
    const { role } = SetMember.parse(request.body ?? {});
    return { team: await ctx.teams.setMember(team, user, role, requester(request)) };
  });

  server.delete('/v1/teams/:team/members/:user', async (request) => {
    const { team, user } = MemberParams.parse(request.params);
    return { team: await ctx.teams.removeMember(team, user, requester(request)) };
  });
}
