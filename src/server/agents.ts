// The server's side of the agent connections: admits nodes, pushes each node its assignments
// whenever they change, stores what agents report, relays log requests.
//
// An agent is trusted with its own node and nothing else. Every message is checked against the
// protocol's schemas first (a malformed one closes that socket, with an event, and nothing it
// said is used); then the rules of agent-trust.ts decide what of it concerns the agent's own node.
//
// It also keeps, in memory, when each node's agent was last heard from (the node controller's
// liveness evidence: storing every message would cost too much), and pings every socket so one
// left half-open by a frozen agent, a cut link or a host powered off is terminated.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { WebSocket } from 'ws';
import type { Store } from '../store/store.js';
import { AgentToServerSchema, type PrepullResult, type ConfigValueMap, type RegistryAuthMap, type SecretValueMap, type ServerToAgent, type UnassignedReport, type ValidAgentMessage } from '../model/agent-protocol.js';
import type { Instance, InstanceStatus, NodeInfo, NodeRecord } from '../model/types.js';
import { WriteBatch } from './write-batch.js';
import type { Endpoint } from '../model/registry.js';
import { entryImages, problemsFromZod } from '../model/spec.js';
import { entrySecrets } from '../model/spec-secrets.js';
import { entryConfigs } from '../model/spec-configs.js';
import type { ClusterState } from './state.js';
import { STORE, lastSegment } from './keys.js';
import { UNCHANGED, casUpdate } from './cas.js';
import type { Caller, TokenAuth } from './auth.js';
import type { ClusterIdentity } from './cluster-identity.js';
import { Refusal, admitNode, ownEndpoints, ownEvent, ownStatuses } from './agent-trust.js';
import type { EventLog } from './services/events.js';
import type { RegistryService } from './services/registry.js';
import type { AgentContact } from './controllers/nodes.js';

/** What an agent answers to a question of the server's. */
type AgentAnswer = Extract<ValidAgentMessage, { type: 'prepulled' | 'image.resolved' }>;

/** No node could be asked (none connected, ready, with Docker): not a verdict on the image. */
export class NoNodeToAsk extends Error {}

interface LogRequest {
  node: string;
  onLines: (lines: string[]) => void;
  onEnd: (error?: string) => void;
}

/** One agent connection: who opened it and, once admitted, the node it speaks for. */
interface Session {
  socket: WebSocket;
  caller: Caller;
  node?: string;
  info?: NodeInfo;
  /** The last time anything (a message, a pong) came on this socket: the socket's liveness. */
  seenAt: number;
  /** Terminated by us for not answering pings: not a close that restarts the node's timeout. */
  unresponsive?: boolean;
  /** Its hello said it takes assignments.changed (else it gets the whole set each time). */
  takesChanges?: boolean;
  /** Its hello said it pre-pulls images on request. */
  prepulls?: boolean;
  /** Its hello said it resolves image tags through its engine on request. */
  resolves?: boolean;
  /** What it last said of its node, and the record that was stored then: a heartbeat that says the same again is not compared field by field. */
  registered?: { info: string; record: NodeRecord | undefined };
}


/** How often one node's refused reports are recorded as an event (they may come every second). */
const REFUSAL_EVENT_EVERY_MS = 60_000;
/**
 * A socket silent (no pong, no message) this long is terminated: three pings unanswered, but
 * never less than 5 s, so a loaded host's few-second stall costs no reconnection.
 */
export function unresponsiveAfterMs(heartbeatMs: number): number {
  return Math.max(3 * heartbeatMs, 5000);
}

