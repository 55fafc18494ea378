// /v1/teams/:team/quota and /v1/quotas: a team's limits with its use now. Admins set and clear
// them; the team's members, operators and admins read them (the policy table decides).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { name } from '../../model/names.js';
import { size } from '../../model/spec-fields.js';
import { requester, type ApiContext } from './context.js';
import type { QuotaScope } from '../services/quotas.js';

const TeamParams = z.object({ team: name('team') });

/** Far beyond any cluster, and still exact in thousandths of a CPU. */
const MAX_CPU = 1_000_000;
const MAX_INSTANCES = 10_000_000;

const SetQuota = z
  .strictObject({
    env: name('env').optional(),
    cpu: z.number().min(0, 'cpu must be 0 or more').max(MAX_CPU, `cpu: at most ${MAX_CPU}`).optional(),
    memory: size(2 ** 50, '1024Ti').optional(),
    instances: z.number().int('instances must be a whole number').min(0, 'instances must be 0 or more').max(MAX_INSTANCES, `instances: at most ${MAX_INSTANCES}`).optional(),
  })
  .refine((q) => q.cpu !== undefined || q.memory !== undefined || q.instances !== undefined, 'give at least one limit: cpu, memory or instances');

const RemoveQuery = z
  .strictObject({ env: name('env').optional(), total: z.enum(['true']).optional() })
  .refine((q) => !(q.env && q.total), 'env or total, not both');

export function quotaRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/quotas', async () => ({ quotas: await ctx.quotas.list() }));

  server.get('/v1/teams/:team/quota', async (request) => ctx.quotas.view(TeamParams.parse(request.params).team));

  server.put('/v1/teams/:team/quota', async (request) => {
    const { team } = TeamParams.parse(request.params);
    const { env, ...limits } = SetQuota.parse(request.body ?? {});
    const scope: QuotaScope = env !== undefined ? { env } : { total: true };
    return ctx.quotas.set(team, scope, limits, requester(request));
  });

  server.delete('/v1/teams/:team/quota', async (request) => {
    const { team } = TeamParams.parse(request.params);
    const query = RemoveQuery.parse(request.query ?? {});
    const scope: QuotaScope | undefined = query.env !== undefined ? { env: query.env } : query.total ? { total: true } : undefined;
    return ctx.quotas.remove(team, scope, requester(request));
  });
}
