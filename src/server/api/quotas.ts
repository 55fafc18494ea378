// /v1/teams/:team/quota and /v1/quotas: a team's limits with its use now. Admins set and clear
// them; the team's members, operators and admins read them (the policy table decides).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NAME, name } from '../../model/names.js';
import { size } from '../../model/spec-fields.js';
import { requester, type ApiContext } from './context.js';
import type { QuotaScope } from '../services/quotas.js';
import { body, conflict, list, matching, object, ok, op, pathParam, queryParam } from './openapi-helpers.js';

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

export function quotaPaths(): Record<string, object> {
  const limits = object({
    cpu: { type: 'number', minimum: 0, maximum: MAX_CPU, description: 'CPUs: the sum of replicas × resources.cpu' },
    memory: { type: 'integer', minimum: 1, description: 'Bytes: the sum of replicas × resources.memory' },
    instances: { type: 'integer', minimum: 0, maximum: MAX_INSTANCES, description: 'The sum of replicas' },
  });
  const use = object({ cpu: { type: 'number' }, memory: { type: 'integer' }, instances: { type: 'integer' } }, ['cpu', 'memory', 'instances']);
  const view = object({
    team: { type: 'string' },
    quota: object({ team: { type: 'string' }, envs: { type: 'object', additionalProperties: limits, description: 'env → its limits' }, total: limits, updatedAt: { type: 'integer' }, updatedBy: { type: 'string' } }),
    use: object({ envs: { type: 'object', additionalProperties: use }, total: use }),
  }, ['team', 'use']);
  const teamParam = pathParam('team', matching(NAME), 'Team name');
  const answer = ok("The team's quota (absent: unlimited) and what its apps use now, per env and in total", view);
  return {
    '/v1/quotas': { get: op({ summary: 'Every team with a quota or apps: limits and use (admins, operators)', responses: { '200': ok('Quotas', object({ quotas: list(view) })) } }) },
    '/v1/teams/{team}/quota': {
      get: op({ summary: "A team's quota and use (its members, operators, admins)", parameters: [teamParam], responses: { '200': answer } }),
      put: op({
        summary: "Set a team's limits for one env, or (no env) for all its envs together, replacing that scope's limits; a resource left out is unlimited (admins)",
        parameters: [teamParam],
        requestBody: body({ env: matching(NAME), cpu: { type: 'number', minimum: 0, maximum: MAX_CPU }, memory: { oneOf: [{ type: 'integer', minimum: 1 }, { type: 'string', description: 'e.g. 64Gi, 512Mi, 1G' }] }, instances: { type: 'integer', minimum: 0, maximum: MAX_INSTANCES } }),
        responses: { '200': answer },
      }),
      delete: op({
        summary: "Clear a team's quota: all of it, one env's limits (`env`), or the total (`total=true`) (admins)",
        parameters: [teamParam, queryParam('env', matching(NAME)), queryParam('total', { type: 'string', enum: ['true'] })],
        responses: { '200': answer, ...conflict('The quota changed while it was being cleared') },
      }),
    },
  };
}
