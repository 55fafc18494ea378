// /v1/approvals: changes waiting for an owner's approval, and each team's rule of which envs
// need it. Who may approve (an owner of the app's team, not the one who asked, or an admin) is
// decided by the approval service on the stored request, since a proposal may create an app the
// policy table cannot look up yet.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { name } from '../../model/names.js';
import { MAX_GATED_ENVS } from '../services/approvals.js';
import { reconcileAfter, requester, type ApiContext } from './context.js';
import { AppParams } from './params.js';

const ListQuery = z.object({ team: name('team').optional() });
const RejectBody = z.strictObject({ reason: z.string().max(500, 'reason: at most 500 characters').optional() }).default({});
const TeamParams = z.object({ team: name('team') });
const RequireApproval = z.strictObject({ envs: z.array(name('env')).max(MAX_GATED_ENVS, `envs: at most ${MAX_GATED_ENVS}`) });

export function approvalRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/approvals', async (request) => {
    const { team } = ListQuery.parse(request.query);
    return { approvals: await ctx.approvals.list(request.caller!, team) };
  });

  server.post('/v1/approvals/:app/approve', async (request) => {
    const { app } = AppParams.parse(request.params);
    const approved = await ctx.approvals.approve(app, request.caller!);
    await reconcileAfter(ctx, request);
    return approved;
  });

  server.post('/v1/approvals/:app/reject', async (request) => {
    const { app } = AppParams.parse(request.params);
    const { reason } = RejectBody.parse(request.body ?? {});
    return { rejected: await ctx.approvals.reject(app, request.caller!, reason) };
  });

  server.put('/v1/teams/:team/require-approval', async (request) => {
    const { team } = TeamParams.parse(request.params);
    const { envs } = RequireApproval.parse(request.body ?? {});
    return { team, requireApproval: await ctx.approvals.setRequired(team, envs, requester(request)) };
  });
}
