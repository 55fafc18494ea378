// /v1/teams/{team}/secrets: a team's secrets. Members list names and versions; owners and
// developers set and remove them; owners (and admins) read values, each read recorded in the
// audit log (audit-trail.ts). /v1/secrets/rotate-key: admins re-seal every sealed value with the
// current key. The policy table decides who, on the team named in the path.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { name } from '../../model/names.js';
import { MAX_SECRET_BYTES } from '../services/secrets.js';
import { reconcileAfter, requester, type ApiContext } from './context.js';

const TeamParams = z.object({ team: name('team') });
const SecretParams = z.object({ team: name('team'), name: name('secret name') });
const SetSecret = z.strictObject({
  value: z
    .string()
    .min(1, 'must not be empty')
    .refine((v) => Buffer.byteLength(v, 'utf8') <= MAX_SECRET_BYTES, `at most ${MAX_SECRET_BYTES / 1024} KiB`)
    .refine((v) => !v.includes('\0'), 'must not contain NUL characters (base64 binary values)'),
  /** Roll every app using it, so its instances start again with the new value. */
  roll: z.boolean().default(false),
});

export function secretRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/teams/:team/secrets', async (request) => ({ secrets: ctx.secrets.list(TeamParams.parse(request.params).team) }));

  server.get('/v1/teams/:team/secrets/:name', async (request) => {
    const { team, name: secret } = SecretParams.parse(request.params);
    return ctx.secrets.reveal(team, secret);
  });

  server.put('/v1/teams/:team/secrets/:name', async (request) => {
    const { team, name: secret } = SecretParams.parse(request.params);
    const { value, roll } = SetSecret.parse(request.body ?? {});
    const outcome = await ctx.secrets.set(team, secret, value, requester(request), roll);
    request.auditDetail = { summary: `version ${outcome.secret.version}${outcome.rolled?.length ? `; rolled ${outcome.rolled.map((r) => r.app).join(', ')}` : ''}` };
    if (outcome.rolled && outcome.rolled.length > 0) await reconcileAfter(ctx, request);
    return outcome;
  });

  server.delete('/v1/teams/:team/secrets/:name', async (request) => {
    const { team, name: secret } = SecretParams.parse(request.params);
    await ctx.secrets.remove(team, secret, requester(request));
    return { removed: `${team}/${secret}` };
  });

  server.post('/v1/secrets/rotate-key', async (request) => {
    const secrets = await ctx.secrets.reseal();
    const registryLogins = await ctx.registryLogins.reseal();
    ctx.events.note({ level: 'info', type: 'secret.key_rotated', message: `${secrets} secret(s) and ${registryLogins} registry login(s) sealed again with key ${ctx.secretKeyId} by ${requester(request)}` });
    return { key: ctx.secretKeyId, secrets, registryLogins };
  });
}
