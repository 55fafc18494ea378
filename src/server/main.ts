// Starts a Gantry server: store, cluster cache, API, agent connections and controllers.
import type { LogSinkSpec } from '../model/log-shipping.js';
import { ensurePrivateDir } from '../host/private-files.js';
import { join } from 'node:path';
import { checkSqliteFile, openStore, sqlitePathOf } from '../store/index.js';
import type { Store } from '../store/store.js';
import { timedStore } from '../store/timed-store.js';
import { ServerMetrics } from './metrics.js';
import { ClusterState } from './state.js';
import { TokenAuth } from './auth.js';
import { clusterIdentity } from './cluster-identity.js';
import { buildHttpServer } from './http.js';
import { clientSocketBudget, fileLimit } from '../host/file-limit.js';
import { StreamCounter } from './api/streams.js';
import { AdoptionService } from './services/adoption.js';
import type { RouteEntry } from './access.js';
import { AppService } from './services/apps.js';
import { EventLog } from './services/events.js';
import { RepeatedFailure } from './services/failures.js';
import { AgentHub } from './agents.js';
import { RegistryService } from './services/registry.js';
import { ReleaseService } from './services/releases.js';
import { NodeService } from './services/nodes.js';
import { RolloutService } from './services/rollouts.js';
import { EndpointCatalog } from '../discovery/catalog.js';
import { registryKey } from '../model/registry.js';
import { RedisPublisher } from '../discovery/redis.js';
import { UpstreamRenderer, type RendererConfig, type RenderOutcome } from '../discovery/renderer.js';
import { DnsServer, type DnsOptions } from '../discovery/dns.js';
import { ReplicaController } from './controllers/replicas.js';
import { NodeController } from './controllers/nodes.js';
import type { ApiContext } from './api/context.js';
import { BuildService } from './services/builds.js';
import { SecretBox } from './secret-box.js';
import { RegistryLoginService } from './services/registry-logins.js';
import { RegistryClient } from './images/registry-client.js';
import { ImagePinner } from './images/pinning.js';
import { PrepullService } from './services/prepull.js';
import { UserService } from './services/users.js';
import { TeamService } from './services/teams.js';
import { ApprovalService } from './services/approvals.js';
import { InvitationService } from './services/invitations.js';
import { AuditLog } from './services/audit.js';
import { TerminalSessions } from './services/terminals.js';
import { DirectoryUsers } from './services/directory-users.js';
import { CompanyDirectory } from './directory/client.js';
import type { DirectoryConfig } from './directory/config.js';
import { QuotaService } from './services/quotas.js';
import { SecretService } from './services/secrets.js';
import { ConfigService } from './services/configs.js';
import { InspectionService } from './services/inspections.js';
import type { InspectPolicy } from '../model/inspection.js';
import { loadInspectPolicy } from './inspect-policy.js';
import { UsageService } from './services/usage.js';
import { AlertService, type AlertConfig } from './alerts/service.js';
import type { NotifierOptions } from './alerts/notifier.js';
import { loadAlertRules } from './alerts/rules-file.js';
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
  /** Start on an empty store file (a new cluster); without it an empty file is refused as a wiped store. */
  init?: boolean;
  /** Admin token to create on first start instead of a random one (scripted set-ups, tests). */
  bootstrapToken?: string;
  /** PEM certificate and key: serve HTTPS, and WSS to agents. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Fixed host ports below 1024 that specs may use (any other is refused: it needs root on the node). */
  allowedPrivilegedPorts?: number[];
  /** The web console's built files (default: dist/web beside the built server, made by npm run build). */
  webDir?: string;
  /** Most client sockets open at once (default: from the process's file limit). */
  maxConnections?: number;
  /** The key that seals stored secrets (default <dataDir>/secret.key, made on first start; GANTRY_SECRET_KEY wins). */
  secretKeyFile?: string;
  /** Docker's per-registry trust folder, <dir>/<host:port>/ca.crt (default /etc/docker/certs.d). */
  registryCertsDir?: string;
  /** How long the server waits for a registry when pinning a tag (default 10 s). */
  registryTimeoutMs?: number;
  log?: boolean;
  /** Sign people in against this company directory (LDAP) too (directory/config.ts reads its file). */
  directory?: DirectoryConfig;
  /** The checks agents run on their nodes (inspect-policy.ts reads the file); default: the built-in policy. */
  inspectPolicy?: InspectPolicy;
  /** Log sinks for apps whose spec has no `logs:` (log-sinks-config.ts reads the file). */
  logSinks?: LogSinkSpec[];
  /** Cluster alert rules and webhook receivers (alerts/rules-file.ts reads the file); default: the built-in rules, no receivers. */
  alertRules?: AlertConfig;
  /** How often alerts are evaluated (default 5 s; `--alert-interval`); notifier timing for tests. */
  alertIntervalMs?: number;
  alertNotifier?: NotifierOptions;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Set on the very first start only: the admin token, to be shown once. */
  firstAdminToken?: string;
  store: Store;
  /** The DNS server's port (UDP and TCP), when it runs. */
  dnsPort?: number;
  /** A token for the agent of `node` running in this same process; valid until the server stops. */
  localAgentToken(node: string): string;
  /** Every route the router holds, with who may call it (the access tests enumerate these). */
  routes(): RouteEntry[];
  close(): Promise<void>;
}