export class AgentHub {
  private readonly sessions = new Map<string, Session>();
  private readonly open = new Set<Session>();
  private readonly pushTimers = new Map<string, NodeJS.Timeout>();
  private readonly logRequests = new Map<string, LogRequest>();
  /** Questions asked of agents (prepull, image.resolve) by requestId, until answered or timed out. */
  private readonly questions = new Map<string, { node: string; answer: (message: AgentAnswer) => void }>();
  /** Per node, what its agent last reported running without an assignment. */
  private readonly unassignedOf = new Map<string, UnassignedReport[]>();
  /** Statuses from every node, written together. */
  private readonly statusWrites: WriteBatch;
  /** Per connected node, the instances whose assignment changed since the last message to it. */
  private readonly pendingChanges = new Map<string, { changed: Set<string>; gone: Set<string> }>();
  /** Per node, statuses it reported that could not be written (a full disk): tried again at its next heartbeat. */
  private readonly unsavedStatuses = new Map<string, Map<string, InstanceStatus>>();
  private readonly lastRefusalEvent = new Map<string, number>();
  /** Per node: the last valid message from its agent. */
  private readonly heardAt = new Map<string, number>();
  /** Per node: when its current connection was last closed other than by us for silence. */
  private readonly closedAt = new Map<string, number>();
  private readonly pingEveryMs: number;
  private readonly pinger: NodeJS.Timeout;
  private lastPingRound = Date.now();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly registry: RegistryService,
    private readonly auth: TokenAuth,
    private readonly cluster: ClusterIdentity,
    private readonly heartbeatMs: number,
    /** Pull credentials for the registries of these images (sent with the instances that need them). */
    private readonly registryAuth: (images: Iterable<string>) => RegistryAuthMap = () => ({}),
    /** The values of these secrets (sent only to the node whose instances use them). */
    private readonly secretValues: (refs: Iterable<string>) => SecretValueMap = () => ({}),
    /** The current versions of these configs (sent like secret values). */
    private readonly configValues: (refs: Iterable<string>) => ConfigValueMap = () => ({}),
  ) {
    this.statusWrites = new WriteBatch(store);
    this.unsubscribe = state.onChange((kind, key, before) => {
      const id = lastSegment(key);
      if (kind === 'instance') {
        // Its node now is told of the change; the node it was on, that it is gone from there.
        const now = state.instances.get(id);
        const was = before as Instance | undefined;
        if (now) this.changed(now.node, id, 'changed');
        if (was && was.node !== now?.node) this.changed(was.node, id, 'gone');
      } else if (kind === 'removal') {
        const node = state.removals.get(id)?.node ?? (before as { node?: string } | undefined)?.node;
        if (node !== undefined) this.schedulePush(node);
      } else if (kind === 'registry-login' && state.registryLogins.has(id)) {
        this.resendRegistryAuth(id);
      } else if (kind === 'secret') {
        this.resendValue('secrets', key.slice(STORE.secrets.prefix.length));
      } else if (kind === 'config') {
        this.resendValue('configs', key.slice(STORE.configs.prefix.length));
      }
    });
    this.pingEveryMs = Math.max(250, heartbeatMs);
    this.pinger = setInterval(() => this.pingAll(), this.pingEveryMs);
    this.pinger.unref();
  }

  isConnected(node: string): boolean {
    return this.sessions.has(node);
  }

  /** What this server heard of the node's agent since it started (the node controller's evidence). */
  contact(node: string): AgentContact {
    return { heardAt: this.heardAt.get(node), closedAt: this.closedAt.get(node), connected: this.sessions.has(node) };
  }

  /** Closes the connections opened with this token (it was revoked); returns how many. */
  disconnectToken(tokenName: string): number {
    let closed = 0;
    for (const session of this.open) {
      if (session.caller.name !== tokenName) continue;
      session.socket.close(4001, 'token revoked');
      closed++;
    }
    return closed;
  }

  accept(socket: WebSocket, caller: Caller): void {
    const session: Session = { socket, caller, seenAt: Date.now() };
    this.open.add(session);
    socket.on('pong', () => (session.seenAt = Date.now()));
    // One message at a time per agent: a withdrawal must not overtake the registration before it.
    let queue: Promise<void> = Promise.resolve();
    socket.on('message', (data, isBinary) => {
      const at = (session.seenAt = Date.now());
      const message = this.parse(session, data, isBinary);
      if (!message) return;
      // Heard when it arrived, not when the queue reaches it: a slow store must not make a live
      // node look silent. A hello names its node only once handled, hence the second call.
      this.heard(session, at);
      queue = queue
        .then(() => (session.socket.readyState === session.socket.OPEN ? this.handle(session, message).then(() => this.heard(session, at)) : undefined))
        .catch((err: Error) => {
          if (err instanceof Refusal) return this.drop(session, err.message);
          if (session.node && message.type === 'registry') this.send(session.node, { type: 'ack', requestId: message.requestId, error: err.message });
          this.events.note({ level: 'error', type: 'agent.error', node: session.node, message: `handling ${message.type} from ${this.who(session)}: ${err.message}` });
        });
    });
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      this.open.delete(session);
      const node = session.node;
      if (!node) return;
      if (this.sessions.get(node) === session) {
        this.sessions.delete(node);
        this.pendingChanges.delete(node); // its next connection gets the whole set
        // The agent was there until its socket closed (killed, restarting): its timeout counts
        // from now. Not so for a socket we terminated for silence: that agent was not there.
        if (!session.unresponsive) this.closedAt.set(node, Date.now());
      }
      for (const [id, request] of this.logRequests) {
        if (request.node !== node) continue;
        request.onEnd(`agent of node ${node} disconnected`);
        this.logRequests.delete(id);
      }
    });
  }

  /** Asks the node's agent for an instance's logs; returns a function that cancels the request. */
  requestLogs(node: string, instanceId: string, options: { tail?: number; follow: boolean }, onLines: LogRequest['onLines'], onEnd: LogRequest['onEnd']): () => void {
    const requestId = randomUUID();
    if (!this.send(node, { type: 'logs', requestId, instanceId, ...options })) {
      onEnd(`the agent of node ${node} is not connected`);
      return () => {};
    }
    this.logRequests.set(requestId, { node, onLines, onEnd });
    return () => {
      if (this.logRequests.delete(requestId)) this.send(node, { type: 'logs.cancel', requestId });
    };
  }

  /**
   * Asks the node's agent to pull `images` now; resolves with its answer per image. Rejects when
   * the agent is not connected, cannot pre-pull (an older version), or does not answer in time.
   */
  async prepull(node: string, images: string[], timeoutMs: number): Promise<PrepullResult[]> {
    const session = this.sessions.get(node);
    if (!session) throw new Error(`the agent of node ${node} is not connected`);
    if (!session.prepulls) throw new Error(`the agent of node ${node} does not pre-pull (an older version)`);
    const answer = await this.ask(node, timeoutMs, (requestId) => ({ type: 'prepull', requestId, images, ...this.authForImages(images) }), () => new Error(`the agent of node ${node} is not connected`));
    if (answer.type !== 'prepulled') throw new Error(`node ${node} answered a prepull with ${answer.type}`);
    return answer.results;
  }

  /**
   * The digest `image` names now, asked of a ready node's engine (for a registry the server
   * cannot reach). Rejects with the engine's words, or when no node can be asked.
   */
  async resolveImage(image: string, timeoutMs: number): Promise<{ digest: string; node: string }> {
    const node = [...this.sessions].find(([name, session]) => session.resolves && this.state.nodes.get(name)?.state === 'ready' && session.info?.runtimes.includes('docker'))?.[0];
    if (!node) throw new NoNodeToAsk('no ready node with a Docker Engine is connected to ask');
    const answer = await this.ask(node, timeoutMs, (requestId) => ({ type: 'image.resolve', requestId, image, ...this.authForImages([image]) }), () => new NoNodeToAsk(`the agent of node ${node} is not connected`));
    if (answer.type !== 'image.resolved') throw new Error(`node ${node} answered an image.resolve with ${answer.type}`);
    if (!answer.digest) throw new Error(`node ${node}'s engine: ${answer.error ?? 'no digest'}`);
    return { digest: answer.digest, node };
  }

  /**
   * Sends the question `build` makes (with a fresh requestId) to the node's agent; resolves with
   * the answer carrying that requestId, rejects after `timeoutMs`, or with `unsent()` when it
   * could not be sent.
   */
  private ask(node: string, timeoutMs: number, build: (requestId: string) => ServerToAgent, unsent: () => Error): Promise<AgentAnswer> {
    const requestId = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.questions.delete(requestId);
        reject(new Error(`no answer from node ${node} within ${Math.round(timeoutMs / 1000)}s`));
      }, timeoutMs);
      this.questions.set(requestId, { node, answer: (message) => (clearTimeout(timer), resolve(message)) });
      if (!this.send(node, build(requestId))) {
        clearTimeout(timer);
        this.questions.delete(requestId);
        reject(unsent());
      }
    });
  }

  close(): void {
    this.unsubscribe();
    clearInterval(this.pinger);
    for (const timer of this.pushTimers.values()) clearTimeout(timer);
    for (const session of this.open) session.socket.close(1001, 'server shutting down');
  }

  private heard(session: Session, at: number): void {
    const node = session.node;
    if (node !== undefined && at > (this.heardAt.get(node) ?? 0)) this.heardAt.set(node, at);
  }

  /**
   * Pings every socket and terminates one that answered nothing for unresponsiveAfterMs: the
   * kernel keeps a half-open connection to a frozen or unreachable agent for many minutes, and
   * `ws` answers pings from the agent's event loop, so a pong proves the agent process runs.
   */
  private pingAll(): void {
    const now = Date.now();
    // A round that comes late means this server was stalled: pongs may be waiting unread in its
    // buffers, so none is judged in this round.
    const late = now - this.lastPingRound > 2 * this.pingEveryMs;
    this.lastPingRound = now;
    const limitMs = unresponsiveAfterMs(this.heartbeatMs);
    for (const session of this.open) {
      const { socket } = session;
      if (socket.readyState !== socket.OPEN) continue;
      const silentMs = now - session.seenAt;
      if (!late && silentMs > limitMs) {
        session.unresponsive = true;
        this.events.note({ level: 'warning', type: 'agent.unresponsive', node: session.node, message: `terminated the connection of ${this.who(session)}: no answer to pings for ${(silentMs / 1000).toFixed(1)}s` });
        socket.terminate();
        continue;
      }
      socket.ping();
    }
  }

  /** The message, if it is one; otherwise the socket is closed with the reason. */
  private parse(session: Session, data: unknown, isBinary: boolean): ValidAgentMessage | undefined {
    let decoded: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      decoded = JSON.parse(String(data));
    } catch {
      this.drop(session, 'invalid message: not JSON text');
      return undefined;
    }
    const result = AgentToServerSchema.safeParse(decoded);
    if (result.success) return result.data;
    const problems = problemsFromZod(result.error).slice(0, 3).map((p) => `${p.path || '(message)'}: ${p.message}`).join('; ');
    this.drop(session, `invalid message: ${problems}`);
    return undefined;
  }

  private drop(session: Session, reason: string): void {
    this.events.note({ level: 'warning', type: 'agent.refused', node: session.node, message: `closed the connection of ${this.who(session)}: ${reason}` });
    // A close reason is at most 123 bytes.
    session.socket.close(1008, Buffer.from(reason).subarray(0, 120).toString());
  }

  private who(session: Session): string {
    return `${session.node ? `node ${session.node}` : 'an agent'} (token "${session.caller.name}")`;
  }

  private async handle(session: Session, message: ValidAgentMessage): Promise<void> {
    if (message.type === 'hello') return this.hello(session, message);
    const node = session.node;
    if (!node) throw new Refusal(`${message.type} before hello`);
    switch (message.type) {
      case 'heartbeat':
        if (message.node.name !== node) throw new Refusal(`heartbeat as node ${message.node.name} on the connection of node ${node}`);
        session.info = message.node;
        await this.registerOnce(session, message.node);
        this.noteUnassigned(node, message.unassigned);
        if (this.unsavedStatuses.has(node)) await this.saveStatuses(node, []);
        return this.registry.sync(node, () => this.ownEndpoints(session, message.endpoints), JSON.stringify([message.node.address, message.endpoints]));
      case 'removed':
        return this.removed(node, message.ids);
      case 'registry':
        await this.registry.update(node, this.ownEndpoints(session, message.register), message.withdraw);
        this.send(node, { type: 'ack', requestId: message.requestId });
        return;
      case 'status':
        return this.saveStatuses(node, message.statuses);
      case 'events':
        for (const event of message.events) {
          const own = ownEvent(this.state, node, event);
          if (own) this.events.note(own);
          else this.refusedReport(node, `sent an event about instance ${event.instance} of another node`);
        }
        return;
      case 'log.lines':
        this.logRequestOf(node, message.requestId)?.onLines(message.lines);
        return;
      case 'image.resolved':
      case 'prepulled': {
        // An answer to a question this server asked of this node; any other is ignored.
        const question = this.questions.get(message.requestId);
        if (!question || question.node !== node) return;
        this.questions.delete(message.requestId);
        question.answer(message);
        return;
      }
      case 'log.end': {
        const request = this.logRequestOf(node, message.requestId);
        if (!request) return;
        this.logRequests.delete(message.requestId);
        request.onEnd(message.error);
        return;
      }
    }
  }

  private async hello(session: Session, message: Extract<ValidAgentMessage, { type: 'hello' }>): Promise<void> {
    const name = message.node.name;
    if (session.node !== undefined && session.node !== name) throw new Refusal(`hello as node ${name} on the connection of node ${session.node}`);
    const { minted } = session.node === undefined ? await admitNode(session.caller, name, this.state, this.auth) : {};
    if (minted) {
      this.events.note({ level: 'info', type: 'token.created', node: name, message: `node ${name} joined with join token "${session.caller.name}" and was given agent token "${minted.name}"` });
      session.caller = { role: 'agent', name: minted.name, node: name };
    }
    session.node = name;
    session.info = message.node;
    session.takesChanges = message.accepts.includes('assignments.changed');
    session.prepulls = message.accepts.includes('prepull');
    session.resolves = message.accepts.includes('image.resolve');
    const previous = this.sessions.get(name);
    if (previous && previous !== session) previous.socket.close(4000, 'replaced by a newer connection');
    this.sessions.set(name, session);
    this.send(name, { type: 'welcome', heartbeatMs: this.heartbeatMs, cluster: this.cluster.id, ...(minted ? { token: minted.token } : {}) });
    if (message.cluster !== undefined && message.cluster !== this.cluster.id) {
      this.events.note({ level: 'warning', type: 'node.foreign_cluster', node: name, message: `node ${name} ran instances for cluster ${message.cluster}, not this one (${this.cluster.id}): it keeps them running and removes nothing until they are adopted or forgotten (gantry node adopt|forget)` });
    }
    this.noteUnassigned(name, message.unassigned);
    await this.register(message.node);
    await this.saveStatuses(name, message.statuses);
    await this.registry.sync(name, this.ownEndpoints(session, message.endpoints));
    this.pushAssignments(name);
  }

  private ownEndpoints(session: Session, claimed: readonly { id: string; registeredAt: number }[]): Endpoint[] {
    const { endpoints, refused } = ownEndpoints(this.state, session.node!, session.info!.address, claimed);
    if (refused.length > 0) this.refusedReport(session.node!, `registered endpoints for instances it does not run: ${refused.slice(0, 5).join(', ')}`);
    return endpoints;
  }

  private logRequestOf(node: string, requestId: string): LogRequest | undefined {
    const request = this.logRequests.get(requestId);
    return request?.node === node ? request : undefined;
  }

  private refusedReport(node: string, what: string): void {
    const last = this.lastRefusalEvent.get(node) ?? 0;
    if (Date.now() - last < REFUSAL_EVENT_EVERY_MS) return;
    this.lastRefusalEvent.set(node, Date.now());
    this.events.note({ level: 'warning', type: 'agent.refused_report', node, message: `node ${node} ${what}: ignored` });
  }

  /**
   * Stores what the node says of itself, only when that changed (or the node was down): a
   * heartbeat is liveness, kept in memory (`contact`), not a write. An operator's cordon, drain
   * or dedication outlives heartbeats and reconnections.
   */
  /** register(), skipped when the node says what it said last time and its record did not change since. */
  private async registerOnce(session: Session, info: NodeInfo): Promise<void> {
    const said = JSON.stringify(info);
    if (session.registered?.info === said && session.registered.record === this.state.nodes.get(info.name) && session.registered.record?.state !== 'down') return;
    await this.register(info);
    session.registered = { info: said, record: this.state.nodes.get(info.name) };
  }

  private async register(info: NodeInfo): Promise<void> {
    const cached = this.state.nodes.get(info.name);
    if (cached && cached.state !== 'down' && sameNodeInfo(cached, info)) return;
    let previous: NodeRecord | undefined;
    const written = await casUpdate(this.store, STORE.nodes.key(info.name), STORE.nodes, (current) => {
      previous = current;
      if (current && current.state !== 'down' && sameNodeInfo(current, info)) return UNCHANGED;
      const now = Date.now();
      const record: NodeRecord = {
        ...info,
        state: current?.state === 'cordoned' || current?.state === 'draining' ? current.state : 'ready',
        dedicatedTo: current?.dedicatedTo,
        registeredAt: current?.registeredAt ?? now,
        lastHeartbeat: now,
      };
      return record;
    }, { what: `node ${info.name}` });
    if (written.revision === undefined) return;
    await this.state.waitFor(written.revision);
    if (info.recovering && !previous?.recovering) this.events.note({ level: 'warning', type: 'node.recovering', node: info.name, message: `node ${info.name} rebooted: it restarts its previous instances before taking new ones` });
    if (!info.recovering && previous?.recovering) this.events.note({ level: 'info', type: 'node.recovered', node: info.name, message: `node ${info.name} has its previous instances back and takes new ones again` });
    if (!previous) this.events.note({ level: 'info', type: 'node.registered', node: info.name, message: `node ${info.name} joined: ${info.cores} cores, runtimes ${info.runtimes.join(', ') || 'none'}` });
    else if (previous.state === 'down') this.events.note({ level: 'info', type: 'node.up', node: info.name, message: `node ${info.name} is back` });
  }

  /**
   * Writes what changed of a node's statuses. What cannot be written is kept and tried again at
   * the node's next heartbeat (the agent sends each status once, and all of them again only now
   * and then), newer reports of the same instance replacing it.
   */
  private async saveStatuses(node: string, statuses: InstanceStatus[]): Promise<void> {
    const { own, refused } = ownStatuses(this.state, node, statuses);
    if (refused.length > 0) this.refusedReport(node, `reported the status of instances of other nodes: ${refused.slice(0, 5).map((s) => s.id).join(', ')}`);
    const unsaved = this.unsavedStatuses.get(node);
    this.unsavedStatuses.delete(node);
    const reported = new Map(unsaved);
    for (const status of own) reported.set(status.id, status);
    const changed = [...reported.values()].filter((status) => {
      const previous = this.state.statuses.get(status.id);
      // Gone meanwhile (removed and forgotten): nothing to keep.
      return this.state.instances.has(status.id) && (!previous || !isDeepStrictEqual({ ...previous, updatedAt: 0 }, { ...status, updatedAt: 0 }));
    });
    if (changed.length === 0) return;
    try {
      const revision = await this.statusWrites.write(changed.map((s) => ({ type: 'put' as const, key: STORE.statuses.key(s.id), value: STORE.statuses.encode(s) })));
      await this.state.waitFor(revision);
    } catch (err) {
      const kept = this.unsavedStatuses.get(node) ?? new Map<string, InstanceStatus>();
      for (const status of changed) if (!kept.has(status.id)) kept.set(status.id, status);
      this.unsavedStatuses.set(node, kept);
      throw err;
    }
  }

  /** Notes a change of a connected node's assignments, sent to it shortly (with whatever else changed meanwhile). */
  private changed(node: string, id: string, how: 'changed' | 'gone'): void {
    if (!this.sessions.has(node)) return; // a node that connects gets the whole set
    let pending = this.pendingChanges.get(node);
    if (!pending) this.pendingChanges.set(node, (pending = { changed: new Set(), gone: new Set() }));
    pending[how].add(id);
    this.schedulePush(node);
  }

  private schedulePush(node: string): void {
    if (!this.sessions.has(node) || this.pushTimers.has(node)) return;
    this.pushTimers.set(node, setTimeout(() => {
      this.pushTimers.delete(node);
      this.pushChanges(node);
    }, 20));
  }

  /** The node's whole assignment set (on hello). */
  private pushAssignments(node: string): void {
    this.pendingChanges.delete(node);
    const remove = this.state.removalsOnNode(node);
    const instances = this.state.instancesOnNode(node);
    this.send(node, { type: 'assignments', instances, ...(remove.length > 0 ? { remove } : {}), ...this.authFor(instances) });
  }

  /** What changed of the node's assignments since the last message: the records changed, the ids gone. */
  private pushChanges(node: string): void {
    if (!this.sessions.get(node)?.takesChanges) return this.pushAssignments(node);
    const pending = this.pendingChanges.get(node);
    this.pendingChanges.delete(node);
    const instances: Instance[] = [];
    for (const id of pending?.changed ?? []) {
      const instance = this.state.instances.get(id);
      if (instance?.node === node) instances.push(instance);
    }
    const gone = [...(pending?.gone ?? [])].filter((id) => this.state.instances.get(id)?.node !== node);
    const remove = this.state.removalsOnNode(node);
    this.send(node, { type: 'assignments.changed', instances, gone, ...(remove.length > 0 ? { remove } : {}), ...this.authFor(instances) });
  }

  /** New credentials for `host`: the nodes whose instances pull from it get them now, not at their next change. */
  private resendRegistryAuth(host: string): void {
    for (const [node, session] of this.sessions) {
      if (!session.takesChanges) continue; // an older agent gets them with its next whole set
      const { registryAuth } = this.authFor(this.state.instancesOnNode(node));
      const credentials = registryAuth?.[host];
      if (credentials) this.send(node, { type: 'assignments.changed', instances: [], gone: [], registryAuth: { [host]: credentials } });
    }
  }

  /**
   * A new value of secret or config `ref`: the nodes whose instances use it keep it for their
   * next starts (and rewrite config files in place where an entry asked for that); running
   * instances otherwise keep what they started with until a rollout replaces them.
   */
  private resendValue(kind: 'secrets' | 'configs', ref: string): void {
    if (!(kind === 'secrets' ? this.state.secrets : this.state.configs).has(ref)) return;
    const uses = kind === 'secrets' ? entrySecrets : entryConfigs;
    for (const [node, session] of this.sessions) {
      if (!session.takesChanges) continue; // an older agent gets it with its next whole set
      if (!this.state.instancesOnNode(node).some((i) => i.desired === 'running' && uses(i.spec).includes(ref))) continue;
      const values = kind === 'secrets' ? this.secretValues([ref]) : this.configValues([ref]);
      if (Object.keys(values).length > 0) this.send(node, { type: 'assignments.changed', instances: [], gone: [], [kind]: values });
    }
  }

  /** The registry credentials these instances' images need, if any are stored, and the values of the secrets they use. */
  private authFor(instances: Instance[]): { registryAuth?: RegistryAuthMap; secrets?: SecretValueMap; configs?: ConfigValueMap } {
    const images = new Set<string>();
    const secretRefs = new Set<string>();
    const configRefs = new Set<string>();
    for (const instance of instances) {
      if (instance.desired !== 'running') continue;
      for (const image of entryImages(instance.spec)) images.add(image);
      for (const ref of entrySecrets(instance.spec)) secretRefs.add(ref);
      for (const ref of entryConfigs(instance.spec)) configRefs.add(ref);
    }
    const secrets = secretRefs.size > 0 ? this.secretValues(secretRefs) : {};
    const configs = configRefs.size > 0 ? this.configValues(configRefs) : {};
    return { ...this.authForImages(images), ...(Object.keys(secrets).length > 0 ? { secrets } : {}), ...(Object.keys(configs).length > 0 ? { configs } : {}) };
  }

  private authForImages(images: Iterable<string>): { registryAuth?: RegistryAuthMap } {
    const registryAuth = this.registryAuth(images);
    return Object.keys(registryAuth).length > 0 ? { registryAuth } : {};
  }

  /** What the node runs that this server does not know, for `gantry node adopt|forget`; an event when it changes. */
  private noteUnassigned(node: string, unassigned: UnassignedReport[]): void {
    const before = this.unassignedOf.get(node) ?? [];
    this.unassignedOf.set(node, unassigned);
    const ids = (list: UnassignedReport[]) => list.map((u) => u.id).sort().join();
    if (unassigned.length === 0 || ids(before) === ids(unassigned)) return;
    const apps = [...new Set(unassigned.map((u) => u.app))].slice(0, 5).join(', ');
    this.events.note({ level: 'warning', type: 'node.unassigned', node, message: `node ${node} runs ${unassigned.length} instance(s) this server does not know (apps: ${apps}); they keep running: adopt them (gantry node adopt ${node}) or have them removed (gantry node forget ${node})` });
  }

  /** The node removed these on the server's instruction: the instructions are done. */
  private async removed(node: string, ids: string[]): Promise<void> {
    const done = ids.filter((id) => this.state.removals.get(id)?.node === node);
    if (done.length === 0) return;
    const { revision } = await this.store.txn({ compare: [], success: done.map((id) => ({ type: 'delete' as const, key: STORE.removals.key(node, id) })) });
    await this.state.waitFor(revision);
  }

  /** The instances a connected node reports that this server does not know (undefined: not connected). */
  unassigned(node: string): UnassignedReport[] | undefined {
    return this.sessions.has(node) ? (this.unassignedOf.get(node) ?? []) : undefined;
  }

  nodesWithUnassigned(): string[] {
    return [...this.unassignedOf].filter(([node, list]) => list.length > 0 && this.sessions.has(node)).map(([node]) => node);
  }

  /** An operator settled what the node ran for another cluster: it belongs to this one now. */
  settle(node: string): void {
    this.send(node, { type: 'cluster', id: this.cluster.id });
  }

  private send(node: string, message: ServerToAgent): boolean {
    const socket = this.sessions.get(node)?.socket;
    if (!socket || socket.readyState !== socket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }
}

/** Whether the stored record already says what the agent says of its node (its own fields only). */
function sameNodeInfo(record: NodeRecord, info: NodeInfo): boolean {
  const { state: _state, dedicatedTo: _dedicatedTo, registeredAt: _registeredAt, lastHeartbeat: _lastHeartbeat, ...stored } = record;
  return isDeepStrictEqual(JSON.parse(JSON.stringify(stored)), JSON.parse(JSON.stringify(info)));
}
