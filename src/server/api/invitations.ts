// /v1/invitations: one-time codes that make a user. Making, listing and revoking them is for
// admins and team owners (who may invite whom is decided on the body: invitations.ts); accepting
// one is public (it is how an invited person gets a token), small and counted like sign-ins.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { name } from '../../model/names.js';
import { DURATION_PATTERN, parseDuration } from '../../model/units.js';
import type { LoginResponse } from '../../model/api.js';
import { MAX_INVITATION_MS, MIN_INVITATION_MS } from '../services/invitations.js';
import { password } from './users.js';
import type { ApiContext } from './context.js';

const CreateInvitation = z.strictObject({
  team: name('team').optional(),
  role: z.enum(['owner', 'developer', 'viewer']).optional(),
  platformRole: z.enum(['admin', 'operator', 'member']).optional(),
  expiresIn: z.string().regex(DURATION_PATTERN, 'expiresIn: a duration such as "48h"').refine((d) => { const ms = parseDuration(d) ?? 0; return ms >= MIN_INVITATION_MS && ms <= MAX_INVITATION_MS; }, 'expiresIn: between 5m and 720h (30 days)').optional(),
}).refine((b) => b.role === undefined || b.team !== undefined, { message: 'role: a role in a team needs the team', path: ['role'] });
const InvitationParams = z.object({ id: z.string().regex(/^[0-9a-f]{16}$/, 'id: the 16 hex characters gantry user invitations lists') });
const Accept = z.strictObject({
  // Not the code's exact shape: a wrong code of any shape gets the one answer for wrong codes.
  code: z.string().min(1, 'code: the invitation code').max(100, 'code: at most 100 characters'),
  name: name('user'),
  password,
});

export function invitationRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.post('/v1/invitations', async (request, reply) => {
    const body = CreateInvitation.parse(request.body ?? {});
    const made = await ctx.invitations.create(request.caller!, { ...body, expiresInMs: body.expiresIn === undefined ? undefined : parseDuration(body.expiresIn)! });
    return reply.code(201).send({ ...made, accept: `gantry accept-invite ${made.code} --name <your name>` });
  });

  server.get('/v1/invitations', async (request) => ({ invitations: await ctx.invitations.list(request.caller!) }));

  server.delete('/v1/invitations/:id', async (request) => {
    const { id } = InvitationParams.parse(request.params);
    return { revoked: await ctx.invitations.revoke(id, request.caller!) };
  });

  // Small bodies only, like /v1/login: anyone may call this.
  server.post('/v1/invitations/accept', { bodyLimit: 16 * 1024 }, async (request, reply): Promise<LoginResponse> => {
    const { code, name: user, password: given } = Accept.parse(request.body ?? {});
    const session = await ctx.invitations.accept(code, user, given, request.ip);
    reply.code(201);
    return session;
  });
}
