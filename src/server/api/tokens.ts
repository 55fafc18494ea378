// API tokens: create one (shown once), list them (never the secret), revoke one.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { TOKEN_NAME } from '../auth.js';
import { requester, type ApiContext } from './context.js';

const Name = z.string().regex(TOKEN_NAME, 'a token name: lowercase letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters');

export function tokenRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/tokens', async () => ({ tokens: await ctx.auth.list() }));

  server.post('/v1/tokens', async (request, reply) => {
    const { name, role } = z.strictObject({ name: Name, role: z.enum(['admin', 'agent']).default('agent') }).parse(request.body ?? {});
    const token = await ctx.auth.create(role, name);
    await ctx.events.record({ level: 'info', type: 'token.created', message: `${role} token "${name}" created by ${requester(request)}` });
    return reply.code(201).send({ name, role, token });
  });

  server.delete('/v1/tokens/:name', async (request) => {
    const { name } = z.object({ name: Name }).parse(request.params);
    const revoked = await ctx.auth.revoke(name);
    const closed = ctx.agents.disconnectToken(name);
    await ctx.events.record({ level: 'warning', type: 'token.revoked', message: `${revoked.role} token "${name}" revoked by ${requester(request)}${closed ? `; ${closed} agent connection(s) using it closed` : ''}` });
    return { revoked, closedConnections: closed };
  });
}
