// /v1/apps/:app/releases, /diff and /rollback.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { applyAuthorizer, reconcileAfter, requester, type ApiContext } from './context.js';
import { AppParams as App, ReleaseParams as Release } from './params.js';

const releaseNumber = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const DiffQuery = z.object({ from: releaseNumber, to: releaseNumber });
const RollbackBody = z.strictObject({ release: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional() }).default({});

export function releaseRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/apps/:app/releases', async (request) => {
    const { app } = App.parse(request.params);
    return { releases: await ctx.releases.history(app) };
  });

  server.get('/v1/apps/:app/releases/:release', async (request) => {
    const { app, release } = Release.parse(request.params);
    return { release: await ctx.releases.get(app, release) };
  });

  server.get('/v1/apps/:app/diff', async (request) => {
    const { app } = App.parse(request.params);
    const { from, to } = DiffQuery.parse(request.query);
    return { from, to, changes: await ctx.releases.compare(app, from, to) };
  });

  server.post('/v1/apps/:app/rollback', async (request) => {
    const { app } = App.parse(request.params);
    const { release } = RollbackBody.parse(request.body ?? {});
    // An old release may name another team: rolling back to it moves the app, which needs write in both.
    const result = await ctx.releases.rollback(app, release, requester(request), applyAuthorizer(ctx, request));
    request.auditDetail = { summary: `release ${result.from} → release ${result.to} again, as release ${result.release}` };
    await reconcileAfter(ctx, request);
    return result;
  });
}

export function rolloutRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/apps/:app/rollout', async (request) => ctx.rollouts.status(App.parse(request.params).app));
  for (const action of ['pause', 'resume', 'promote', 'abort'] as const) {
    server.post(`/v1/apps/:app/rollout/${action}`, async (request) => {
      const { app } = App.parse(request.params);
      const rollout = await ctx.rollouts[action](app, requester(request));
      await reconcileAfter(ctx, request);
      return { rollout };
    });
  }
}
