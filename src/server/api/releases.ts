// /v1/apps/:app/releases, /diff and /rollback.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requester, type ApiContext } from './context.js';

const App = z.object({ app: z.string() });
const Release = z.object({ app: z.string(), release: z.coerce.number().int().min(1) });
const DiffQuery = z.object({ from: z.coerce.number().int().min(1), to: z.coerce.number().int().min(1) });
const RollbackBody = z.object({ release: z.number().int().min(1).optional() }).default({});

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
    const result = await ctx.releases.rollback(app, release, requester(request));
    await ctx.replicas.reconcile();
    return result;
  });
}

export function rolloutRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/apps/:app/rollout', async (request) => ctx.rollouts.status(App.parse(request.params).app));
  for (const action of ['pause', 'resume', 'promote', 'abort'] as const) {
    server.post(`/v1/apps/:app/rollout/${action}`, async (request) => {
      const { app } = App.parse(request.params);
      const rollout = await ctx.rollouts[action](app, requester(request));
      await ctx.replicas.reconcile();
      return { rollout };
    });
  }
}
