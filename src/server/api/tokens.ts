// API tokens: create one (shown once), list them (never the secret), revoke one.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { nodeName } from '../../model/names.js';
import { DURATION_PATTERN, parseDuration } from '../../model/units.js';
import { requester, type ApiContext } from './context.js';
import { TokenParams } from './params.js';

const MAX_JOIN_TTL_MS = 30 * 24 * 3_600_000;

const CreateToken = z
  .strictObject({
    name: TokenParams.shape.name,
    role: z.enum(['admin', 'agent', 'join']).default('agent'),
    /** agent: the node it speaks for (default: the token's name). */
    node: nodeName().optional(),
    /** join: how long it may be used (default 24h). */
    ttl: z.string().regex(DURATION_PATTERN, 'ttl: a duration such as "1h" or "72h"').optional(),
  })
  .superRefine((body, ctx) => {
    if (body.node !== undefined && body.role !== 'agent') ctx.addIssue({ code: 'custom', path: ['node'], message: 'only an agent token is bound to a node' });
    if (body.ttl !== undefined && body.role !== 'join') ctx.addIssue({ code: 'custom', path: ['ttl'], message: 'only a join token expires' });
    const ttl = body.ttl === undefined ? 0 : parseDuration(body.ttl)!;
    if (ttl > MAX_JOIN_TTL_MS || (body.ttl !== undefined && ttl < 1000)) ctx.addIssue({ code: 'custom', path: ['ttl'], message: 'ttl: between 1s and 30 days' });
  });

export function tokenRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/tokens', async () => ({ tokens: await ctx.auth.list() }));

  server.post('/v1/tokens', async (request, reply) => {
    const { name, role, node, ttl } = CreateToken.parse(request.body ?? {});
    const expiresAt = role === 'join' ? Date.now() + (ttl ? parseDuration(ttl)! : 24 * 3_600_000) : undefined;
    const bound = role === 'agent' ? (node ?? name) : undefined;
    const token = await ctx.auth.create({ role, name, node: bound, expiresAt });
    const what = bound ? `for node ${bound}` : expiresAt ? `until ${new Date(expiresAt).toISOString()}` : '';
    // note, not record: the token exists now and must be shown, even if its event cannot be written.
    ctx.events.note({ level: 'info', type: 'token.created', message: `${role} token "${name}"${what ? ` ${what}` : ''} created by ${requester(request)}` });
    return reply.code(201).send({ name, role, ...(bound ? { node: bound } : {}), ...(expiresAt ? { expiresAt } : {}), token });
  });

  server.delete('/v1/tokens/:name', async (request) => {
    const { name } = TokenParams.parse(request.params);
    const revoked = await ctx.auth.revoke(name);
    const closed = ctx.agents.disconnectToken(name);
    ctx.events.note({ level: 'warning', type: 'token.revoked', message: `${revoked.role} token "${name}" revoked by ${requester(request)}${closed ? `; ${closed} agent connection(s) using it closed` : ''}` });
    return { revoked, closedConnections: closed };
  });
}
