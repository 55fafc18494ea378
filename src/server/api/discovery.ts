// Service discovery over HTTP: the registry (read, and self-registration of outside services),
// a resumable watch stream of registry and instance changes, Prometheus HTTP service discovery.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Watcher } from '../../store/store.js';
import { parseDuration, DURATION_PATTERN } from '../../model/units.js';
import { visibleTo, type ApiContext } from './context.js';
import { mayRead, type Kind } from '../policy.js';
import { teamScope } from '../services/teams.js';
import { openEventStream } from './streams.js';
import { LeaseParams } from './params.js';
import { hostAddress, labelMap, name, port } from '../../model/names.js';

const RegistryQuery = z.object({ app: name('app').optional(), env: name('env').optional(), entry: name('entrypoint').optional() });
const MAX_LEASE_TTL_MS = 24 * 3_600_000;
const ExternalEndpoint = z.strictObject({
  app: name('app'),
  env: name('env').default('default'),
  entry: name('entrypoint'),
  id: name('id').optional(),
  // Rendered into nginx configs and DNS answers as is: only an IP address or a host name.
  address: hostAddress(),
  ports: z.record(name('port name'), port()).refine((ports) => Object.keys(ports).length <= 32, 'at most 32 ports'),
  labels: labelMap().default({}),
  ttl: z
    .union([z.number().int().min(1000), z.string().regex(DURATION_PATTERN)])
    .default('30s')
    .transform((v) => parseDuration(v)!)
    .refine((ms) => ms >= 1000 && ms <= MAX_LEASE_TTL_MS, 'ttl: between 1s and 24h'),
});

/** What the watch stream may follow: a name for each store prefix. */
const WATCHABLE: Record<string, string> = { registry: '/registry/', instances: '/instances/', status: '/status/', apps: '/apps/', nodes: '/nodes/' };

/**
 * Which keys of a watched prefix the caller sees: an app's record is read as the app (its spec),
 * a node's as the node; the rest are facts about an app's instances, seen as its events are.
 * A deletion is seen when the key was: by then the cache may no longer know whose it was.
 */
function watchFilter(ctx: ApiContext, request: FastifyRequest, prefix: string, onlyApp: string | undefined): (key: string, deleted?: boolean) => boolean {
  const [kind, appOf]: [Kind, (rest: string) => string | undefined] =
    prefix === '/apps/' ? ['app', (rest) => rest]
    : prefix === '/nodes/' ? ['node', (rest) => rest]
    : prefix === '/status/' ? ['event', (rest) => ctx.state.instances.get(rest)?.app]
    : ['event', (rest) => rest.split('/', 1)[0]];
  const visible = mayRead(request.caller!, kind, teamScope(ctx.state));
  if (visible(undefined) && onlyApp === undefined) return () => true;
  const shown = new Set<string>();
  return (key, deleted) => {
    if (deleted) return shown.delete(key);
    const app = appOf(key.slice(prefix.length));
    if ((onlyApp !== undefined && app !== onlyApp) || !visible(app)) return false;
    shown.add(key);
    return true;
  };
}
const WatchQuery = z
  .object({
    prefix: z.enum(Object.keys(WATCHABLE) as [string, ...string[]]).default('registry'),
    since: z.coerce.number().int().min(0).optional(),
    /** Only this app's keys (not for nodes): the console's app page follows one app, not the fleet. */
    app: name('app').optional(),
  })
  .refine((q) => q.app === undefined || q.prefix !== 'nodes', { path: ['app'], message: 'app: nodes belong to no app' });

