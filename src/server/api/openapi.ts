// The OpenAPI document the server serves at /openapi.json: written next to the routes it
// describes, with the app spec's schema generated from the same zod schema that validates it.
import { appSpecJsonSchema } from '../../model/spec.js';

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const ok = (description: string, schema: object = { type: 'object' }) => ({ description, ...json(schema) });
const errors = {
  '400': ok('Invalid request; `problems` names each bad field', ref('Error')),
  '401': ok('Missing or unknown token', ref('Error')),
  '404': ok('No such object', ref('Error')),
};
const appParam = { name: 'app', in: 'path', required: true, schema: { type: 'string' } };

export function openApiDocument(version: string): object {
  const { $schema: _ignored, ...appSpec } = appSpecJsonSchema() as Record<string, unknown>;
  return {
    openapi: '3.1.0',
    info: { title: 'Gantry API', version, description: 'Deploy, scale and observe apps on a Gantry cluster. Every /v1 route needs `Authorization: Bearer <token>`.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        AppSpec: appSpec,
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'string' }, problems: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } } },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': { get: { summary: 'Liveness of the server', security: [], responses: { '200': ok('Alive') } } },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': ok('OpenAPI 3.1') } } },
      '/v1/apps': {
        get: { summary: 'List apps with per-entry desired / running / healthy counts', responses: { '200': ok('Apps'), ...errors } },
        post: {
          summary: 'Create or update an app from its spec (a new release when it changed)',
          requestBody: { required: true, content: { 'text/yaml': { schema: { type: 'string' } }, 'application/json': { schema: ref('AppSpec') } } },
          responses: { '200': ok('Updated or unchanged'), '201': ok('Created'), ...errors, '409': ok('Changed concurrently', ref('Error')) },
        },
      },
      '/v1/apps/{app}': {
        get: { summary: 'An app, its instances and anything that cannot be placed', parameters: [appParam], responses: { '200': ok('App'), ...errors } },
        delete: { summary: 'Remove an app and all its instances', parameters: [appParam], responses: { '202': ok('Removal under way'), ...errors } },
      },
      '/v1/apps/{app}/stop': { post: { summary: 'Stop every instance, keeping them', parameters: [appParam], responses: { '200': ok('Stopping'), ...errors } } },
      '/v1/apps/{app}/start': { post: { summary: 'Start a stopped app again', parameters: [appParam], responses: { '200': ok('Starting'), ...errors } } },
      '/v1/apps/{app}/entries/{entry}/scale': {
        post: {
          summary: 'Set the replica count of one entrypoint',
          parameters: [appParam, { name: 'entry', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: json({ type: 'object', required: ['replicas'], properties: { replicas: { type: 'integer', minimum: 0 } } }),
          responses: { '200': ok('Scaled'), ...errors },
        },
      },
      '/v1/instances': {
        get: {
          summary: 'Instances with their assignment and last reported status',
          parameters: [{ name: 'app', in: 'query', schema: { type: 'string' } }, { name: 'node', in: 'query', schema: { type: 'string' } }],
          responses: { '200': ok('Instances'), ...errors },
        },
      },
      '/v1/instances/{id}/logs': {
        get: {
          summary: "An instance's stdout and stderr, relayed from its node's agent",
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'tail', in: 'query', schema: { type: 'integer', minimum: 0 } },
            { name: 'follow', in: 'query', schema: { type: 'boolean' } },
          ],
          responses: { '200': { description: 'One log line per line', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors },
        },
      },
      '/v1/nodes': { get: { summary: 'Nodes with capacity, allocation and liveness', responses: { '200': ok('Nodes'), ...errors } } },
      '/v1/tokens': {
        get: { summary: 'API tokens: name, role and creation time (never the token)', responses: { '200': ok('Tokens'), ...errors } },
        post: {
          summary: 'Create a token; the answer holds it, the only time it is shown',
          requestBody: json({ type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' }, role: { type: 'string', enum: ['agent', 'admin'], default: 'agent' } } }),
          responses: { '201': ok('The new token'), ...errors },
        },
      },
      '/v1/tokens/{name}': {
        delete: {
          summary: 'Revoke a token: it stops working at once and agent connections opened with it are closed; the last admin token cannot be revoked',
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': ok('Revoked'), ...errors },
        },
      },
      '/v1/events': {
        get: {
          summary: 'Events, oldest first; with follow=1 a Server-Sent Events stream resumable with Last-Event-ID',
          parameters: ['app', 'instance', 'node'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })).concat(
            [{ name: 'since', in: 'query', schema: { type: 'integer' } }, { name: 'limit', in: 'query', schema: { type: 'integer' } }, { name: 'follow', in: 'query', schema: { type: 'boolean' } }] as never[],
          ),
          responses: { '200': { description: 'Events', content: { 'application/json': { schema: { type: 'object' } }, 'text/event-stream': { schema: { type: 'string' } } } }, ...errors },
        },
      },
      '/v1/registry': {
        get: {
          summary: 'Registered endpoints: healthy instances with ports, and outside services',
          parameters: ['app', 'env', 'entry'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
          responses: { '200': ok('Endpoints and the revision they reflect'), ...errors },
        },
        post: {
          summary: 'Register an outside service; keep it with POST /v1/registry/leases/{lease}/keepalive within its ttl',
          requestBody: json({
            type: 'object',
            required: ['app', 'entry', 'address', 'ports'],
            properties: { app: { type: 'string' }, env: { type: 'string' }, entry: { type: 'string' }, id: { type: 'string' }, address: { type: 'string' }, ports: { type: 'object', additionalProperties: { type: 'integer' } }, labels: { type: 'object' }, ttl: { type: 'string', description: 'e.g. "30s" (default)' } },
          }),
          responses: { '201': ok('Registered; the answer holds the lease'), ...errors },
        },
      },
      '/v1/registry/leases/{lease}/keepalive': { post: { summary: 'Extend an outside registration by its ttl', parameters: [{ name: 'lease', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': ok('Kept'), ...errors } } },
      '/v1/registry/leases/{lease}': { delete: { summary: 'Deregister an outside service', parameters: [{ name: 'lease', in: 'path', required: true, schema: { type: 'string' } }], responses: { '204': { description: 'Gone' }, ...errors } } },
      '/v1/watch': {
        get: {
          summary: 'Server-Sent Events: a snapshot, then one `change` per store revision (id = revision); resume with Last-Event-ID or since',
          parameters: [
            { name: 'prefix', in: 'query', schema: { type: 'string', enum: ['registry', 'instances', 'status', 'apps', 'nodes'] } },
            { name: 'since', in: 'query', schema: { type: 'integer' } },
          ],
          responses: { '200': { description: 'Event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors },
        },
      },
      '/v1/discovery/prometheus': { get: { summary: 'Prometheus HTTP service discovery: one target group per endpoint port', responses: { '200': ok('Target groups', { type: 'array' }), ...errors } } },
      '/v1/agent/connect': { get: { summary: "WebSocket for node agents (assignments down, status and events up); needs an agent or admin token", responses: { '101': { description: 'Switching protocols' }, ...errors } } },
    },
  };
}
