// /v1/teams/{team}/configs: a team's configs, versioned. Members read them (they hold no
// secrets: those are team secrets), owners and developers set them and roll them back, owners
// remove them. The policy table decides, on the team named in the path.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { name } from '../../model/names.js';
import { reconcileAfter, requester, type ApiContext } from './context.js';

/** Largest config, text or key-values together, in bytes of UTF-8. */
export const MAX_CONFIG_BYTES = 256 * 1024;
const MAX_KEYS = 500;

const TeamParams = z.object({ team: name('team') });
const ConfigParams = z.object({ team: name('team'), name: name('config name') });
const version = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const VersionQuery = z.strictObject({ version: version.optional() });
const DiffQuery = z.strictObject({ from: version, to: version.optional() });
const noNul = (v: string) => !v.includes('\0');
const SetConfig = z
  .strictObject({
    text: z.string().refine(noNul, 'must not contain NUL characters').optional(),
    values: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, 'keys are env variable names: letters, digits and "_", not starting with a digit'), z.string().refine(noNul, 'must not contain NUL characters'))
      .refine((v) => Object.keys(v).length <= MAX_KEYS, `at most ${MAX_KEYS} keys`)
      .optional(),
    note: z.string().max(256).refine(noNul, 'must not contain NUL characters').optional(),
    /** The only app / env of the team that may use it; null: any again; absent: as it was. */
    app: name('app').nullable().optional(),
    env: name('env').nullable().optional(),
  })
  .refine((b) => (b.text === undefined) !== (b.values === undefined), { message: 'exactly one of text (a file) or values (key-values) is required', path: ['text'] })
  .refine((b) => Buffer.byteLength(JSON.stringify(b.text ?? b.values ?? ''), 'utf8') <= MAX_CONFIG_BYTES, { message: `at most ${MAX_CONFIG_BYTES / 1024} KiB`, path: ['text'] });
const Rollback = z.strictObject({ version });

export function configRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/teams/:team/configs', async (request) => ({ configs: ctx.configs.list(TeamParams.parse(request.params).team) }));

  server.get('/v1/teams/:team/configs/:name', async (request) => {
    const { team, name: config } = ConfigParams.parse(request.params);
    return { config: await ctx.configs.get(team, config, VersionQuery.parse(request.query ?? {}).version) };
  });

  server.get('/v1/teams/:team/configs/:name/history', async (request) => {
    const { team, name: config } = ConfigParams.parse(request.params);
    return { versions: await ctx.configs.history(team, config) };
  });

  server.get('/v1/teams/:team/configs/:name/diff', async (request) => {
    const { team, name: config } = ConfigParams.parse(request.params);
    const { from, to } = DiffQuery.parse(request.query ?? {});
    const until = to ?? (await ctx.configs.get(team, config)).version;
    return { from, to: until, changes: await ctx.configs.compare(team, config, from, until) };
  });

  server.put('/v1/teams/:team/configs/:name', async (request) => {
    const { team, name: config } = ConfigParams.parse(request.params);
    const body = SetConfig.parse(request.body ?? {});
    const content = body.text !== undefined ? { text: body.text } : { values: body.values! };
    const outcome = await ctx.configs.set(team, config, content, requester(request), body.note, { app: body.app, env: body.env });
    request.auditDetail = { summary: `version ${outcome.config.version}${outcome.rolled.length ? `; rolled ${outcome.rolled.map((r) => r.app).join(', ')}` : ''}` };
    if (outcome.rolled.length > 0) await reconcileAfter(ctx, request);
    return outcome;
  });

  server.post('/v1/teams/:team/configs/:name/rollback', async (request) => {
    const { team, name: config } = ConfigParams.parse(request.params);
    const outcome = await ctx.configs.rollback(team, config, Rollback.parse(request.body ?? {}).version, requester(request));
    if (outcome.rolled.length > 0) await reconcileAfter(ctx, request);
    return outcome;
  });

  server.delete('/v1/teams/:team/configs/:name', async (request) => {
    const { team, name: config } = ConfigParams.parse(request.params);
    await ctx.configs.remove(team, config, requester(request));
    return { removed: `${team}/${config}` };
  });
}
