// The cluster, discovery and token paths of the OpenAPI document (openapi.ts holds the shared
// schemas and the app paths): nodes, pools and capacity (nodes.ts, cluster.ts), the
// registry, watch and Prometheus discovery (discovery.ts), tokens (tokens.ts) and the agent
// connection (http.ts).
import { INSTANCE_ID, NAME, NODE_NAME, TOKEN_NAME } from '../../model/names.js';
import { DURATION_PATTERN } from '../../model/units.js';
import { body, conflict, error, errors, eventStream, flag, list, matching, object, ok, op, pathParam, queryParam, ref } from './openapi-helpers.js';

const nodeActions = {
  cordon: 'Cordon a node: it keeps its instances but takes no new ones',
  uncordon: 'Make a cordoned or draining node ready again',
  drain: 'Drain a node: its instances move to other nodes',
};
const roles = [
  'admin: may do everything.',
  "agent: bound to one node (`node`, default: the token's name); may only open that node's agent connection.",
  'join: may open an agent connection for a NEW node once; that node is then given its own agent token in the welcome message. Expires after `ttl` (default 24h, at most 30 days).',
].join(' ');

export function clusterPaths(): Record<string, object> {
  const nodeParam = pathParam('name', matching(NODE_NAME), 'Node name');
  const leaseParam = pathParam('lease', { type: 'string', pattern: '^[0-9a-f]{1,32}$' }, 'The hex lease id returned by POST /v1/registry');
  const lastEventId = { name: 'Last-Event-ID', in: 'header', description: 'Resume after this id (takes precedence over `since`)', schema: { type: 'integer', minimum: 1 } };
  const names = (...params: string[]) => params.map((name) => queryParam(name, matching(NAME)));
  const nodeAnswer = ok('The node as it is now', object({ node: ref('Node') }));
  const check = object({ check: { type: 'string' }, status: { type: 'string', enum: ['pass', 'warn', 'fail', 'error'] }, value: { type: 'string' }, threshold: { type: 'string' }, message: { type: 'string' }, since: { type: 'integer', description: 'Since when the check has this status (ms since the epoch)' } });
  const inspectionAnswer = object({
    node: { type: 'string' },
    inspection: { oneOf: [{ type: 'null' }, object({ node: { type: 'string' }, at: { type: 'integer' }, checks: { type: 'object', additionalProperties: check } })] },
    summary: ref('CheckSummary'),
  });
  return {
    '/v1/nodes': { get: op({ summary: 'Nodes with capacity, allocation and liveness', responses: { '200': ok('Nodes', object({ nodes: list(ref('Node')) })) } }) },
    '/v1/server/reconcile': {
      get: op({
        summary: "What the reconcile passes cost: how many ran (all apps, or only those something happened to), the last one, and the recent passes' time in ms",
        responses: {
          '200': ok('Pass figures', object({
            passes: { type: 'integer' },
            fullPasses: { type: 'integer' },
            idlePasses: { type: 'integer' },
            recentMs: object({ n: { type: 'integer' }, p50: { type: 'number' }, p99: { type: 'number' }, max: { type: 'number' } }),
            last: object({ at: { type: 'integer' }, ms: { type: 'number' }, apps: {}, instances: { type: 'integer' }, wrote: { type: 'integer' } }),
          })),
        },
      }),
    },
    '/metrics': {
      get: op({
        summary: "The server's own metrics in Prometheus' text format: API latency by route, method and status class; reconcile passes and their time; placements; instances by state; connected agents; store call latency; Node process metrics (docs/observability.md)",
        responses: { '200': { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } },
      }),
    },
    ...Object.fromEntries(
      Object.entries(nodeActions).map(([action, summary]) => [`/v1/nodes/{name}/${action}`, { post: op({ summary, parameters: [nodeParam], responses: { '200': nodeAnswer } }) }]),
    ),
    '/v1/nodes/{name}/unassigned': {
      get: op({
        summary: 'Instances the node runs that this server does not know (its store was emptied, started with --init or restored from another cluster)',
        parameters: [nodeParam],
        responses: {
          '200': ok('What the node reports', object({ unassigned: list(object({ id: { type: 'string' }, app: { type: 'string' }, env: { type: 'string' }, entry: { type: 'string' }, release: { type: 'integer' }, adoptable: { type: 'boolean' } })) })),
          ...conflict('The node is not connected (its agent reports them)'),
        },
      }),
    },
    '/v1/nodes/adopt': {
      post: op({
        summary: 'Take over, as they run (no restart), the unassigned instances of these nodes (all that report some when none is named); apps missing from the store are made from them',
        requestBody: body({ nodes: list(matching(NODE_NAME)) }, [], false),
        responses: {
          '200': ok('Adopted', object({ nodes: list({ type: 'string' }), adopted: list({ type: 'string' }), createdApps: list({ type: 'string' }), skipped: list(object({ id: { type: 'string' }, reason: { type: 'string' } })) })),
          ...conflict('A node is not connected, or the cluster changed meanwhile'),
        },
      }),
    },
    '/v1/nodes/{name}/forget': {
      post: op({
        summary: 'Have the node remove the unassigned instances it runs (all, or those named)',
        parameters: [nodeParam],
        requestBody: body({ ids: list(matching(INSTANCE_ID)) }, [], false),
        responses: { '200': ok('What the node removes', object({ forgotten: list({ type: 'string' }) })), ...conflict('The node is not connected') },
      }),
    },
    '/v1/nodes/{name}/dedication': {
      put: op({
        summary: 'Dedicate a node to one app (it takes instances of that app only), or open it to every app again with null',
        parameters: [nodeParam],
        requestBody: body({ app: { type: ['string', 'null'], pattern: NAME.source } }, ['app']),
        responses: { '200': nodeAnswer },
      }),
    },
    '/v1/nodes/{name}/inspect': {
      post: op({
        summary: "Have the node's agent run its inspection checks now (kernel, cgroups, Docker, disk, inodes, memory, clock offset, uptime, file limit, sysctls); answers the stored results",
        parameters: [nodeParam],
        responses: { '200': ok('The results', inspectionAnswer), '404': error('No such node'), ...conflict('The agent is not connected, too old to inspect, or did not answer in time') },
      }),
    },
    '/v1/nodes/{name}/inspection': {
      get: op({
        summary: "The node's latest inspection results, per check with since when it has its status (null: not inspected yet)",
        parameters: [nodeParam],
        responses: { '200': ok('The results', inspectionAnswer), '404': error('No such node') },
      }),
    },
    '/v1/pools': { get: op({ summary: 'Node pools and the team each belongs to', responses: { '200': ok('Pools', object({ pools: list(ref('Pool')) })) } }) },
    '/v1/pools/{name}': {
      put: op({
        summary: "Create or replace a pool; one with a team takes only that team's apps",
        parameters: [pathParam('name', matching(NAME), 'Pool name')],
        requestBody: body({ team: matching(NAME) }, [], false),
        responses: { '200': ok('The pool', object({ pool: ref('Pool') })) },
      }),
    },
    '/v1/capacity': {
      get: op({
        summary: 'How many more instances of an entrypoint fit, and where',
        parameters: [queryParam('app', matching(NAME), 'App name', true), queryParam('entry', matching(NAME), 'Entrypoint name', true)],
        responses: {
          '200': ok('Capacity', object({ total: { type: 'integer' }, nodes: list(object({ node: { type: 'string' }, count: { type: 'integer' } })), blocked: { type: 'string', description: 'Why the other nodes take none' } }, ['total', 'nodes'])),
          '404': error('No such app, or it has no such entrypoint'),
        },
      }),
    },
    '/v1/events': {
      get: op({
        summary: 'Events, oldest first; with follow a Server-Sent Events stream (`event: gantry`, id = seq) resumable with Last-Event-ID',
        parameters: [
          ...['app', 'instance', 'node'].map((name) => queryParam(name, { type: 'string' })),
          queryParam('since', { type: 'integer', minimum: 0 }, 'Only events after this seq'),
          queryParam('limit', { type: 'integer', minimum: 1, maximum: 10_000 }),
          queryParam('follow', flag),
          lastEventId,
        ],
        responses: { '200': { description: 'Events', content: { 'application/json': { schema: object({ events: list({ type: 'object' }) }) }, 'text/event-stream': { schema: { type: 'string' } } } } },
      }),
    },
    '/v1/registry': {
      get: op({ summary: 'Registered endpoints: healthy instances with ports, and outside services', parameters: names('app', 'env', 'entry'), responses: { '200': ok('Endpoints and the revision they reflect', object({ revision: { type: 'integer' }, endpoints: list({ type: 'object' }) })) } }),
      post: op({
        summary: 'Register an outside service; keep it with POST /v1/registry/leases/{lease}/keepalive within its ttl',
        requestBody: body(
          {
            app: matching(NAME),
            env: { ...matching(NAME), default: 'default' },
            entry: matching(NAME),
            id: matching(NAME),
            address: { type: 'string', description: 'An IPv4 or IPv6 address or a host name' },
            ports: { type: 'object', propertyNames: matching(NAME), additionalProperties: { type: 'integer', minimum: 1, maximum: 65535 }, maxProperties: 32 },
            labels: { type: 'object', additionalProperties: { type: 'string' }, maxProperties: 64 },
            ttl: { oneOf: [{ type: 'integer', minimum: 1000, description: 'milliseconds' }, { type: 'string', pattern: DURATION_PATTERN.source }], default: '30s', description: 'Between 1s and 24h, e.g. "30s"' },
          },
          ['app', 'entry', 'address', 'ports'],
        ),
        responses: { '201': ok('Registered', object({ endpoint: { type: 'object' }, lease: { type: 'string' }, ttlMs: { type: 'integer' } })) },
      }),
    },
    '/v1/registry/leases/{lease}/keepalive': {
      post: op({ summary: 'Extend an outside registration by its ttl', parameters: [leaseParam], responses: { '200': ok('Kept', object({ ok: { type: 'boolean' } })), '404': error('The lease has expired or does not exist; register again') } }),
    },
    '/v1/registry/leases/{lease}': { delete: op({ summary: 'Deregister an outside service', parameters: [leaseParam], responses: { '204': { description: 'Gone' } } }) },
    '/v1/watch': {
      get: op({
        summary: 'Server-Sent Events: a snapshot, then one `change` per store revision (id = revision); resume with Last-Event-ID or since',
        parameters: [queryParam('prefix', { type: 'string', enum: ['registry', 'instances', 'status', 'apps', 'nodes'], default: 'registry' }), queryParam('since', { type: 'integer', minimum: 0 }), queryParam('app', { type: 'string', maxLength: 63 }, 'Only the keys of this app (any prefix but nodes)'), lastEventId],
        responses: { '200': eventStream('Event stream') },
      }),
    },
    '/v1/discovery/prometheus': {
      get: op({ summary: 'Prometheus HTTP service discovery: one target group per endpoint port', responses: { '200': ok('Target groups', list(object({ targets: list({ type: 'string' }), labels: { type: 'object', additionalProperties: { type: 'string' } } }))) } }),
    },
    '/v1/tokens': {
      get: op({ summary: 'API tokens with their role, node and expiry (never the token itself)', responses: { '200': ok('Tokens', object({ tokens: list(ref('Token')) })) } }),
      post: op({
        summary: 'Create a token; the answer holds it, the only time it is shown',
        description: `Roles: ${roles}`,
        requestBody: body(
          {
            name: matching(TOKEN_NAME),
            role: { type: 'string', enum: ['admin', 'agent', 'join'], default: 'agent' },
            node: { ...matching(NODE_NAME), description: "agent only: the node it speaks for (default: the token's name)" },
            ttl: { type: 'string', pattern: DURATION_PATTERN.source, description: 'join only: how long it may be used, e.g. "24h" (default 24h, at most 30 days)' },
          },
          ['name'],
        ),
        responses: {
          '201': ok('The new token', object({ name: { type: 'string' }, role: { type: 'string', enum: ['admin', 'agent', 'join'] }, node: { type: 'string' }, expiresAt: { type: 'integer' }, token: { type: 'string' } }, ['name', 'role', 'token'])),
          ...conflict('A token with this name exists already'),
        },
      }),
    },
    '/v1/tokens/{name}': {
      delete: op({
        summary: 'Revoke a token: it stops working at once and agent connections opened with it are closed; the last admin token cannot be revoked',
        parameters: [pathParam('name', matching(TOKEN_NAME), 'Token name')],
        responses: { '200': ok('Revoked', object({ revoked: ref('Token'), closedConnections: { type: 'integer' } })), ...conflict('The last admin token') },
      }),
    },
    '/v1/registries': {
      get: op({
        summary: 'Image registries with stored pull credentials: host, user name, who changed them when (never the password)',
        responses: { '200': ok('Registries', object({ registries: list(object({ host: { type: 'string' }, username: { type: 'string' }, team: { type: ['string', 'null'] }, createdAt: { type: 'integer' }, createdBy: { type: 'string' }, updatedAt: { type: 'integer' }, updatedBy: { type: 'string' } })) })) },
      }),
    },
    '/v1/registries/{host}': {
      put: op({
        summary: 'Store the credentials Gantry pulls from a registry with: sealed (AES-256-GCM) in the store, sent only to agents that pull from the host, never answered',
        parameters: [pathParam('host', { type: 'string', maxLength: 255 }, 'Registry host[:port]')],
        requestBody: body({ username: { type: 'string', maxLength: 256 }, password: { type: 'string', maxLength: 4096 } }, ['username', 'password']),
        responses: { '200': ok('Stored', object({ registry: object({ host: { type: 'string' }, username: { type: 'string' } }) })) },
      }),
      delete: op({
        summary: 'Remove the stored credentials of a registry',
        parameters: [pathParam('host', { type: 'string', maxLength: 255 }, 'Registry host[:port]')],
        responses: { '200': ok('Removed', object({ removed: { type: 'string' } })) },
      }),
    },
    '/v1/apps/{app}/prepull': {
      post: op({
        summary: "Pull the app's images now on every ready node its entries may run on (ahead of a big day); answers each node's outcome",
        parameters: [pathParam('app', matching(NAME), 'App name')],
        requestBody: body({ timeout: { type: 'string', pattern: DURATION_PATTERN.source, description: 'how long to wait for the nodes (default 10m, at most 1h)' } }, [], false),
        responses: { '200': ok('Per node', object({ nodes: list(object({ node: { type: 'string' }, results: list(object({ image: { type: 'string' }, ms: { type: 'integer' }, error: { type: 'string' } })), error: { type: 'string' } })) })) },
      }),
    },
    '/v1/auth/can-i': {
      get: op({
        summary: 'Whether the caller (or, for admins, another user: `as`) may do something, answered from the same policy table the server checks every request against',
        parameters: [queryParam('verb', { type: 'string', maxLength: 32 }, 'read, write, delete, or a word for one: apply, scale, logs, rm, …', true), queryParam('resource', { type: 'string', maxLength: 300 }, '<kind>[/<name>], e.g. app/shop, nodes', true), queryParam('as', matching(NAME), 'a user (admins only)')],
        responses: { '200': ok('The answer', object({ as: { type: 'string' }, role: { type: 'string' }, allowed: { type: 'boolean' }, why: { type: 'string' } })) },
      }),
    },
    '/v1/teams': {
      get: op({ summary: 'Teams: all of them for admins and operators, the ones the caller is in for others', responses: { '200': ok('Teams', object({ teams: list(ref('Team')) })) } }),
      post: op({
        summary: 'Create a team (admins), with its first owner',
        requestBody: body({ name: matching(NAME), owner: matching(NAME) }, ['name']),
        responses: { '201': ok('Created', object({ team: ref('Team') })), ...conflict('A team with this name exists') },
      }),
    },
    '/v1/teams/{team}': {
      get: op({ summary: 'A team and its members (its members and admins)', parameters: [pathParam('team', matching(NAME), 'Team name')], responses: { '200': ok('The team', object({ team: ref('Team') })) } }),
      delete: op({ summary: 'Remove a team that owns no apps (admins)', parameters: [pathParam('team', matching(NAME), 'Team name')], responses: { '200': ok('Removed', object({ removed: { type: 'string' } })), ...conflict('The team still owns apps') } }),
    },
    '/v1/teams/{team}/members/{user}': {
      put: op({
        summary: "Add a member or change their role (the team's owners, admins)",
        parameters: [pathParam('team', matching(NAME), 'Team name'), pathParam('user', matching(NAME), 'User name')],
        requestBody: body({ role: { type: 'string', enum: ['owner', 'developer', 'viewer'] } }, ['role']),
        responses: { '200': ok('The team', object({ team: ref('Team') })), ...conflict('The last owner cannot stop being one') },
      }),
      delete: op({
        summary: "Remove a member (the team's owners, admins); the last owner stays",
        parameters: [pathParam('team', matching(NAME), 'Team name'), pathParam('user', matching(NAME), 'User name')],
        responses: { '200': ok('The team', object({ team: ref('Team') })), ...conflict('The last owner cannot leave') },
      }),
    },
    '/v1/audit': {
      get: op({
        summary: 'The audit log, oldest first: every request that asked for a change (refused or not) and every sign-in attempt; who, role, team, route, target, status, outcome, address, duration. No request bodies. Read-only',
        parameters: [queryParam('user', { type: 'string', maxLength: 64 }, 'only this user or token'), queryParam('team', matching(NAME), 'only requests about this team\'s apps'), queryParam('since', { type: 'string', pattern: DURATION_PATTERN.source }, 'only the last such time, e.g. 24h'), queryParam('limit', { type: 'integer', minimum: 1, maximum: 100000, default: 1000 }, 'the newest this many')],
        responses: { '200': ok('Entries', object({ entries: list({ type: 'object' }) })) },
      }),
    },
    '/v1/users': {
      get: op({ summary: 'Users who sign in (never their passwords or hashes)', responses: { '200': ok('Users', object({ users: list(object({ name: { type: 'string' }, role: { type: 'string' }, createdAt: { type: 'integer' }, createdBy: { type: 'string' }, updatedAt: { type: 'integer' } })) })) } }),
      post: op({
        summary: 'Create a user (the password is kept only as a scrypt hash)',
        requestBody: body({ name: matching(NAME), password: { type: 'string', minLength: 10, maxLength: 1024 }, role: { type: 'string', enum: ['admin', 'operator', 'member'], default: 'member' } }, ['name', 'password']),
        responses: { '201': ok('Created', object({ user: { type: 'object' } })), ...conflict('A user with this name exists') },
      }),
    },
    '/v1/users/{name}': {
      patch: op({
        summary: "Change a user's password or role; every session of the user ends",
        description: 'A directory user\'s password is refused with 409 (it is set in the company directory), and their role is set again from the directory mapping at their next sign-in.',
        parameters: [pathParam('name', matching(NAME), 'User name')],
        requestBody: body({ password: { type: 'string', minLength: 10, maxLength: 1024 }, role: { type: 'string', enum: ['admin', 'operator', 'member'] } }),
        responses: { '200': ok('Changed', object({ user: { type: 'object' } })) },
      }),
      delete: op({ summary: 'Remove a user; their sessions end at once', parameters: [pathParam('name', matching(NAME), 'User name')], responses: { '200': ok('Removed', object({ removed: { type: 'string' } })) } }),
    },
    '/v1/agent/connect': {
      get: {
        summary: 'The node agent connection: a WebSocket (assignments down; status, events and registrations up)',
        description:
          "Open to agent, join and admin tokens. An agent token may only speak for its own node; a join token may add a new node once, and the welcome message then carries that node's own agent token. A hello for any other node closes the socket with code 1008.",
        responses: { '101': { description: 'Switching protocols' }, '401': errors['401'] },
      },
    },
  };
}
