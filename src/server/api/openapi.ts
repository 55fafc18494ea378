// The OpenAPI document the server serves at /openapi.json: written next to the routes it
// describes, with the app spec's schema generated from the same zod schema that validates it.
// Here: the shared schemas and the app, release, rollout and instance paths; the cluster,
// discovery and token paths are in openapi-paths.ts, the building blocks in openapi-helpers.ts.
import { scopedTokenPaths } from './openapi-tokens.js';
import { appSpecJsonSchema } from '../../model/spec.js';
import { INSTANCE_ID, NAME, NODE_NAME } from '../../model/names.js';
import { clusterPaths } from './openapi-paths.js';
import { usagePaths } from './openapi-usage.js';
import { alertPaths } from './openapi-alerts.js';
import { pendingApproval, teamPaths } from './openapi-teams.js';
import { secretPaths } from './openapi-secrets.js';
import { buildPaths } from './builds.js';
import { quotaPaths } from './quotas.js';
import { consolePaths } from './openapi-console.js';
import { body, conflict, error, flag, list, matching, object, ok, op, pathParam, queryParam, ref, type Operation } from './openapi-helpers.js';

const appParam = pathParam('app', matching(NAME), 'App name');
const entryParam = pathParam('entry', matching(NAME), 'Entrypoint name');
const idParam = pathParam('id', matching(INSTANCE_ID), 'Instance id, `{app}-{entry}-{8 hex}`');
const releaseParam = pathParam('release', { type: 'integer', minimum: 1 }, 'Release number');
const releaseNumber = { type: 'integer', minimum: 1 };

const schemas = {
  Error: object({ error: { type: 'string' }, problems: list(object({ path: { type: 'string' }, message: { type: 'string' } })) }, ['error']),
  App: object({ name: { type: 'string' }, env: { type: 'string' }, spec: ref('AppSpec'), release: { type: 'integer' }, stopped: { type: 'boolean' }, createdAt: { type: 'integer' }, updatedAt: { type: 'integer' }, updatedBy: { type: 'string' } }),
  Instance: { ...object({ id: { type: 'string' }, app: { type: 'string' }, entry: { type: 'string' }, release: { type: 'integer' }, node: { type: 'string' }, desired: { type: 'string', enum: ['running', 'stopped', 'removed'] }, status: { type: ['object', 'null'] } }), description: 'The assignment and what the agent last reported' },
  Change: object({ path: { type: 'string', description: 'e.g. entrypoints.web.resources.cpu' }, kind: { type: 'string', enum: ['added', 'removed', 'changed'] }, from: {}, to: {} }, ['path', 'kind']),
  Release: object({ app: { type: 'string' }, release: { type: 'integer' }, spec: ref('AppSpec'), createdAt: { type: 'integer' }, createdBy: { type: 'string' }, note: { type: 'string' }, changes: list(ref('Change')) }),
  Rollout: object({
    app: { type: 'string' },
    from: { type: 'integer' },
    to: { type: 'integer' },
    phase: { type: 'string', enum: ['progressing', 'paused', 'awaiting-promotion', 'succeeded', 'rolled-back', 'aborted'] },
    by: { type: 'string' },
    startedAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
    steps: list(object({ time: { type: 'integer' }, message: { type: 'string' } })),
  }),
  Node: { ...object({ name: { type: 'string' }, state: { type: 'string', enum: ['ready', 'down', 'cordoned', 'draining'] }, dedicatedTo: { type: 'string' }, allocated: object({ cpu: { type: 'number' }, memoryBytes: { type: 'integer' }, instances: { type: 'integer' } }), usage: object({ at: { type: 'integer' }, instances: { type: 'integer' }, cpuCores: { type: 'number' }, memoryBytes: { type: 'integer' } }), checks: ref('CheckSummary') }), description: 'What the agent reports of its node, its state, what is allocated on it and what its instances really use (their newest usage samples; absent before the first)' },
  CheckSummary: object({ text: { type: 'string', description: '"ok", "2 warn", "1 fail, 1 warn", "not inspected yet", "not inspected (agent too old)"' }, at: { type: 'integer' }, pass: { type: 'integer' }, warn: { type: 'integer' }, fail: { type: 'integer' }, error: { type: 'integer' } }),
  Pool: object({ name: { type: 'string' }, team: { type: 'string', description: 'Only this team\'s apps are placed in the pool' } }, ['name']),
  Team: object(
    {
      name: { type: 'string' },
      members: { type: 'object', additionalProperties: { type: 'string', enum: ['owner', 'developer', 'viewer'] }, description: 'user → role: owner (members, and everything below), developer (apply, scale, roll out and back, restart, logs of the team\'s apps), viewer (read them)' },
      requireApproval: { type: 'array', items: { type: 'string' }, description: "Envs whose new releases wait for an owner's approval (PUT /v1/teams/{team}/require-approval)" },
      createdAt: { type: 'integer' },
      createdBy: { type: 'string' },
      updatedAt: { type: 'integer' },
    },
    ['name', 'members'],
  ),
  Token: object(
    {
      name: { type: 'string' },
      role: { type: 'string', enum: ['admin', 'agent', 'join'] },
      node: { type: 'string', description: 'The node an agent token speaks for' },
      createdAt: { type: 'integer' },
      expiresAt: { type: 'integer', description: 'When a join token stops working (ms since the epoch)' },
    },
    ['name', 'role', 'createdAt'],
  ),
};

