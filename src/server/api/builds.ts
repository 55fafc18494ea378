// /v1/builds: the records of image builds that CLIs ran on their own Docker Engines and reported
// here (services/builds.ts). Admin only, as every route by default. The body comes from a client:
// every string and list is bounded, so a record costs at most about 200 kB.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ImageRefError, parseImageRef } from '../../model/image-ref.js';
import { NAME, name } from '../../model/names.js';
import { requester, type ApiContext } from './context.js';
import { body, list, matching, object, ok, op, pathParam, queryParam } from './openapi-helpers.js';

export const LOG_TAIL_LINES = 200;
export const LOG_LINE_CHARS = 1000;
const BUILD_ID = /^\d{14}-[0-9a-f]{8}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const COMMIT = /^[0-9a-f]{7,64}$/;
const DAY_MS = 24 * 3_600_000;

const imageRef = z
  .string()
  .min(1)
  .max(512)
  .superRefine((image, ctx) => {
    try {
      parseImageRef(image);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof ImageRefError ? err.message : String(err) });
    }
  });

const BuildReport = z
  .strictObject({
    image: imageRef,
    digest: z.string().regex(DIGEST, 'digest: "sha256:" and 64 lower-case hex digits').optional(),
    source: z.string().min(1).max(2048),
    ref: z.string().min(1).max(256).optional(),
    commit: z.string().regex(COMMIT, 'commit: a git commit id in lower-case hex').optional(),
    dirty: z.boolean().optional(),
    dockerfile: z.string().min(1).max(1024).optional(),
    app: name('app').optional(),
    durationMs: z.number().int().min(0).max(7 * DAY_MS),
    result: z.enum(['succeeded', 'failed']),
    error: z.string().min(1).max(4000).optional(),
    logTail: z.array(z.string().max(LOG_LINE_CHARS, `at most ${LOG_LINE_CHARS} characters a line`)).max(LOG_TAIL_LINES, `at most the last ${LOG_TAIL_LINES} lines`).default([]),
  })
  .superRefine((b, ctx) => {
    if (b.result === 'failed' && b.error === undefined) ctx.addIssue({ code: 'custom', path: ['error'], message: 'a failed build says why' });
    if (b.result === 'failed' && b.digest !== undefined) ctx.addIssue({ code: 'custom', path: ['digest'], message: 'a failed build pushed nothing' });
  });

const BuildQuery = z.object({
  app: name('app').optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const BuildParams = z.object({ id: z.string().regex(BUILD_ID, 'id: a build id as GET /v1/builds lists them') });

export function buildRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.post('/v1/builds', async (request, reply) => {
    const report = BuildReport.parse(request.body ?? {});
    const build = await ctx.builds.record(report, requester(request));
    return reply.code(201).send({ build });
  });

  server.get('/v1/builds', async (request) => {
    const { app, limit } = BuildQuery.parse(request.query);
    return { builds: await ctx.builds.list({ app, limit }) };
  });

  server.get('/v1/builds/:id', async (request) => {
    const { id } = BuildParams.parse(request.params);
    return { build: await ctx.builds.get(id) };
  });
}

/** The paths above in the OpenAPI document (openapi.ts). */
export function buildPaths(): Record<string, object> {
  const fields = {
    image: { type: 'string', maxLength: 512, description: 'The reference the image was tagged as' },
    digest: { type: 'string', pattern: DIGEST.source, description: 'The manifest digest the registry took on push' },
    source: { type: 'string', maxLength: 2048, description: "The context directory's name or the git URL (without credentials)" },
    ref: { type: 'string', maxLength: 256 },
    commit: { type: 'string', pattern: COMMIT.source },
    dirty: { type: 'boolean', description: 'The work tree had uncommitted changes under the context' },
    dockerfile: { type: 'string', maxLength: 1024 },
    app: { type: 'string', description: 'The app it was built for (apply --build)' },
    durationMs: { type: 'integer', minimum: 0 },
    result: { type: 'string', enum: ['succeeded', 'failed'] },
    error: { type: 'string', maxLength: 4000, description: 'Why it failed (required when it did)' },
  };
  const logTail = list({ type: 'string', maxLength: LOG_LINE_CHARS });
  const recorded = { id: { type: 'string', pattern: BUILD_ID.source }, by: { type: 'string', description: 'The name of the token that reported it' }, at: { type: 'integer' } };
  const build = object({ ...recorded, ...fields, logTail }, ['id', 'image', 'source', 'durationMs', 'result', 'logTail', 'by', 'at']);
  return {
    '/v1/builds': {
      get: op({
        summary: 'Image builds reported by CLIs, newest first (without their logs)',
        parameters: [queryParam('app', matching(NAME), 'Only the builds made for this app'), queryParam('limit', { type: 'integer', minimum: 1, maximum: 500, default: 50 })],
        responses: { '200': ok('Builds', object({ builds: list(object({ ...recorded, ...fields, logLines: { type: 'integer' } })) })) },
      }),
      post: op({
        summary: 'Record an image build the CLI ran (succeeded or failed); notes a build.succeeded or build.failed event. The newest 1000 are kept.',
        requestBody: body({ ...fields, logTail: { ...logTail, maxItems: LOG_TAIL_LINES, description: 'The last lines of its log' } }, ['image', 'source', 'durationMs', 'result']),
        responses: { '201': ok('Recorded', object({ build })) },
      }),
    },
    '/v1/builds/{id}': {
      get: op({ summary: 'One build record, with the end of its log', parameters: [pathParam('id', matching(BUILD_ID), 'Build id')], responses: { '200': ok('The build', object({ build })) } }),
    },
  };
}
