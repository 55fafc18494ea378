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
import { NODE_LABEL, Supervisor, observationClock } from './supervisor.js';
import { Registration } from './registration.js';
import { NodeOwnership } from './ownership.js';
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
/** How long an instance found running without a record gets to stop after SIGTERM, when the server asks for its removal. */
const STRAY_GRACE_MS = 10_000;

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
  const ownership = new NodeOwnership(cache, log);
  /** Instances the server told this node to remove, until they are gone and the server was told. */
  const instructed = new Set<string>();

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
    // One no longer assigned is forgotten once it was removed (on an instruction); until then it
    // keeps running, supervised, and is reported as unassigned.
    for (const [id, supervisor] of supervisors) {
      if (!wanted.has(id) && supervisor.status.state === 'removed' && !supervisor.isBusy()) {
        supervisor.dispose();
        supervisors.delete(id);
      }
    }
    refreshSharedPool();
  };
  /** Every record this node supervises, assigned or not: what it must remember across restarts. */
  const records = () => [...supervisors.values()].map((s) => s.instance);

  const cached = cache.loadAssignments();
  ownership.setAssigned(cached);
  assign(cached);
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
      ownership.setAssigned(message.instances);
      assign(message.instances);
      for (const id of ownership.removable(message.remove ?? [])) removeOnInstruction(id);
      cache.saveAssignments(records());
      void tick().catch((err: Error) => log(`tick failed: ${err.message}`));
    } else if (message.type === 'logs') {
      void streamLogs(message.requestId, message.instanceId, message.tail, message.follow).catch((err: Error) => log(`log stream ${message.requestId} failed: ${err.message}`));
    } else if (message.type === 'welcome') {
      setHeartbeat(message.heartbeatMs);
      ownership.welcome(message.cluster);
      if (message.token) {
        const saved = credentials.save(message.token);
        log(saved ? `joined: this node's own agent token is saved in its data directory (${SAVED_TOKEN_FILE})` : 'joined, but the node\'s own agent token could not be saved: it is lost when the agent stops');
      }
    } else if (message.type === 'cluster') {
      ownership.join(message.id);
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
    hello: () => ({ type: 'hello', node: info, statuses: [...supervisors.values()].map((s) => s.status), endpoints: registration.all(), cluster: ownership.rememberedCluster, unassigned: ownership.unassigned(records()) }),
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
      // Read before listing: a supervisor ignores a view begun before its last action ended (a
      // container it started meanwhile would look missing, and be started a second time).
      const listedAt = observationClock();
      const observed = new Map<string, { instance: RuntimeInstance; runtime: Runtime }>();
      const listed = new Set<string>();
      for (const runtime of usable) {
        let instances: RuntimeInstance[];
        try {
          instances = await runtime.list();
        } catch (err) {
          log(`cannot list the ${runtime.name} runtime's instances: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
        listed.add(runtime.name);
        for (const instance of instances) {
          if (instance.labels[NODE_LABEL] === info.name) observed.set(instance.instanceId, { instance, runtime });
        }
      }
      // Not listed (the listing failed, or the runtime is unavailable) is not "gone": its
      // instances are neither started again nor reported vanished until it can be listed.
      for (const supervisor of supervisors.values()) {
        if (listed.has(supervisor.runtimeName)) supervisor.tick(observed.get(supervisor.instance.id)?.instance, listedAt);
      }
      recoveryDone();
      // Strays and finished removals are concluded only from a complete view: one missing from a
      // runtime that could not be listed is not gone.
      if (listed.size === usable.length) {
        ownership.observe(new Map([...observed].map(([id, { instance }]) => [id, instance])), (id) => supervisors.has(id));
        finishRemovals(observed);
      }
      flush();
    } finally {
      ticking = false;
    }
  }

  /**
   * The server removed this instance while the node was away: a supervised one takes its own
   * removal path (withdraw, before-stop hook, drain, stop, remove); one only found running is
   * withdrawn, stopped and removed here.
   */
  function removeOnInstruction(id: string): void {
    if (ownership.isAssigned(id) || instructed.has(id)) return;
    instructed.add(id);
    const supervisor = supervisors.get(id);
    if (supervisor) supervisor.reassign({ ...supervisor.instance, desired: 'removed' });
  }

  /** Tells the server which instructed removals are done (idempotent: it asks again until told). */
  function finishRemovals(observed: ReadonlyMap<string, { instance: RuntimeInstance; runtime: Runtime }>): void {
    const done: string[] = [];
    for (const id of instructed) {
      const supervisor = supervisors.get(id);
      const seen = observed.get(id);
      if (supervisor) {
        if (supervisor.status.state !== 'removed' || supervisor.isBusy()) continue;
        supervisor.dispose();
        supervisors.delete(id);
      } else if (seen) {
        if (!removingStrays.has(id)) void removeStray(seen.runtime, seen.instance);
        continue;
      }
      done.push(id);
    }
    if (done.length === 0) return;
    for (const id of done) instructed.delete(id);
    cache.saveAssignments(records());
    connection.send({ type: 'removed', ids: done });
  }

  const removingStrays = new Set<string>();
  async function removeStray(runtime: Runtime, observed: RuntimeInstance): Promise<void> {
    const id = observed.instanceId;
    const about = { instance: id, app: observed.labels['gantry.app'], entry: observed.labels['gantry.entry'] };
    removingStrays.add(id);
    try {
      await registration.withdraw({ id });
      if (observed.state === 'running') await runtime.stop(id, 'SIGTERM', STRAY_GRACE_MS);
      await runtime.remove(id);
      hooks.event({ level: 'info', type: 'instance.removed_on_instruction', ...about, message: `removed ${id} from ${info.name}, as the server asked` });
    } catch (err) {
      hooks.event({ level: 'warning', type: 'instance.error', ...about, message: `could not remove ${id} from ${info.name}: ${(err as Error).message}` });
    } finally {
      removingStrays.delete(id);
    }
  }

  const tickTimer = setInterval(() => void tick().catch((err: Error) => log(`tick failed: ${err.message}`)), options.tickMs ?? 1000);
  const heartbeat = async () => {
    ({ info, usable } = await describeNode(options, runtimes));
    info = { ...info, recovering, portsTaken: portsTaken.list() };
    connection.send({ type: 'heartbeat', node: info, endpoints: registration.all(), unassigned: ownership.unassigned(records()) });
    // Send every status now and then, so a lost report is repaired.
    for (const supervisor of supervisors.values()) dirty.set(supervisor.instance.id, supervisor.status);
    flush();
  };
  // A failed heartbeat (the runtimes could not be probed) is logged; the next one tries again.
  const beat = () => void heartbeat().catch((err: Error) => log(`heartbeat failed: ${err.message}`));
  let heartbeatTimer = setInterval(beat, options.heartbeatMs ?? 5000);
  // The server says how often it needs to hear from us (its registry leases depend on it).
  setHeartbeat = (ms: number) => {
    clearInterval(heartbeatTimer);
    heartbeatTimer = setInterval(beat, Math.min(ms, options.heartbeatMs ?? ms));
  };
  void tick().catch((err: Error) => log(`tick failed: ${err.message}`));

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
