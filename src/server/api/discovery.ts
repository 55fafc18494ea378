// Service discovery over HTTP: the registry (read, and self-registration of outside services),
// a resumable watch stream of registry and instance changes, Prometheus HTTP service discovery.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Watcher } from '../../store/store.js';
import { parseDuration, DURATION_PATTERN } from '../../model/units.js';
import type { ApiContext } from './context.js';
import { openEventStream } from './sse.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const RegistryQuery = z.object({ app: z.string().optional(), env: z.string().optional(), entry: z.string().optional() });
const ExternalEndpoint = z.strictObject({
  app: z.string().regex(NAME),
  env: z.string().regex(NAME).default('default'),
  entry: z.string().regex(NAME),
  id: z.string().regex(NAME).optional(),
  // Rendered into nginx configs and DNS answers as is: only an IP address or a host name.
  address: z.union([z.ipv4(), z.ipv6(), z.string().regex(/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/)], { error: 'expected an IPv4 or IPv6 address or a host name' }),
  ports: z.record(z.string().regex(NAME), z.number().int().min(1).max(65535)),
  labels: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/), z.string().regex(/^[A-Za-z0-9 ._:/@=+-]{0,256}$/, 'label values are letters, digits and " ._:/@=+-"')).default({}),
  ttl: z.union([z.number().int().min(1000), z.string().regex(DURATION_PATTERN)]).default('30s').transform((v) => parseDuration(v)!),
});

/** What the watch stream may follow: a name for each store prefix. */
const WATCHABLE: Record<string, string> = { registry: '/registry/', instances: '/instances/', status: '/status/', apps: '/apps/', nodes: '/nodes/' };
const WatchQuery = z.object({
  prefix: z.enum(Object.keys(WATCHABLE) as [string, ...string[]]).default('registry'),
  since: z.coerce.number().int().min(0).optional(),
});

export function discoveryRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/registry', async (request) => {
    const { app, env, entry } = RegistryQuery.parse(request.query);
    const endpoints = ctx.catalog.list().filter((e) => (!app || e.app === app) && (!env || e.env === env) && (!entry || e.entry === entry));
    return { revision: ctx.catalog.revision, endpoints };
  });

  server.post('/v1/registry', async (request, reply) => {
    const { ttl, ...endpoint } = ExternalEndpoint.parse(request.body);
    const registered = await ctx.registry.registerExternal(endpoint, ttl);
    reply.code(201);
    return { ...registered, ttlMs: ttl };
  });

  server.post('/v1/registry/leases/:lease/keepalive', async (request) => {
    const { lease } = z.object({ lease: z.string() }).parse(request.params);
    await ctx.registry.keepAliveExternal(lease);
    return { ok: true };
  });

  server.delete('/v1/registry/leases/:lease', async (request, reply) => {
    const { lease } = z.object({ lease: z.string() }).parse(request.params);
    await ctx.registry.deregisterExternal(lease);
    reply.code(204);
  });

  server.get('/v1/watch', (request, reply) => watch(ctx, request, reply));

  // https://prometheus.io/docs/prometheus/latest/http_sd/ : one target group per endpoint port.
  server.get('/v1/discovery/prometheus', async () =>
    ctx.catalog.list().flatMap((e) =>
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
    ),
  );
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
  const stream = openEventStream(request, reply);
  const send = stream.send;
  let watcher: Watcher | undefined;
  let closed = false;

  const follow = (from: number) => {
    if (closed) return; // the client left while the snapshot was read
    watcher = ctx.store.watch(
      prefix,
      (events) => {
        const revision = events[0]!.revision;
        send('change', revision, { revision, changes: events.map((e) => ({ type: e.type, key: e.kv.key, value: e.type === 'put' ? JSON.parse(e.kv.value) : undefined })) });
      },
      { fromRevision: from, onCompacted: () => void snapshotThenFollow() },
    );
  };
  const snapshotThenFollow = async () => {
    if (closed) return;
    const { kvs, revision } = await ctx.store.range(prefix);
    send('snapshot', revision, { revision, items: kvs.map((kv) => ({ key: kv.key, value: JSON.parse(kv.value) })) });
    follow(revision + 1);
  };

  stream.onClose(() => {
    closed = true;
    watcher?.close();
  });
  if (since === undefined) await snapshotThenFollow();
  else follow(since + 1);
}
