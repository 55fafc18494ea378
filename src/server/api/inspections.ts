// Node inspection: run a node's checks now, and read its latest results (operators and admins).
import type { FastifyInstance } from 'fastify';
import { ConflictError, NotFoundError } from '../errors.js';
import { summarize } from '../../model/inspection.js';
import type { ApiContext } from './context.js';
import { NodeParams } from './params.js';

/** How long `POST /v1/nodes/:name/inspect` waits for the agent's answer (checks take well under a second; Docker may take 5 s). */
const INSPECT_ANSWER_MS = 20_000;

export function inspectionRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.post('/v1/nodes/:name/inspect', async (request) => {
    const { name } = NodeParams.parse(request.params);
    if (!ctx.state.nodes.has(name)) throw new NotFoundError(`no node ${name}`);
    let inspection;
    try {
      inspection = await ctx.agents.inspect(name, INSPECT_ANSWER_MS);
    } catch (err) {
      // Not connected, too old to inspect, or no answer in time (each message names the node).
      throw new ConflictError((err as Error).message);
    }
    return { node: name, inspection, summary: summarize(inspection, false) };
  });

  server.get('/v1/nodes/:name/inspection', async (request) => {
    const { name } = NodeParams.parse(request.params);
    if (!ctx.state.nodes.has(name)) throw new NotFoundError(`no node ${name}`);
    const inspection = await ctx.inspections.get(name);
    return { node: name, inspection: inspection ?? null, summary: summarize(inspection, ctx.agents.inspects(name) === false) };
  });
}