/** Rollouts: the one under way (or the last), and what people do to it. */
const rolloutActions = {
  pause: 'Pause the rollout under way (progressing or awaiting promotion)',
  resume: 'Resume a paused rollout',
  promote: 'Promote the canaries of the rollout under way',
  abort: 'Abort the rollout under way and roll back to the release before it',
};

function appPaths(): Record<string, object> {
  const appOp = (summary: string, responses: Record<string, object>, more: Partial<Operation> = {}) => op({ summary, parameters: [appParam], responses, ...more });
  return {
    '/v1/apps': {
      get: op({ summary: 'List apps with per-entry desired / running / healthy counts', responses: { '200': ok('Apps') } }),
      post: op({
        summary: 'Create or update an app from its spec (a new release when it changed)',
        description:
          "Every image tag is resolved to the digest it names now and stored pinned (`image:tag@sha256:…`). An image its registry says does not exist, or refuses, is a 400 naming the field. A registry the server cannot reach leaves the tag unpinned: the answer's `unpinned` lists them (field, image, cause).",
        requestBody: { required: true, content: { 'text/yaml': { schema: { type: 'string' } }, 'application/yaml': { schema: { type: 'string' } }, 'application/json': { schema: ref('AppSpec') } } },
        responses: { '200': ok('Updated or unchanged'), '201': ok('Created'), ...pendingApproval, '400': error('Invalid app spec; `problems` names each bad field'), ...conflict("Changed concurrently, or over the team's quota (the message names the limit, its use and what the change needs; nothing was stored)") },
      }),
    },
    '/v1/apps/{app}': {
      get: appOp('An app, its instances and anything that cannot be placed', { '200': ok('App') }),
      delete: appOp('Remove an app and all its instances', { '202': ok('Removal under way', object({ removed: { type: 'string' } })) }),
    },
    '/v1/apps/{app}/stop': { post: appOp('Stop every instance, keeping them', { '200': ok('Stopping', object({ app: ref('App') })) }) },
    '/v1/apps/{app}/start': { post: appOp('Start a stopped app again', { '200': ok('Starting', object({ app: ref('App') })), ...conflict("Over the team's quota: the message names the limit, its use and what the change needs; nothing was stored") }) },
    '/v1/apps/{app}/entries/{entry}/scale': {
      post: op({
        summary: 'Set the replica count of one entrypoint',
        parameters: [appParam, entryParam],
        requestBody: body({ replicas: { type: 'integer', minimum: 0, maximum: 10_000 } }, ['replicas']),
        responses: { '200': ok('Scaled', object({ app: ref('App') })), ...conflict("Over the team's quota: the message names the limit, its use and what the change needs; nothing was stored") },
      }),
    },
    '/v1/apps/{app}/releases': { get: appOp('Release history, oldest first', { '200': ok('Releases', object({ releases: list(ref('Release')) })) }) },
    '/v1/apps/{app}/releases/{release}': {
      get: op({ summary: 'One release: its spec and what changed against the one before', parameters: [appParam, releaseParam], responses: { '200': ok('Release', object({ release: ref('Release') })) } }),
    },
    '/v1/apps/{app}/diff': {
      get: appOp('What changed between two releases', { '200': ok('Changes', object({ from: releaseNumber, to: releaseNumber, changes: list(ref('Change')) })) }, {
        parameters: [appParam, queryParam('from', releaseNumber, 'Release to compare from', true), queryParam('to', releaseNumber, 'Release to compare to', true)],
      }),
    },
    '/v1/apps/{app}/rollback': {
      post: appOp(
        "Deploy an older release's spec again, as a new release (replica counts stay as they are)",
        {
          '200': ok('Rolled back', object({ from: releaseNumber, to: releaseNumber, release: { ...releaseNumber, description: 'The new release' } })),
          '404': error('No such app, release, or no release before the current one'),
          ...conflict('The app runs that release already'),
          ...pendingApproval,
        },
        { requestBody: body({ release: { ...releaseNumber, description: 'Default: the release before the current one' } }, [], false) },
      ),
    },
    '/v1/apps/{app}/rollout': {
      get: appOp('The rollout under way or the last one, with per-entry progress', {
        '200': ok('Rollout', object({ rollout: { oneOf: [ref('Rollout'), { type: 'null' }] }, entries: list(object({ entry: { type: 'string' }, strategy: { type: 'string' }, replicas: { type: 'integer' }, updated: { type: 'integer' }, healthy: { type: 'integer' }, old: { type: 'integer' } })) })),
      }),
    },
    ...Object.fromEntries(
      Object.entries(rolloutActions).map(([action, summary]) => [
        `/v1/apps/{app}/rollout/${action}`,
        { post: appOp(summary, { '200': ok('The rollout as it is now', object({ rollout: ref('Rollout') })), '404': error('No such app, or it was never rolled out'), ...conflict('No rollout in a phase this applies to, or it moved on meanwhile') }) },
      ]),
    ),
    '/v1/instances': {
      get: op({
        summary: 'Instances with their assignment and last reported status',
        parameters: [
          queryParam('app', matching(NAME)),
          queryParam('node', matching(NODE_NAME)),
          queryParam('limit', { type: 'integer', minimum: 1, maximum: 5000, default: 1000 }),
          queryParam('after', { type: 'string', maxLength: 2048, description: 'the `next` of the previous page' }),
        ],
        responses: {
          '200': ok('A page of instances (ordered by app, entry, creation), what cannot be placed, and `next` when more follow', object({ instances: list(ref('Instance')), unplaced: list({ type: 'object' }), next: { type: 'string' } })),
        },
      }),
    },
    '/v1/instances/{id}/rebuild': {
      post: op({ summary: 'Rebuild a running instance in place: a new container on the same node, ports and volumes', parameters: [idParam], responses: { '200': ok('Requested', object({ instance: ref('Instance') })), '404': error('No running instance with this id') } }),
    },
    '/v1/instances/{id}/restart': {
      post: op({ summary: 'Restart a running instance: the same container again', parameters: [idParam], responses: { '200': ok('Requested', object({ instance: ref('Instance') })), '404': error('No running instance with this id') } }),
    },
    '/v1/instances/{id}/stop': {
      post: op({ summary: 'Stop one instance and keep its place: no replacement starts; it stays stopped (also across rollouts of unchanged entries) until started, or the whole app is stopped and started', parameters: [idParam], responses: { '200': ok('Requested', object({ instance: ref('Instance') })), '404': error('No instance with this id'), ...conflict('The whole app is stopped') } }),
    },
    '/v1/instances/{id}/start': {
      post: op({ summary: 'Start an instance stopped on its own again', parameters: [idParam], responses: { '200': ok('Requested', object({ instance: ref('Instance') })), '404': error('No instance with this id'), ...conflict('The whole app is stopped: start the app') } }),
    },
    '/v1/instances/{id}/logs': {
      get: op({
        summary: "An instance's stdout and stderr, relayed from its node's agent",
        parameters: [idParam, queryParam('tail', { type: 'integer', minimum: 0, maximum: 100_000 }, 'Last N lines'), queryParam('follow', flag, 'Keep streaming new lines')],
        responses: { '200': { description: 'One log line per line', content: { 'text/plain': { schema: { type: 'string' } } } } },
      }),
    },
    '/v1/apps/{app}/logs': {
      get: op({
        summary: "Every instance's lines from every node, merged by time, each as `<instance id> | <line>`; following, instances that start later are joined",
        parameters: [
          appParam,
          queryParam('entry', matching(NAME), 'Only this entrypoint'),
          queryParam('tail', { type: 'integer', minimum: 0, maximum: 100_000 }, 'Last N lines of each instance'),
          queryParam('follow', flag, 'Keep streaming new lines, joining new instances'),
          queryParam('since', { type: 'string', maxLength: 64 }, 'Lines written after: a duration back from now (30s, 10m, 2h, 7d) or a time (2026-11-30T20:00:00Z)'),
          queryParam('grep', { type: 'string', maxLength: 256 }, 'A regular expression the agents match each line against (first 4096 characters); no back-references, no repeated group holding a repetition or alternation'),
        ],
        responses: { '200': { description: 'One log line per line', content: { 'text/plain': { schema: { type: 'string' } } } }, '404': error('No app with this name') },
      }),
    },
  };
}