/**
 * The registry TTL, the heartbeat interval agents are told and the node timeout; throws when the
 * timeout is shorter than two heartbeats (one late heartbeat would mark a live node down).
 */
export function livenessTiming(options: Pick<ServerOptions, 'registryTtlMs' | 'nodeTimeoutMs'>): { registryTtlMs: number; heartbeatMs: number; nodeTimeoutMs: number } {
  const registryTtlMs = options.registryTtlMs ?? 15_000;
  // Three heartbeats per lease TTL: one lost heartbeat never expires a healthy node's endpoints.
  const heartbeatMs = Math.min(5000, Math.floor(registryTtlMs / 3));
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 30_000;
  if (!(nodeTimeoutMs >= 2 * heartbeatMs)) {
    const s = (ms: number) => `${Number((ms / 1000).toFixed(3))}s`;
    throw new Error(
      `--node-timeout ${s(nodeTimeoutMs)} is shorter than two heartbeat intervals (2 × ${s(heartbeatMs)}; agents heartbeat every min(5s, --registry-ttl / 3), ` +
        `and --registry-ttl is ${s(registryTtlMs)}): one late heartbeat would mark a live node down. ` +
        `Give --node-timeout ${s(2 * heartbeatMs)} or more, or --registry-ttl ${s(3 * Math.floor(nodeTimeoutMs / 2))} or less.`,
    );
  }
  return { registryTtlMs, heartbeatMs, nodeTimeoutMs };
}

