// Operator actions on nodes and pools, and the capacity query.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { capacity, entryRequest } from '../../scheduler/index.js';
import { snapshotOf } from '../reconcile/snapshot.js';
import { NotFoundError } from '../errors.js';
import { nodeView } from '../services/views.js';
import { reconcileAfter, requester, visibleTo, type ApiContext } from './context.js';
import { EntryParams, NodeParams as Node, PoolParams } from './params.js';
import { instanceId, name as nameOf, nodeName } from '../../model/names.js';

export function nodeRoutes(server: FastifyInstance, ctx: ApiContext): void {
  for (const [action, state] of [['cordon', 'cordoned'], ['uncordon', 'ready'], ['drain', 'draining']] as const) {
    server.post(`/v1/nodes/:name/${action}`, async (request) => {
      const { name } = Node.parse(request.params);
      await ctx.nodes.setState(name, state, requester(request));
      await reconcileAfter(ctx, request);
      return { node: nodeView(ctx.state, name, ctx.agents.contact(name).heardAt) };
    });
  }

  // Instances nodes run that this server does not know (its store was emptied or replaced): list, adopt, forget.
  server.get('/v1/nodes/:name/unassigned', async (request) => {
    const { name } = Node.parse(request.params);
    return { unassigned: ctx.adoption.list(name).map(({ record, ...about }) => ({ ...about, adoptable: record !== undefined })) };
  });

  server.post('/v1/nodes/adopt', async (request) => {
    const { nodes } = z.strictObject({ nodes: z.array(nodeName()).max(10_000).default([]) }).parse(request.body ?? {});
    const chosen = nodes.length > 0 ? nodes : ctx.agents.nodesWithUnassigned();
    const result = await ctx.adoption.adopt(chosen, requester(request));
    await reconcileAfter(ctx, request);
    return { nodes: chosen, ...result };
  });

  server.post('/v1/nodes/:name/forget', async (request) => {
    const { name } = Node.parse(request.params);
    const { ids } = z.strictObject({ ids: z.array(instanceId()).max(10_000).optional() }).parse(request.body ?? {});
    return { forgotten: await ctx.adoption.forget(name, ids, requester(request)) };
  });

  server.put('/v1/nodes/:name/dedication', async (request) => {
    const { name } = Node.parse(request.params);
    const { app } = z.strictObject({ app: nameOf('app').nullable() }).parse(request.body);
    await ctx.nodes.dedicate(name, app, requester(request));
    return { node: nodeView(ctx.state, name, ctx.agents.contact(name).heardAt) };
  });

  server.get('/v1/pools', async (request) => {
    const visible = visibleTo(ctx, request, 'pool');
    return { pools: [...ctx.state.pools.values()].filter((p) => visible(p.name)) };
  });

  server.put('/v1/pools/:name', async (request) => {
    const { name: pool } = PoolParams.parse(request.params);
    const { team } = z.strictObject({ team: nameOf('team').optional() }).parse(request.body ?? {});
    return { pool: await ctx.nodes.setPool({ name: pool, team }) };
  });

  // How many more instances of an entry fit, and where.
  server.get('/v1/capacity', async (request) => {
    const { app, entry } = EntryParams.parse(request.query);
    const record = ctx.apps.get(app);
    if (!Object.hasOwn(record.spec.entrypoints, entry)) throw new NotFoundError(`app ${app} has no entrypoint "${entry}"`);
    const wanted = entryRequest(record.spec, entry);
    delete wanted.count;
    return capacity(snapshotOf(ctx.state), wanted);
  });
}