export function discoveryRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/registry', async (request) => {
    const { app, env, entry } = RegistryQuery.parse(request.query);
    const visible = visibleTo(ctx, request, 'discovery');
    const endpoints = ctx.catalog.list().filter((e) => (!app || e.app === app) && (!env || e.env === env) && (!entry || e.entry === entry) && visible(e.app));
    return { revision: ctx.catalog.revision, endpoints };
  });

  server.post('/v1/registry', async (request, reply) => {
    const { ttl, ...endpoint } = ExternalEndpoint.parse(request.body);
    const registered = await ctx.registry.registerExternal(endpoint, ttl);
    reply.code(201);
    return { ...registered, ttlMs: ttl };
  });

  server.post('/v1/registry/leases/:lease/keepalive', async (request) => {
    const { lease } = LeaseParams.parse(request.params);
    await ctx.registry.keepAliveExternal(lease);
    return { ok: true };
  });

  server.delete('/v1/registry/leases/:lease', async (request, reply) => {
    const { lease } = LeaseParams.parse(request.params);
    await ctx.registry.deregisterExternal(lease);
    reply.code(204);
  });

  server.get('/v1/watch', (request, reply) => watch(ctx, request, reply));

  // https://prometheus.io/docs/prometheus/latest/http_sd/ : one target group per endpoint port.
  server.get('/v1/discovery/prometheus', async (request) => {
    const visible = visibleTo(ctx, request, 'discovery');
    return ctx.catalog.list().filter((e) => visible(e.app)).flatMap((e) =>
      Object.entries(e.ports).map(([port, number]) => ({
        targets: [`${e.address}:${number}`],
        labels: {
          __meta_gantry_app: e.app,
          __meta_gantry_env: e.env,
          __meta_gantry_entry: e.entry,
          __meta_gantry_instance: e.id,
          __meta_gantry_node: e.node ?? '',
          __meta_gantry_port_name: port,
          __meta_gantry_release: String(e.release ?? ''),
          ...Object.fromEntries(Object.entries(e.labels).map(([k, v]) => [`__meta_gantry_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`, v])),
        },
      })),
    );
  });
}

/**
 * Server-Sent Events: `snapshot` (every key under the prefix, at a revision) unless the client
 * resumes with `since` / Last-Event-ID, then one `change` message per store revision with all
 * its changes; the event id is the revision, so a client that reconnects with the last id it
 * saw gets every later change exactly once. If that history is gone, it gets a new snapshot.
 */
async function watch(ctx: ApiContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const query = WatchQuery.parse(request.query);
  const prefix = WATCHABLE[query.prefix]!;
  const lastEventId = Number(request.headers['last-event-id']);
  const since = Number.isInteger(lastEventId) && lastEventId > 0 ? lastEventId : query.since;
  const visible = watchFilter(ctx, request, prefix, query.app);
  // Keys that start with the app's name narrow the store's range and watch too (status keys are instance ids).
  const range = query.app !== undefined && (query.prefix === 'instances' || query.prefix === 'registry') ? `${prefix}${query.app}/` : prefix;
  const stream = openEventStream(ctx.streams, request, reply);
  let watcher: Watcher | undefined;
  let closed = false;
  // Once the stream has begun its 200 is sent: a failure (the store unreadable, closing) can
  // only end it. The client reconnects with the last id it saw and carries on from there.
  const failed = (err: Error) => {
    request.log.warn(`a watch stream was ended: ${err.message}`);
    reply.raw.destroy();
  };

  const follow = (from: number) => {
    if (closed) return; // the client left while the snapshot was read
    watcher = ctx.store.watch(
      range,
      (events) => {
        const seen = events.filter((e) => visible(e.kv.key, e.type === 'delete'));
        if (seen.length === 0) return;
        const revision = seen[0]!.revision;
        // Store values are JSON already: spliced in as they are, not parsed and printed again per reader.
        const changes = seen.map((e) => `{"type":"${e.type}","key":${JSON.stringify(e.kv.key)}${e.type === 'put' ? `,"value":${e.kv.value}` : ''}}`);
        stream.sendJson('change', revision, `{"revision":${revision},"changes":[${changes.join(',')}]}`);
      },
      { fromRevision: from, onCompacted: () => void snapshotThenFollow().catch(failed) },
    );
  };
  const snapshotThenFollow = async () => {
    if (closed) return;
    const { kvs, revision } = await ctx.store.range(range);
    stream.sendJson('snapshot', revision, `{"revision":${revision},"items":[${kvs.filter((kv) => visible(kv.key)).map((kv) => `{"key":${JSON.stringify(kv.key)},"value":${kv.value}}`).join(',')}]}`);
    follow(revision + 1);
  };

  stream.onClose(() => {
    closed = true;
    watcher?.close();
  });
  try {
    if (since === undefined) await snapshotThenFollow();
    else follow(since + 1);
  } catch (err) {
    failed(err as Error);
  }
}