/** dist/web when this runs from dist/server; from the sources, src/web, which does not exist (the server says how to build it). */
const DEFAULT_WEB_DIR = join(import.meta.dirname, '..', 'web');

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  // Before anything is opened or created: a refused setting leaves no trace.
  const timing = livenessTiming(options);
  ensurePrivateDir(options.dataDir);
  const storeUrl = options.storeUrl ?? `sqlite:${join(options.dataDir, 'gantry.db')}`;
  const storePath = sqlitePathOf(storeUrl);
  if (storePath !== ':memory:') checkSqliteFile(storePath, { init: options.init });
  const metrics = new ServerMetrics();
  // Every store call the server makes is timed, whoever makes it.
  const store = timedStore(await openStore(storeUrl), metrics.storeCall);
  const secrets = SecretBox.load(options.secretKeyFile ?? join(options.dataDir, 'secret.key'));
  const auth = new TokenAuth(store, secrets.derivedKey('session csrf'));
  const firstAdminToken = await auth.init(options.bootstrapToken);
  const cluster = await clusterIdentity(store);
  const state = await ClusterState.load(store);
  const events = new EventLog(store);
  const catalog = await EndpointCatalog.load(store);
  const registryTtlMs = timing.registryTtlMs;
  const registry = new RegistryService(store, catalog, registryTtlMs, (node, silentMs) => {
    events.note({ level: 'warning', type: 'registry.lease_lapsed', node, message: `node ${node} was silent for ${silentMs} ms (registry TTL ${registryTtlMs} ms): its endpoints left the registry and are registered again` });
  });
  const registryLogins = new RegistryLoginService(store, state, secrets, events);
  const registryClient = new RegistryClient({ certsDir: options.registryCertsDir ?? '/etc/docker/certs.d', timeoutMs: options.registryTimeoutMs ?? 10_000 });
  // Rolling an app for a new secret value is an apply of its spec, with a note saying why.
  const teamSecrets: SecretService = new SecretService(store, state, secrets, events, (spec, user, note) => apps.apply(spec, user, { note }));
  const teamConfigs: ConfigService = new ConfigService(store, state, events, (spec, user, note) => apps.apply(spec, user, { note }));
  const usage = new UsageService(state);
  const agents = new AgentHub(store, state, events, registry, auth, cluster, timing.heartbeatMs, (images) => registryLogins.credentialsForImages(images), (refs) => teamSecrets.valuesFor(refs), (refs) => teamConfigs.valuesFor(refs), usage);
  const pinner = new ImagePinner(registryClient, (host) => registryLogins.credentialsFor(host), async (image) => {
    const { digest, node } = await agents.resolveImage(image, options.registryTimeoutMs ?? 10_000);
    events.note({ level: 'info', type: 'app.image_resolved', message: `${image} resolved to ${digest} through node ${node}'s engine (the server cannot reach its registry)` });
    return digest;
  });
  const quotas = new QuotaService(store, state, events);
  const apps = new AppService(store, state, events, new Set(options.allowedPrivilegedPorts ?? []), pinner, quotas, (spec) => teamConfigs.pin(teamSecrets.pin(spec)));
  const replicas = new ReplicaController(store, state, events);
  replicas.onPass = metrics.reconcilePass;
  replicas.defaultLogSinks = options.logSinks ?? [];
  metrics.follow({ state, isConnected: (node) => agents.isConnected(node), passFigures: () => replicas.passFigures() });
  const users = new UserService(store, auth, events);
  const inspections = new InspectionService(store, events, options.inspectPolicy ?? loadInspectPolicy());
  agents.useInspections(inspections);
  const alertConfig = options.alertRules ?? loadAlertRules();
  const audit = new AuditLog(store);
  const ctx: ApiContext = {
    state, events, agents, catalog, registry, store, apps, replicas, auth, registryLogins, streams: new StreamCounter(), metrics,
    users,
    audit,
    terminals: new TerminalSessions(state, audit),
    teams: new TeamService(store, state, events, async (user) => (await users.find(user)) !== undefined),
    prepulls: new PrepullService(store, state, agents, events, () => void ctx.replicas.reconcile().catch(() => {})),
    releases: new ReleaseService(store, apps),
    nodes: new NodeService(store, state, events),
    adoption: new AdoptionService(store, state, events, agents),
    rollouts: new RolloutService(store, state, apps, replicas, events),
    builds: new BuildService(store, events),
    quotas,
    approvals: new ApprovalService(store, state, events, apps),
    invitations: new InvitationService(store, state, auth, users, events),
    secrets: teamSecrets,
    secretKeyId: secrets.keyId,
    configs: teamConfigs,
    inspections,
    usage,
    alerts: new AlertService(store, state, events, usage, inspections, alertConfig, GANTRY_VERSION, { externalUrl: alertConfig.externalUrl ?? `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${options.port ?? 7070}`, ...options.alertNotifier }),
  };
  apps.approvals = ctx.approvals;
  await ctx.teams.ensureDefaultTeam();
  if (options.directory) users.useDirectory(new DirectoryUsers(store, new CompanyDirectory(options.directory), options.directory, ctx.teams, auth, events));
  const liveness = new NodeController(store, state, events, (node) => agents.contact(node), timing.nodeTimeoutMs, (node) => catalog.onNode(node).map(registryKey));

  const { server, routes } = await buildHttpServer(ctx, auth, { log: options.log, tls: options.tls, maxConnections: options.maxConnections ?? clientSocketBudget(fileLimit()), webDir: options.webDir ?? DEFAULT_WEB_DIR });
  const redis = options.redisUrl ? new RedisPublisher(store, options.redisUrl, 'gantry', (message) => events.note({ level: 'warning', type: 'discovery.redis', message })) : undefined;
  await redis?.start();
  const renderers = (options.renderers ?? []).map((config) => new UpstreamRenderer(catalog, config, (outcome) => void recordRender(events, outcome).catch((err: Error) => console.error(`gantry server: the outcome of renderer ${outcome.name} was not recorded: ${err.message}`))));
  for (const renderer of renderers) await renderer.start();
  const dns = options.dns ? new DnsServer(catalog, options.dns) : undefined;
  const dnsPort = dns ? (await dns.start()).port : undefined;

  const address = await server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 7070 });
  const port = Number(new URL(address).port);

  let stopping = false;
  // A pass that fails (a full disk, ...) is said once per reason, on stderr and as an event
  // (which lands once the store takes writes again), and the loop goes on. A pass only writes
  // what it decided, in one transaction: one that cannot write changes nothing, anywhere.
  const reported = (what: string) => new RepeatedFailure(what, (level, message, error) => {
    // A bug's stack helps; a full disk's does not.
    const stack = error instanceof Error && (error as { statusCode?: number }).statusCode !== 503 ? `\n${error.stack}` : '';
    console.error(`gantry server: ${message}${stack}`);
    events.note({ level, type: level === 'error' ? 'server.loop_failed' : 'server.loop_recovered', message });
  });
  const livenessFailure = reported('the node liveness check');
  const reconcileFailure = reported('the reconcile pass');
  const reconcileReported = () => ctx.replicas.reconcile().then(() => reconcileFailure.succeeded(), (err: unknown) => {
    if (!stopping) reconcileFailure.failed(err);
  });
  // loop and reconcileReported never reject (every failure is caught and reported): their
  // promises may be dropped by setTimeout and `void`.
  const loop = async () => {
    if (stopping) return;
    try {
      await liveness.check();
      livenessFailure.succeeded();
    } catch (err) {
      if (!stopping) livenessFailure.failed(err);
    }
    await reconcileReported();
    if (!stopping) timer = setTimeout(loop, options.reconcileIntervalMs ?? 1000);
  };
  let timer = setTimeout(loop, 0);
  await ctx.alerts!.start(options.alertIntervalMs ?? 5000);
  // React to reports at once (a node back, an instance healthy) instead of at the next tick.
  let soon: NodeJS.Timeout | undefined;
  const unsubscribe = state.onChange((kind) => {
    if ((kind === 'status' || kind === 'node') && !soon) soon = setTimeout(() => { soon = undefined; void reconcileReported(); }, 50);
  });

  return {
    url: `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    firstAdminToken,
    dnsPort,
    store,
    localAgentToken: (node) => auth.ephemeralToken('agent', 'local-agent', node),
    routes: () => routes.map((route) => ({ ...route })),
    async close() {
      stopping = true;
      clearTimeout(timer);
      clearTimeout(soon);
      unsubscribe();
      ctx.terminals.close();
      agents.close();
      await ctx.alerts?.close();
      usage.close();
      await redis?.stop();
      for (const renderer of renderers) await renderer.stop();
      await dns?.stop();
      await server.close();
      await ctx.replicas.reconcile().catch(() => {});
      ctx.replicas.close();
      ctx.prepulls.close();
      await registryClient.close();
      state.close();
      catalog.close();
      await store.close();
    },
  };
}

async function recordRender(events: EventLog, outcome: RenderOutcome): Promise<void> {
  if (outcome.refused) {
    await events.record({ level: 'warning', type: 'discovery.render_refused', message: `${outcome.name}: ${outcome.refused.length} unsafe value(s) kept out of the file: ${outcome.refused.slice(0, 5).join('; ')}`, data: { revision: outcome.revision } });
  }
  if (!outcome.ok) {
    await events.record({ level: 'error', type: 'discovery.render_failed', message: `${outcome.name}: the new file was not installed: ${outcome.error ?? 'unknown error'}`, data: { revision: outcome.revision } });
  } else if (outcome.changed) {
    await events.record({ level: 'info', type: 'discovery.rendered', message: `${outcome.name}: rendered revision ${outcome.revision} and reloaded in ${Math.round(outcome.durationMs)}ms`, data: { revision: outcome.revision } });
  }
}
