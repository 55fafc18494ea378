// The node agent: keeps the instances assigned to this node running through the runtimes,
// whether or not the server is reachable, and reports what it sees. startAgent wires its parts
// and reads as the agent's life: learn the host, remember what ran here, connect, then tick
// (observe the runtimes, let each instance's supervisor act) and heartbeat until closed.
//
// The parts: assignments.ts (what runs here, one supervisor each), supervisor.ts (one instance's
// state machine), removals.ts (explicit removals, strays), ownership.ts (what may be removed, and
// for which cluster), reporter.ts (statuses and events), heartbeat.ts, log-relay.ts, tick.ts,
// recovery.ts (after a reboot), local-node.ts (the node's description), registration.ts (the
// service registry), connection.ts (the WebSocket), cache.ts (what survives an agent restart),
// image-gc.ts (old images Gantry used go).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_ACCEPTS, type AgentToServer, type ServerToAgent } from '../model/agent-protocol.js';
import { DockerRuntime } from '../runtime/docker.js';
import type { ManagedNetwork } from '../runtime/docker-network.js';
import { ProcessRuntime } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import { Assignments } from './assignments.js';
import { AgentCache } from './cache.js';
import { ServerConnection } from './connection.js';
import { AgentCredentials, SAVED_TOKEN_FILE } from './credentials.js';
import { Heartbeat } from './heartbeat.js';
import { ImageCollector, type ImageGcSettings } from './image-gc.js';
import { ImagePuller, prepull } from './images.js';
import { LocalNode } from './local-node.js';
import { LogShipping } from './log-shipping.js';
import { LogRelay } from './log-relay.js';
import { AgentTerminals } from './terminals.js';
import type { NodeIdentity } from './node-info.js';
import { NodeOwnership } from './ownership.js';
import { RebootRecovery } from './recovery.js';
import { Registration } from './registration.js';
import { Removals } from './removals.js';
import { Reporter } from './reporter.js';
import { NodeValues } from './node-values.js';
import { reloadConfigs } from './config-reload.js';
import { entrySecrets } from '../model/spec-secrets.js';
import { entryConfigs } from '../model/spec-configs.js';
import type { ConfigValueMap, SecretValueMap } from '../model/agent-protocol.js';
import { Ticker, observeRuntimes } from './tick.js';
import { NodeInspector } from './inspection.js';
import { UsageSampler } from './usage-sampler.js';
import { AgentMetrics } from './agent-metrics.js';
import { DEFAULT_SAMPLE_INTERVAL_MS } from '../model/usage.js';

export interface AgentOptions extends NodeIdentity {
  server: string;
  token: string;
  /** PEM CA certificate(s) that verify an https:// server (wss://); default: Node's CAs. */
  ca?: string | Buffer;
  dataDir: string;
  tickMs?: number;
  heartbeatMs?: number;
  dockerSocket?: string;
  /** A Gantry-managed Docker network for the containers (instances keep their address there). */
  dockerNetwork?: ManagedNetwork;
  /** The host's boot id (default: the kernel's); a change means the host rebooted. */
  bootId?: string;
  /** Use these runtimes instead of the default docker + process ones (tests). */
  runtimes?: Runtime[];
  /** Removal of images older than each app's newest releases here (image-gc.ts); default: keep 3, every 10 min. */
  imageGc?: ImageGcSettings;
  log?: (line: string) => void;
  /** Log files per instance: size per file, files kept, age (the process runtime only: Docker's json-file driver has none). */
  logRetention?: { maxBytes: number; maxFiles: number; maxAgeMs?: number };
  /** How often instances' usage is sampled and sent (usage-sampler.ts); default 10 s; 0: never (the bench's baseline). */
  sampleIntervalMs?: number;
  /** host:port to serve the agent's own metrics on (agent-metrics.ts); off when absent. */
  metricsAddress?: string;
}

export interface RunningAgent {
  name: string;
  /** The port of the agent's metrics listener, when it has one. */
  metricsPort?: number;
  close(): Promise<void>;
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log ?? (() => {});

  // The host: its capacity, and which runtimes answer.
  const retention = options.logRetention;
  const runtimes: Runtime[] = options.runtimes ?? [
    new DockerRuntime({ socketPath: options.dockerSocket, network: options.dockerNetwork, filesDir: join(options.dataDir, 'files'), ...(retention ? { logMaxSize: String(retention.maxBytes), logMaxFiles: retention.maxFiles } : {}) }),
    new ProcessRuntime({ stateDir: join(options.dataDir, 'process'), ...(retention ? { logMaxBytes: retention.maxBytes, logMaxFiles: retention.maxFiles, ...(retention.maxAgeMs !== undefined ? { logMaxAgeMs: retention.maxAgeMs } : {}) } : {}) }),
  ];
  const node = await LocalNode.describe(options, runtimes);
  for (const note of node.info.runtimeNotes) log(`runtime unavailable: ${note}`);

