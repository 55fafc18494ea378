// Starts a Gantry server: store, cluster cache, API, agent connections and controllers.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { ZodError } from 'zod';
import { openStore } from '../store/index.js';
import type { Store } from '../store/store.js';
import { SpecError, problemsFromZod } from '../model/spec.js';
import { ClusterState } from './state.js';
import { TokenAuth, bearer } from './auth.js';
import { AppService } from './services/apps.js';
import { EventLog } from './services/events.js';
import { AgentHub } from './agents.js';
import { RegistryService } from './services/registry.js';
import { ReleaseService } from './services/releases.js';
import { NodeService } from './services/nodes.js';
import { RolloutService } from './services/rollouts.js';
import { EndpointCatalog } from '../discovery/catalog.js';
import { RedisPublisher } from '../discovery/redis.js';
import { UpstreamRenderer, type RendererConfig, type RenderOutcome } from '../discovery/renderer.js';
import { DnsServer, type DnsOptions } from '../discovery/dns.js';
import { ReplicaController } from './controllers/replicas.js';
import { NodeController } from './controllers/nodes.js';
import { appRoutes } from './api/apps.js';
import { instanceRoutes } from './api/instances.js';
import { clusterRoutes } from './api/cluster.js';
import { discoveryRoutes } from './api/discovery.js';
import { releaseRoutes, rolloutRoutes } from './api/releases.js';
import { nodeRoutes } from './api/nodes.js';
import { tokenRoutes } from './api/tokens.js';
import { openApiDocument } from './api/openapi.js';
import type { ApiContext } from './api/context.js';
import { GANTRY_VERSION } from '../version.js';

export interface ServerOptions {
  dataDir: string;
  host?: string;
  port?: number;
  /** sqlite:<path> (default: <dataDir>/gantry.db) or etcd://host:port. */
  storeUrl?: string;
  /** A node silent for this long is down and its instances are replaced. */
  nodeTimeoutMs?: number;
  reconcileIntervalMs?: number;
  /** How long a node's registered endpoints outlive its last heartbeat. */
  registryTtlMs?: number;
  /** Publish registry and instance changes to this Redis (redis://host:port). */
  redisUrl?: string;
  /** Files re-rendered from the registry on every change (nginx upstreams, ...). */
  renderers?: RendererConfig[];
  /** Serve DNS for the registry ({entry}.{app}.{env}.{domain}); off when absent. */
  dns?: DnsOptions;
  /** Admin token to create on first start instead of a random one (scripted set-ups, tests). */
  bootstrapToken?: string;
  log?: boolean;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Set on the very first start only: the admin token, to be shown once. */
  firstAdminToken?: string;
  store: Store;
  /** The DNS server's port (UDP and TCP), when it runs. */
  dnsPort?: number;
  /** A token for an agent running in this same process; valid until the server stops. */
  localAgentToken(): string;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  mkdirSync(options.dataDir, { recursive: true });
  const store = await openStore(options.storeUrl ?? `sqlite:${join(options.dataDir, 'gantry.db')}`);
  const auth = new TokenAuth(store);
  const firstAdminToken = await auth.init(options.bootstrapToken);
  const state = await ClusterState.load(store);
  const events = new EventLog(store);
  const catalog = await EndpointCatalog.load(store);
  const registryTtlMs = options.registryTtlMs ?? 15_000;
  const registry = new RegistryService(store, catalog, registryTtlMs, (node, silentMs) => {
    void events.record({ level: 'warning', type: 'registry.lease_lapsed', node, message: `node ${node} was silent for ${silentMs} ms (registry TTL ${registryTtlMs} ms): its endpoints left the registry and are registered again` });
  });
  // Three heartbeats per lease TTL: one lost heartbeat never expires a healthy node's endpoints.
  const agents = new AgentHub(store, state, events, registry, Math.min(5000, Math.floor(registryTtlMs / 3)));
  const apps = new AppService(store, state, events);
  const replicas = new ReplicaController(store, state, events);
  const ctx: ApiContext = {
    state, events, agents, catalog, registry, store, apps, replicas, auth,
    releases: new ReleaseService(store, apps),
    nodes: new NodeService(store, state, events),
    rollouts: new RolloutService(store, state, apps, replicas.rollouts, events),
  };
  const liveness = new NodeController(store, state, events, (node) => agents.isConnected(node), options.nodeTimeoutMs ?? 30_000);

