// /v1/apps: apply, list, show, scale, stop, start, remove.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppDetailResponse, AppListResponse, ApplyResponse } from '../../model/api.js';
import { appSummary, instanceView } from '../services/views.js';
import { applyAuthorizer, reconcileAfter, requester, visibleTo, type ApiContext } from './context.js';
import { AppParams, EntryParams } from './params.js';

const ScaleBody = z.object({ replicas: z.number().int().min(0).max(10_000) });

const unplacedCount = (ctx: ApiContext) => (app: string, entry: string) => ctx.replicas.unplaced.get(app)?.find((u) => u.entry === entry)?.count ?? 0;

export function appRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.post('/v1/apps', async (request, reply): Promise<ApplyResponse> => {
    const result = await ctx.apps.apply(request.body as string | object, requester(request), { authorize: applyAuthorizer(ctx, request) });
    request.auditDetail = { target: { app: result.app.name }, summary: releaseSummary(result) };
    if (result.changed) await reconcileAfter(ctx, request);
    reply.code(result.created ? 201 : 200);
    return result;
  });

  server.get('/v1/apps', async (request): Promise<AppListResponse> => {
    const visible = visibleTo(ctx, request, 'app');
    return { apps: [...ctx.state.apps.values()].filter((app) => visible(app.name)).sort((a, b) => a.name.localeCompare(b.name)).map((app) => appSummary(ctx.state, app, unplacedCount(ctx))) };
  });

  server.get('/v1/apps/:app', async (request): Promise<AppDetailResponse> => {
    const { app: name } = AppParams.parse(request.params);
    const app = ctx.apps.get(name);
    return {
      app,
      summary: appSummary(ctx.state, app, unplacedCount(ctx)),
      instances: ctx.state.instancesOf(name).map((i) => instanceView(ctx.state, i)),
      unplaced: ctx.replicas.unplaced.get(name) ?? [],
    };
  });

  server.post('/v1/apps/:app/entries/:entry/scale', async (request) => {
    const { app, entry } = EntryParams.parse(request.params);
    const { replicas } = ScaleBody.parse(request.body);
    const record = await ctx.apps.scale(app, entry, replicas, requester(request));
    request.auditDetail = { summary: `${entry}: ${replicas} replicas` };
    await reconcileAfter(ctx, request);
    return { app: record };
  });

  for (const action of ['stop', 'start'] as const) {
    server.post(`/v1/apps/:app/${action}`, async (request) => {
      const { app } = AppParams.parse(request.params);
      const record = await ctx.apps.setStopped(app, action === 'stop', requester(request));
      await reconcileAfter(ctx, request);
      return { app: record };
    });
  }

  server.delete('/v1/apps/:app', async (request, reply) => {
    const { app } = AppParams.parse(request.params);
    await ctx.apps.remove(app, requester(request));
    await reconcileAfter(ctx, request);
    reply.code(202);
    return { removed: app };
  });
}

/** An apply in a line for the audit log: which release, and which fields it changed (never their values). */
function releaseSummary(result: ApplyResponse): string {
  if (!result.changed) return 'unchanged';
  const what = result.created ? 'created' : result.changes ? `changed ${result.changes.slice(0, 12).join(', ')}${result.changes.length > 12 ? ', …' : ''}` : 'replicas';
  return `release ${result.app.release}: ${what}`;
}
