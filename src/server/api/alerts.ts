// Alerts and silences. Lists answer what the caller may see: a member their teams' apps'
// alerts, operators and admins every alert, cluster alerts (about nodes) too. A silence on an
// app needs write on that app; a silence naming no app (cluster rules, nodes) is for operators
// and admins, who may write nodes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { name, nodeName } from '../../model/names.js';
import { SEVERITIES } from '../../model/spec-alerts.js';
import { DURATION_PATTERN, parseLongDuration } from '../../model/units.js';
import { teamOfSpec } from '../../model/spec.js';
import { ForbiddenError, NotFoundError } from '../errors.js';
import { decide, type Rule } from '../policy.js';
import { teamScope } from '../services/teams.js';
import type { AlertService } from '../alerts/service.js';
import { requester, visibleTo, type ApiContext } from './context.js';

const MAX_SILENCE_MS = 30 * 24 * 3_600_000;

const AlertsQuery = z.object({ app: name('app').optional(), node: nodeName().optional() });

const SilenceBody = z.strictObject({
  matchers: z
    .strictObject({
      rule: name('rule').optional(),
      app: name('app').optional(),
      entry: name('entry').optional(),
      node: nodeName().optional(),
      severity: z.enum(SEVERITIES).optional(),
    })
    .refine((m) => Object.keys(m).length > 0, 'at least one matcher: rule, app, entry, node or severity'),
  for: z
    .string()
    .refine((v) => DURATION_PATTERN.test(v) || /^\d{1,3}d$/.test(v), 'expected a duration such as "2h" or "1d"')
    .transform((v) => parseLongDuration(v)!)
    .pipe(z.number().min(1000, 'at least 1s').max(MAX_SILENCE_MS, 'at most 30d')),
  comment: z.string().max(500, 'at most 500 characters').regex(/^[^\x00-\x1f\x7f]*$/, 'no control characters').optional(),
});

const SilenceParams = z.object({ id: z.string().regex(/^[0-9a-f]{8}$/, 'id: a silence id from gantry alert silences') });

function service(ctx: ApiContext): AlertService {
  if (!ctx.alerts) throw new NotFoundError('this server runs no alert evaluation');
  return ctx.alerts;
}

/** Write on the app a silence names; without one, write on nodes (operators and admins). */
function maySilence(ctx: ApiContext, request: FastifyRequest, app: string | undefined): void {
  const rule: Rule = { action: 'do', kind: app ? 'app' : 'node', verb: 'write' };
  const decision = decide(request.caller!, rule, app, teamScope(ctx.state));
  if (!decision.allowed) throw new ForbiddenError(app ? decision.why : `${decision.why} (a silence that names no app covers cluster alerts: operators and admins)`);
}

export function alertRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/alerts', async (request) => {
    const query = AlertsQuery.parse(request.query);
    return { alerts: service(ctx).list(visibleTo(ctx, request, 'event'), query) };
  });

  server.get('/v1/alert-silences', async (request) => ({ silences: service(ctx).listSilences(visibleTo(ctx, request, 'event')) }));

  server.post('/v1/alert-silences', async (request, reply) => {
    const body = SilenceBody.parse(request.body);
    maySilence(ctx, request, body.matchers.app);
    const record = body.matchers.app ? ctx.state.apps.get(body.matchers.app) : undefined;
    const matchers = Object.fromEntries(Object.entries(body.matchers).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const silence = await service(ctx).silence({ matchers, endsAt: Date.now() + body.for, comment: body.comment, createdBy: requester(request), team: record ? teamOfSpec(record.spec) : undefined });
    return reply.code(201).send({ silence });
  });

  server.delete('/v1/alert-silences/:id', async (request) => {
    const { id } = SilenceParams.parse(request.params);
    const silence = service(ctx).getSilence(id);
    if (!silence || !visibleTo(ctx, request, 'event')(silence.matchers.app)) throw new NotFoundError(`no silence ${id}`);
    maySilence(ctx, request, silence.matchers.app);
    await service(ctx).unsilence(id, requester(request));
    return { removed: id };
  });
}