  const server = Fastify({ logger: options.log ? { level: 'info' } : false, bodyLimit: 4 * 1024 * 1024 });
  server.addContentTypeParser(['text/yaml', 'application/yaml', 'application/x-yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  installAuth(server, auth);
  installErrors(server);
  server.get('/healthz', async () => ({ ok: true, version: GANTRY_VERSION }));
  server.get('/openapi.json', async () => openApiDocument(GANTRY_VERSION));
  appRoutes(server, ctx);
  instanceRoutes(server, ctx);
  clusterRoutes(server, ctx);
  discoveryRoutes(server, ctx);
  releaseRoutes(server, ctx);
  rolloutRoutes(server, ctx);
  nodeRoutes(server, ctx);
  tokenRoutes(server, ctx);

  const sockets = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  server.server.on('upgrade', (request, socket, head) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const who = auth.verify(bearer(request.headers.authorization));
    if (url.pathname !== '/v1/agent/connect' || !who) {
      socket.end(`HTTP/1.1 ${who ? '404 Not Found' : '401 Unauthorized'}\r\nconnection: close\r\n\r\n`);
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => agents.accept(ws, who.name));
  });

  const redis = options.redisUrl ? new RedisPublisher(store, options.redisUrl, 'gantry', (message) => void events.record({ level: 'warning', type: 'discovery.redis', message })) : undefined;
  await redis?.start();
  const renderers = (options.renderers ?? []).map((config) => new UpstreamRenderer(catalog, config, (outcome) => void recordRender(events, outcome)));
  for (const renderer of renderers) await renderer.start();
  const dns = options.dns ? new DnsServer(catalog, options.dns) : undefined;
  const dnsPort = dns ? (await dns.start()).port : undefined;

  const address = await server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 7070 });
  const port = Number(new URL(address).port);

  let stopping = false;
  const loop = async () => {
    if (stopping) return;
    try {
      await liveness.check();
      await ctx.replicas.reconcile();
    } catch (err) {
      if (!stopping) server.log.error(err);
    }
    if (!stopping) timer = setTimeout(loop, options.reconcileIntervalMs ?? 1000);
  };
  let timer = setTimeout(loop, 0);
  // React to reports at once (a node back, an instance healthy) instead of at the next tick.
  let soon: NodeJS.Timeout | undefined;
  const unsubscribe = state.onChange((kind) => {
    if ((kind === 'status' || kind === 'node') && !soon) soon = setTimeout(() => { soon = undefined; void ctx.replicas.reconcile().catch(() => {}); }, 50);
  });

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    firstAdminToken,
    dnsPort,
    store,
    localAgentToken: () => auth.ephemeralToken('agent', 'local-agent'),
    async close() {
      stopping = true;
      clearTimeout(timer);
      clearTimeout(soon);
      unsubscribe();
      agents.close();
      sockets.close();
      await redis?.stop();
      for (const renderer of renderers) await renderer.stop();
      await dns?.stop();
      await server.close();
      await ctx.replicas.reconcile().catch(() => {});
      state.close();
      catalog.close();
      await store.close();
    },
  };
}

async function recordRender(events: EventLog, outcome: RenderOutcome): Promise<void> {
  if (!outcome.ok) {
    await events.record({ level: 'error', type: 'discovery.render_failed', message: `${outcome.name}: the new file was not installed: ${outcome.error ?? 'unknown error'}`, data: { revision: outcome.revision } });
  } else if (outcome.changed) {
    await events.record({ level: 'info', type: 'discovery.rendered', message: `${outcome.name}: rendered revision ${outcome.revision} and reloaded in ${Math.round(outcome.durationMs)}ms`, data: { revision: outcome.revision } });
  }
}

function installAuth(server: FastifyInstance, auth: TokenAuth): void {
  server.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    const who = auth.verify(bearer(request.headers.authorization));
    if (!who) return reply.code(401).send({ error: 'missing or unknown token: send Authorization: Bearer <token> (gantry up prints the admin token on first start)' });
    if (who.role !== 'admin') return reply.code(403).send({ error: `an ${who.role} token cannot use ${request.method} ${request.routeOptions.url ?? request.url}` });
    request.user = who.name;
  });
}

function installErrors(server: FastifyInstance): void {
  server.setErrorHandler((error: FastifyError | Error, _request, reply) => {
    if (error instanceof SpecError) return reply.code(400).send({ error: 'invalid app spec', problems: error.problems });
    if (error instanceof ZodError) return reply.code(400).send({ error: 'invalid request', problems: problemsFromZod(error) });
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) server.log.error(error);
    return reply.code(status).send({ error: status >= 500 ? `internal error: ${error.message}` : error.message });
  });
}
