// The node agent: keeps the instances assigned to this node running through the runtimes,
// whether or not the server is reachable, and reports what it sees.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { MAX_LOG_LINE, type ServerToAgent } from '../model/agent-protocol.js';
import type { GantryEvent, Instance, InstanceStatus } from '../model/types.js';
import type { Runtime, RuntimeInstance, LogLine } from '../runtime/runtime.js';
import { DockerRuntime } from '../runtime/docker.js';
import type { ManagedNetwork } from '../runtime/docker-network.js';
import { ProcessRuntime } from '../runtime/process.js';
import { AgentCache } from './cache.js';
import { ServerConnection } from './connection.js';
import { AgentCredentials, SAVED_TOKEN_FILE } from './credentials.js';
import { describeNode, type NodeIdentity } from './node-info.js';
import { NODE_LABEL, Supervisor } from './supervisor.js';
import { Registration } from './registration.js';
import { sharedPool } from './cpu.js';
import { TakenPortList, type TakenPort } from './ports.js';

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
  log?: (line: string) => void;
}

export interface RunningAgent {
  name: string;
  close(): Promise<void>;
}

const MAX_QUEUED_EVENTS = 2000;
const RECOVERY_LIMIT_MS = 120_000;
/** How long an instance nobody assigned gets to stop after SIGTERM. */
const ORPHAN_GRACE_MS = 10_000;

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log ?? (() => {});
  const runtimes = options.runtimes ?? [new DockerRuntime({ socketPath: options.dockerSocket, network: options.dockerNetwork }), new ProcessRuntime({ stateDir: join(options.dataDir, 'process') })];
  let { info, usable } = await describeNode(options, runtimes);
  const portsTaken = new TakenPortList();
  for (const note of info.runtimeNotes) log(`runtime unavailable: ${note}`);
  const cache = new AgentCache(options.dataDir, { log });
  const remembered = cache.loadStatuses();
  const supervisors = new Map<string, Supervisor>();
  const dirty = new Map<string, InstanceStatus>();
  const queuedEvents: GantryEvent[] = [];
  const logStreams = new Map<string, Readable>();
  let setHeartbeat: (ms: number) => void = () => {};
  /** Only assignments received from the server in this run allow removing unknown instances. */
  let authoritative = false;

  // Filled in below, once the connection exists: registration sends through it.
  let registration!: Registration;
  const hooks = {
    register: (instance: Instance) => registration.register(instance),
    withdraw: (instance: Instance) => registration.withdraw(instance),
    sharedCpuset: () => shared,
    portsTaken: (ports: TakenPort[]) => {
      portsTaken.add(ports);
      info = { ...info, portsTaken: portsTaken.list() };
    },
    report: (status: InstanceStatus) => {
      dirty.set(status.id, status);
      flushSoon();
    },
    event: (event: Omit<GantryEvent, 'time'>) => {
      queuedEvents.push({ ...event, node: info.name, time: Date.now() });
      if (queuedEvents.length > MAX_QUEUED_EVENTS) queuedEvents.splice(0, queuedEvents.length - MAX_QUEUED_EVENTS);
      flushSoon();
    },
  };

  const runtimeFor = (instance: Instance) => runtimes.find((r) => r.name === instance.runtime);
  let shared: number[] = [];
  // When bound instances come or go the shared pool changes: move the running unbound ones.
  const refreshSharedPool = () => {
    const next = sharedPool(info.cores, options.reserved?.cores ?? 0, [...supervisors.values()].map((s) => s.instance));
    if (next.join() === shared.join()) return;
    shared = next;
    for (const supervisor of supervisors.values()) {
      const { instance } = supervisor;
      if (instance.cpu?.mode === 'bound' || !['starting', 'running', 'unhealthy'].includes(supervisor.status.state)) continue;
      runtimeFor(instance)?.updateCpuset(instance.id, shared).catch((err: Error) => hooks.event({ level: 'warning', type: 'instance.limits', app: instance.app, entry: instance.entry, instance: instance.id, message: `could not move ${instance.id} to cores ${shared.join(',')}: ${err.message}` }));
    }
  };
  const assign = (instances: Instance[]) => {
    const wanted = new Set(instances.map((i) => i.id));
    // Instances that gain traffic first, then those that lose it: a switch never leaves nobody registered.
    const gainingFirst = [...instances].sort((a, b) => Number(b.serving !== false) - Number(a.serving !== false));
    for (const instance of gainingFirst) {
      const existing = supervisors.get(instance.id);
      if (existing) existing.reassign(instance);
      else {
        const runtime = runtimeFor(instance);
        if (runtime) supervisors.set(instance.id, new Supervisor(instance, runtime, '127.0.0.1', hooks, remembered.get(instance.id)));
      }
    }
    for (const [id, supervisor] of supervisors) {
      if (!wanted.has(id) && !supervisor.isBusy()) {
        supervisor.dispose();
        supervisors.delete(id);
      }
    }
    refreshSharedPool();
  };

  assign(cache.loadAssignments());
  // After a reboot the instances this node ran come back first; the server places nothing new
  // here until they have (or until RECOVERY_LIMIT_MS has passed).
  const bootedAt = Date.now();
  let recovering = cache.rebootedSinceLastRun(options.bootId ?? readBootId()) && supervisors.size > 0;
  if (recovering) log(`host rebooted: restarting the ${supervisors.size} instances it ran before taking new ones`);
  const recoveryDone = () => {
    if (!recovering) return;
    const pending = [...supervisors.values()].filter((s) => s.instance.desired === 'running' && !['running', 'failed', 'exited'].includes(s.status.state));
    if (pending.length > 0 && Date.now() - bootedAt < RECOVERY_LIMIT_MS) return;
    recovering = false;
    info = { ...info, recovering: false };
    log('previous instances are back: taking new ones');
    connection.send({ type: 'heartbeat', node: info, endpoints: registration.all() });
  };
  info = { ...info, recovering };

  const onMessage = (message: ServerToAgent) => {
    if (message.type === 'assignments') {
      authoritative = true;
      cache.saveAssignments(message.instances);
      assign(message.instances);
      void tick();
    } else if (message.type === 'logs') {
      void streamLogs(message.requestId, message.instanceId, message.tail, message.follow);
    } else if (message.type === 'welcome') {
      setHeartbeat(message.heartbeatMs);
      if (message.token) {
        const saved = credentials.save(message.token);
        log(saved ? `joined: this node's own agent token is saved in its data directory (${SAVED_TOKEN_FILE})` : 'joined, but the node\'s own agent token could not be saved: it is lost when the agent stops');
      }
    } else if (message.type === 'ack') {
      registration.acknowledged(message.requestId);
    } else if (message.type === 'logs.cancel') {
      logStreams.get(message.requestId)?.destroy();
      logStreams.delete(message.requestId);
    }
  };

  const credentials = new AgentCredentials(options.dataDir, options.token);
  if (credentials.source === 'saved') log(`connecting with the agent token this node was given when it joined (${SAVED_TOKEN_FILE} in its data directory)`);
  const connection = new ServerConnection({
    server: options.server,
    ca: options.ca,
    token: () => credentials.current,
    hello: () => ({ type: 'hello', node: info, statuses: [...supervisors.values()].map((s) => s.status), endpoints: registration.all() }),
    onMessage,
    onState: (connected, detail) => {
      log(detail);
      if (connected) flush();
    },
  });

  registration = new Registration((message) => connection.send(message), () => ({ node: info.name, address: info.address }));

  async function streamLogs(requestId: string, instanceId: string, tail: number | undefined, follow: boolean): Promise<void> {
    const supervisor = supervisors.get(instanceId);
    const runtime = supervisor ? runtimes.find((r) => r.name === supervisor.runtimeName) : undefined;
    if (!runtime) return void connection.send({ type: 'log.end', requestId, error: `instance ${instanceId} is not on node ${info.name}` });
    try {
      const stream = await runtime.logs(instanceId, { tail, follow });
      logStreams.set(requestId, stream);
      let batch: string[] = [];
      let timer: NodeJS.Timeout | undefined;
      const send = () => {
        timer = undefined;
        if (batch.length) connection.send({ type: 'log.lines', requestId, lines: batch });
        batch = [];
      };
      stream.on('data', (line: LogLine) => {
        // The server refuses longer lines (and the connection with them).
        batch.push(line.text.length > MAX_LOG_LINE ? `${line.text.slice(0, MAX_LOG_LINE)}… [line cut at ${MAX_LOG_LINE} characters]` : line.text);
        if (batch.length >= 500) send();
        else timer ??= setTimeout(send, 50);
      });
      stream.on('close', () => {
        clearTimeout(timer);
        send();
        logStreams.delete(requestId);
        connection.send({ type: 'log.end', requestId });
      });
      stream.on('error', (err) => connection.send({ type: 'log.end', requestId, error: err.message }));
    } catch (err) {
      connection.send({ type: 'log.end', requestId, error: err instanceof Error ? err.message : String(err) });
    }
  }

  // Reports go out as soon as they happen (batched per turn of the event loop), not at the next tick.
  let flushScheduled = false;
  function flushSoon(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      flush();
    });
  }

  function flush(): void {
    if (dirty.size > 0) cache.saveStatuses([...supervisors.values()].map((s) => s.status));
    if (dirty.size > 0 && connection.send({ type: 'status', statuses: [...dirty.values()] })) dirty.clear();
    if (queuedEvents.length > 0 && connection.send({ type: 'events', events: queuedEvents })) queuedEvents.length = 0;
  }

  let ticking = false;
  async function tick(): Promise<void> {
    if (ticking) return;
    ticking = true;
    try {
      const observed = new Map<string, { instance: RuntimeInstance; runtime: Runtime }>();
      for (const runtime of usable) {
        for (const instance of await runtime.list().catch(() => [])) {
          if (instance.labels[NODE_LABEL] === info.name) observed.set(instance.instanceId, { instance, runtime });
        }
      }
      for (const supervisor of supervisors.values()) supervisor.tick(observed.get(supervisor.instance.id)?.instance);
      recoveryDone();
      if (authoritative) {
        for (const [id, { runtime, instance }] of observed) {
          if (!supervisors.has(id) && !removingOrphans.has(id)) void removeOrphan(runtime, instance);
        }
      }
      flush();
    } finally {
      ticking = false;
    }
  }

  // An instance nobody assigned (removed while this agent was away): out of the registry if it
  // was in it, stopped gracefully, removed.
  const removingOrphans = new Set<string>();
  async function removeOrphan(runtime: Runtime, observed: RuntimeInstance): Promise<void> {
    const id = observed.instanceId;
    const about = { instance: id, app: observed.labels['gantry.app'], entry: observed.labels['gantry.entry'] };
    removingOrphans.add(id);
    try {
      await registration.withdraw({ id });
      if (observed.state === 'running') await runtime.stop(id, 'SIGTERM', ORPHAN_GRACE_MS);
      await runtime.remove(id);
      hooks.event({ level: 'info', type: 'instance.orphan_removed', ...about, message: `removed ${id}: no longer assigned to ${info.name}` });
    } catch (err) {
      hooks.event({ level: 'warning', type: 'instance.error', ...about, message: `could not remove ${id}, which is no longer assigned to ${info.name}: ${(err as Error).message}` });
    } finally {
      removingOrphans.delete(id);
    }
  }

  const tickTimer = setInterval(() => void tick().catch((err: Error) => log(`tick failed: ${err.message}`)), options.tickMs ?? 1000);
  const heartbeat = async () => {
    ({ info, usable } = await describeNode(options, runtimes));
    info = { ...info, recovering, portsTaken: portsTaken.list() };
    connection.send({ type: 'heartbeat', node: info, endpoints: registration.all() });
    // Send every status now and then, so a lost report is repaired.
    for (const supervisor of supervisors.values()) dirty.set(supervisor.instance.id, supervisor.status);
    flush();
  };
  let heartbeatTimer = setInterval(heartbeat, options.heartbeatMs ?? 5000);
  // The server says how often it needs to hear from us (its registry leases depend on it).
  setHeartbeat = (ms: number) => {
    clearInterval(heartbeatTimer);
    heartbeatTimer = setInterval(heartbeat, Math.min(ms, options.heartbeatMs ?? ms));
  };
  void tick();

  return {
    name: info.name,
    async close() {
      clearInterval(tickTimer);
      clearInterval(heartbeatTimer);
      for (const supervisor of supervisors.values()) supervisor.dispose();
      for (const stream of logStreams.values()) stream.destroy();
      flush();
      connection.close();
      for (const runtime of runtimes) await runtime.close();
    },
  };
}
