// /v1/nodes, /v1/events, the reconcile figures and /metrics (a list, or a Server-Sent Events stream with follow).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { EventListResponse, NodeListResponse } from '../../model/api.js';
import { nodeView } from '../services/views.js';
import { visibleTo, type ApiContext } from './context.js';
import type { PassFigures } from '../controllers/replicas.js';
import { openEventStream } from './streams.js';
import { summarize } from '../../model/inspection.js';

const EventsQuery = z.object({
  app: z.string().max(256).optional(),
  instance: z.string().max(256).optional(),
  node: z.string().max(256).optional(),
  since: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  follow: z.enum(['1', 'true', '0', 'false']).optional().transform((v) => v === '1' || v === 'true'),
});

export function clusterRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/nodes', async (): Promise<NodeListResponse> => {
    const inspections = await ctx.inspections.all();
    return {
      nodes: [...ctx.state.nodes.keys()].sort().map((name) => {
        const usage = ctx.usage.ofNode(name);
        return {
          ...nodeView(ctx.state, name, ctx.agents.contact(name).heardAt)!,
          checks: summarize(inspections.get(name), ctx.agents.inspects(name) === false),
          ...(usage ? { usage } : {}),
        };
      }),
    };
  });

  // What the reconcile passes cost (the leader's own timing): how the control plane keeps up.
  server.get('/v1/server/reconcile', async (): Promise<PassFigures> => ctx.replicas.passFigures());

  // The server's own metrics for Prometheus to scrape (metrics.ts says what and why).
  server.get('/metrics', async (_request, reply) => reply.type(ctx.metrics.contentType).send(await ctx.metrics.text()));

  server.get('/v1/events', async (request, reply): Promise<EventListResponse | void> => {
    const query = { ...EventsQuery.parse(request.query), visible: visibleTo(ctx, request, 'event') };
    const lastEventId = Number(request.headers['last-event-id']);
    const since = Number.isInteger(lastEventId) && lastEventId > 0 ? lastEventId : query.since;
    if (!query.follow) return { events: await ctx.events.list({ ...query, since, limit: query.limit ?? (since === undefined ? 100 : undefined) }) };

    const stream = openEventStream(ctx.streams, request, reply, 'gantry events');
    try {
      let start = since;
      if (start === undefined) {
        // Without a position, start with the recent history, then follow.
        const recent = await ctx.events.list({ ...query, limit: query.limit ?? 20 });
        for (const event of recent) stream.send('gantry', event.seq!, event);
        start = recent.at(-1)?.seq ?? (await ctx.state.currentRevision());
      }
      const watcher = ctx.events.follow({ ...query, since: start }, (event) => stream.send('gantry', event.seq!, event));
      stream.onClose(() => watcher.close());
    } catch (err) {
      // The stream's 200 is sent: ending it is the only way left to say it failed (the store is
      // unreadable or closing); the client resumes with Last-Event-ID.
      request.log.warn(`an event stream was ended: ${(err as Error).message}`);
      reply.raw.destroy();
    }
  });
}
