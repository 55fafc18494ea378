// /v1/registries: pull credentials for private image registries (admin only; the password goes
// in, never out). /v1/apps/{app}/prepull: warm the nodes an app may run on.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isRegistryHost } from '../../model/image-ref.js';
import { requester, type ApiContext } from './context.js';
import { AppParams } from './params.js';
import { DURATION_PATTERN, parseDuration } from '../../model/units.js';

const RegistryParams = z.object({
  host: z.string().refine(isRegistryHost, 'host: a registry host name or address, with an optional :port (e.g. registry.example.com:5000)'),
});
const Prepull = z.strictObject({
  timeout: z.string().regex(DURATION_PATTERN, 'timeout: a duration such as "5m"').refine((t) => (parseDuration(t) ?? 0) <= 3_600_000, 'timeout: at most 1h').optional(),
});
const Login = z.strictObject({
  username: z.string().min(1).max(256).regex(/^[^\s:]+$/, 'username: no spaces or ":"'),
  password: z.string().min(1).max(4096).regex(/^[^\0\r\n]*$/, 'password: no NUL or line breaks'),
});

export function imageRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/registries', async () => ({ registries: ctx.registryLogins.list() }));

  server.put('/v1/registries/:host', async (request) => {
    const { host } = RegistryParams.parse(request.params);
    const { username, password } = Login.parse(request.body ?? {});
    return { registry: await ctx.registryLogins.set(host, username, password, requester(request)) };
  });

  server.post('/v1/apps/:app/prepull', async (request) => {
    const { app } = AppParams.parse(request.params);
    const { timeout } = Prepull.parse(request.body ?? {});
    const nodes = await ctx.prepulls.warm(app, timeout === undefined ? 10 * 60_000 : parseDuration(timeout)!);
    ctx.events.note({ level: 'info', type: 'app.prepulled', app, message: `images of ${app} pre-pulled on request of ${requester(request)}: ${nodes.filter((n) => !n.error && !n.results?.some((r) => r.error)).length}/${nodes.length} node(s) ready` });
    return { nodes };
  });

  server.delete('/v1/registries/:host', async (request) => {
    const { host } = RegistryParams.parse(request.params);
    await ctx.registryLogins.remove(host, requester(request));
    return { removed: host };
  });
}