  // What this node remembers: its cluster, its token, what it ran and had seen.
  const cache = new AgentCache(options.dataDir, { log });
  const ownership = new NodeOwnership(cache, log);
  const secrets = new NodeValues<SecretValueMap[string]>(() => cache.loadSecrets(), (v) => cache.saveSecrets(v), (i) => entrySecrets(i.spec));
  const configs = new NodeValues<ConfigValueMap[string]>(() => cache.loadConfigs(), (v) => cache.saveConfigs(v), (i) => entryConfigs(i.spec));
  const lookup = { secret: (ref: string) => secrets.get(ref)?.value, config: (ref: string) => configs.get(ref) };
  const credentials = new AgentCredentials(options.dataDir, options.token);
  if (credentials.source === 'saved') log(`connecting with the agent token this node was given when it joined (${SAVED_TOKEN_FILE} in its data directory)`);

  // Images come from their registries as instances need them, with the server's credentials.
  const images = new ImagePuller(runtimes.find((runtime) => runtime.images)?.images);

  // Everything the agent says goes through the connection, made below once there is something to say.
  const send = (message: AgentToServer): boolean => connection.send(message);
  const registration = new Registration(send, () => ({ node: node.name, address: node.info.address }));
  const reporter = new Reporter({ send, cache, statuses: () => assignments.statuses(), nodeName: () => node.name });
  const assignments = new Assignments({
    runtimes,
    node,
    ownership,
    cache,
    reservedCores: options.reserved?.cores ?? 0,
    hooks: {
      report: (status) => reporter.status(status),
      event: (event) => reporter.event(event),
      register: (instance) => registration.register(instance),
      withdraw: (instance) => registration.withdraw(instance),
      portsTaken: (ports) => node.notePortsTaken(ports),
      secret: lookup.secret,
      config: lookup.config,
      ensureImage: (image, policy, watcher, use) => images.ensure(image, policy, watcher).then((outcome) => {
        if (use) imageCollector.noteUse(image, use); // the record image clean-up works from
        return outcome;
      }),
    },
  });
  const removals = new Removals({ assignments, ownership, withdraw: (instance) => registration.withdraw(instance), event: (event) => reporter.event(event), send, nodeName: () => node.name });
  const logs = new LogRelay(send, (id) => assignments.runtimeOf(id), () => node.name);
  const terminals = new AgentTerminals(send, (id) => assignments.runtimeOf(id), () => node.name);
  // The server's inspection policy, checked now and then and on request (inspection.ts).
  const inspector = new NodeInspector({ send, nodeName: () => node.name, hasDocker: () => node.info.runtimes.includes('docker'), dockerSocket: options.dockerSocket });
  const shipping = new LogShipping((id) => assignments.runtimeOf(id), () => node.name, (event) => reporter.event(event), log);
  // Images Gantry used that no instance needs and no recent release uses go, now and then.
  const imageCollector: ImageCollector = new ImageCollector({ store: runtimes.find((runtime) => runtime.images)?.images, dataDir: options.dataDir, settings: options.imageGc, assignments, pulls: images, event: (event) => reporter.event(event), removed: () => node.imagesChanged(), log });
  imageCollector.start();

  // Until the server speaks, the cached assignments. After a reboot the instances this node ran
  // come back before it takes new ones.
  assignments.set(cache.loadAssignments());
  const recovery = new RebootRecovery(cache.rebootedSinceLastRun(options.bootId ?? readBootId()) && assignments.size > 0);
  if (recovery.recovering) log(`host rebooted: restarting the ${assignments.size} instances it ran before taking new ones`);
  node.setRecovering(recovery.recovering);

  const connection: ServerConnection = new ServerConnection({
    server: options.server,
    ca: options.ca,
    token: () => credentials.current,
    hello: () => ({ type: 'hello', node: node.info, statuses: assignments.statuses(), endpoints: registration.all(), cluster: ownership.rememberedCluster, unassigned: ownership.unassigned(assignments.records()), accepts: [...AGENT_ACCEPTS] }),
    onMessage: (message) => heard(message),
    onState: (connected, detail) => {
      log(detail);
      if (connected) reporter.flush();
      else terminals.closeAll();
    },
  });