export function openApiDocument(version: string): object {
  const { $schema: _ignored, ...appSpec } = appSpecJsonSchema() as Record<string, unknown>;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gantry API',
      version,
      description: [
        'Deploy, scale and observe apps on a Gantry cluster.',
        'Every route needs `Authorization: Bearer <token>` (or the web console\'s session cookie, see POST /v1/login) but GET /healthz, GET /openapi.json and the console\'s files. A path that matches no route answers 401 without a token and 404 with one; a token whose role may not use a route gets 403.',
        'Roles: an admin token may do everything; an agent token is bound to one node and may only open that node\'s agent connection; a join token may open an agent connection for a new node once, which is then given its own agent token in the welcome message.',
        'People sign in (POST /v1/login) for a session token; what they may do follows their platform role (admin, operator, member) and their role in each team (owner, developer, viewer) on the team\'s apps, secrets and configs, by one policy table (GET /v1/auth/can-i asks it). Lists and streams answer only what the caller may see. Personal and robot tokens act as their user or team, narrowed by a scope.',
        'Path parameters are checked against the patterns in their schemas (a mismatch is a 400 naming the parameter); request bodies are limited to 1 MiB (413, and the connection is closed).',
      ].join('\n\n'),
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: 'gantry_session', description: 'The web console: with X-Gantry-CSRF on unsafe methods' } },
      schemas: { AppSpec: appSpec, ...schemas },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths: {
      '/healthz': { get: { summary: 'Liveness of the server', security: [], responses: { '200': ok('Alive', object({ ok: { type: 'boolean' }, version: { type: 'string' } })) } } },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': ok('OpenAPI 3.1') } } },
      ...appPaths(),
      ...clusterPaths(),
      ...secretPaths(),
      ...buildPaths(),
      ...scopedTokenPaths(),
      ...quotaPaths(),
      ...teamPaths(),
      ...usagePaths(),
      ...alertPaths(),
      ...consolePaths(),
    },
  };
}