  function heard(message: ServerToAgent): void {
    switch (message.type) {
      case 'assignments':
      case 'assignments.changed':
        images.learnAuth(message.registryAuth);
        if (message.type === 'assignments') assignments.set(message.instances);
        else assignments.change(message.instances, message.gone);
        secrets.update(message.secrets, assignments.records());
        void reloadConfigs(configs.update(message.configs, assignments.records()), { supervisors: assignments.all(), runtimeOf: (id) => assignments.runtimeOf(id), lookup, event: (event) => reporter.event(event) });
        removals.instruct(message.remove ?? []);
        assignments.save();
        return ticker.now();
      case 'logs':
        return void logs.open(message.requestId, message.instanceId, message.tail, message.follow, { since: message.since, grep: message.grep, timestamps: message.timestamps }).catch((err: Error) => log(`log stream ${message.requestId} failed: ${err.message}`));
      case 'logs.cancel':
        return logs.cancel(message.requestId);
      case 'welcome':
        heartbeat.follow(message.heartbeatMs);
        ownership.welcome(message.cluster);
        if (message.token) {
          const saved = credentials.save(message.token);
          log(saved ? `joined: this node's own agent token is saved in its data directory (${SAVED_TOKEN_FILE})` : "joined, but the node's own agent token could not be saved: it is lost when the agent stops");
        }
        return;
      case 'prepull':
        images.learnAuth(message.registryAuth);
        return void prepull(images, message.images, (event) => reporter.event({ ...event, node: node.name })).then((results) => send({ type: 'prepulled', requestId: message.requestId, results }));
      case 'image.resolve':
        images.learnAuth(message.registryAuth);
        return void images.resolve(message.image).then(
          (digest) => send({ type: 'image.resolved', requestId: message.requestId, digest }),
          (err: Error) => send({ type: 'image.resolved', requestId: message.requestId, error: err.message.slice(0, 4000) }),
        );
      case 'cluster':
        return ownership.join(message.id);
      case 'ack':
        return registration.acknowledged(message.requestId);
      case 'inspect.policy':
        return inspector.follow(message.policy);
      case 'inspect':
        return inspector.request(message.requestId);
      case 'clock':
        return inspector.clock(message.requestId, message.serverTime);
      case 'terminal.open':
      case 'terminal.input':
      case 'terminal.resize':
      case 'terminal.close':
        return terminals.handle(message);
    }
  }

  // Each tick: what runs here, each supervisor's turn, then what follows from a complete view.
  const ticker = new Ticker(
    options.tickMs ?? 1000,
    async () => {
      const seen = await observeRuntimes(node.usable, node.name, log);
      for (const supervisor of assignments.all()) {
        if (seen.listed.has(supervisor.runtimeName)) supervisor.tick(seen.instances.get(supervisor.instance.id)?.instance, seen.listedAt);
      }
      if (recovery.ended(assignments.all())) {
        node.setRecovering(false);
        log('previous instances are back: taking new ones');
        send({ type: 'heartbeat', node: node.info, endpoints: registration.all() });
      }
      if (seen.complete) {
        ownership.observe(new Map([...seen.instances].map(([id, { instance }]) => [id, instance])), (id) => assignments.has(id));
        removals.conclude(seen);
      }
      const started = new Set(assignments.statuses().filter((s) => s.state !== 'pending' && s.state !== 'pulling').map((s) => s.id));
      shipping.sync(assignments.records(), (id) => started.has(id));
      reporter.flush();
    },
    log,
  );

  const heartbeat = new Heartbeat(
    options.heartbeatMs,
    async () => {
      await node.refresh();
      send({ type: 'heartbeat', node: node.info, endpoints: registration.all(), unassigned: ownership.unassigned(assignments.records()) });
      reporter.heartbeat(() => assignments.statuses());
      reporter.flush();
    },
    log,
  );

  ticker.now();

  // What the instances use, for the server (gantry top), and the agent's own metrics.
  const metrics = new AgentMetrics(() => assignments.statuses());
  const sampler = new UsageSampler({
    intervalMs: options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS,
    runtimes: () => node.usable,
    instances: () => [...assignments.all()].map((supervisor) => ({ id: supervisor.instance.id, runtime: supervisor.runtimeName })),
    send,
    sampled: (seconds, instances) => metrics.sampled(seconds, instances),
    log,
  });
  if (options.sampleIntervalMs !== 0) sampler.start();

  const running: RunningAgent = {
    name: node.name,
    async close() {
      sampler.stop();
      await metrics.close();
      ticker.stop();
      inspector.stop();
      imageCollector.stop();
      heartbeat.stop();
      assignments.disposeAll();
      logs.close();
      terminals.closeAll();
      shipping.close();
      reporter.flush();
      connection.close();
      for (const runtime of runtimes) await runtime.close();
    },
  };
  // A metrics address that cannot be listened on (taken, not this host's) stops the agent whole.
  if (options.metricsAddress) {
    try {
      running.metricsPort = await metrics.listen(options.metricsAddress);
    } catch (err) {
      await running.close();
      throw new Error(`--metrics-address ${options.metricsAddress}: ${(err as Error).message}`);
    }
  }
  return running;
}
