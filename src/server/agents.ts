// The server's side of the agent connections: admits nodes, pushes each node its assignments
// whenever they change, stores what agents report, relays log requests. The parts are in agents/:
// the sockets and their liveness (connections.ts), what agents report (reports.ts), assignments
// (assignments.ts, with what instances need: instance-values.ts), questions asked of agents
// (questions.ts) and log relays (logs.ts); this hub reads each message and hands it on.
//
// An agent is trusted with its own node and nothing else. Every message is checked against the
// protocol's schemas first (a malformed one closes that socket, with an event, and nothing it
// said is used); then the rules of agent-trust.ts decide what of it concerns the agent's own node.
import type { WebSocket } from 'ws';
import type { Store } from '../store/store.js';
import type { ConfigValueMap, PrepullResult, RegistryAuthMap, SecretValueMap, UnassignedReport, ValidAgentMessage } from '../model/agent-protocol.js';
import type { ClusterState } from './state.js';
import type { Caller, TokenAuth } from './auth.js';
import type { ClusterIdentity } from './cluster-identity.js';
import { Refusal, admitNode } from './agent-trust.js';
import type { EventLog } from './services/events.js';
import type { RegistryService } from './services/registry.js';
import type { UsageService } from './services/usage.js';
import type { AgentContact } from './controllers/nodes.js';
import { AgentConnections, type Session } from './agents/connections.js';
import { NodeReports } from './agents/reports.js';
import { InstanceValues } from './agents/instance-values.js';
import { AssignmentPusher } from './agents/assignments.js';
import { AgentQuestions } from './agents/questions.js';
import { LogRelays, type LogRequest, type LogRequestOptions } from './agents/logs.js';
import { TerminalRelays, type TerminalHandlers, type TerminalLink } from './agents/terminals.js';
import type { InspectionService } from './services/inspections.js';
import type { InspectionRecord } from '../model/inspection.js';

/** The most often a node's unasked inspection results are stored (its policy says every 5 min by default, at least 10 s). */
const UNASKED_INSPECTION_EVERY_MS = 5000;

export { unresponsiveAfterMs } from './agents/connections.js';
export { NoNodeToAsk } from './agents/questions.js';

export class AgentHub {
  private readonly connections: AgentConnections;
  private readonly reports: NodeReports;
  private readonly assignments: AssignmentPusher;
  private readonly questions: AgentQuestions;
  private readonly logs: LogRelays;
  private readonly terminals: TerminalRelays;
  /** Node inspection: the policy agents are sent, where their results are kept (useInspections). */
  private inspections: InspectionService | undefined;

  constructor(
    store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly registry: RegistryService,
    private readonly auth: TokenAuth,
    private readonly cluster: ClusterIdentity,
    private readonly heartbeatMs: number,
    /** Pull credentials for the registries of these images (sent with the instances that need them). */
    registryAuth: (images: Iterable<string>) => RegistryAuthMap = () => ({}),
    /** The values of these secrets (sent only to the node whose instances use them). */
    secretValues: (refs: Iterable<string>) => SecretValueMap = () => ({}),
    /** The current versions of these configs (sent like secret values). */
    configValues: (refs: Iterable<string>) => ConfigValueMap = () => ({}),
    /** Where the instances' usage samples go (without it they are dropped). */
    private readonly usage?: UsageService,
  ) {
    this.connections = new AgentConnections(events, heartbeatMs, {
      handle: (session, message) => this.handle(session, message),
      failed: (session, message, err) => {
        if (session.node && message.type === 'registry') this.connections.send(session.node, { type: 'ack', requestId: message.requestId, error: err.message });
      },
      closed: (node, current, session) => {
        if (current) this.assignments.disconnected(node);
        this.logs.disconnected(node, session);
        this.terminals.disconnected(node, session);
      },
    });
    const values = new InstanceValues(registryAuth, secretValues, configValues);
    this.reports = new NodeReports(store, state, events);
    this.assignments = new AssignmentPusher(state, this.connections, values);
    this.questions = new AgentQuestions(state, this.connections, values);
    this.logs = new LogRelays(this.connections);
    this.terminals = new TerminalRelays(this.connections);
  }

  isConnected(node: string): boolean {
    return this.connections.isConnected(node);
  }

  /** What this server heard of the node's agent since it started (the node controller's evidence). */
  contact(node: string): AgentContact {
    return this.connections.contact(node);
  }

  /** Closes the connections opened with this token (it was revoked); returns how many. */
  disconnectToken(tokenName: string): number {
    return this.connections.disconnectToken(tokenName);
  }

  accept(socket: WebSocket, caller: Caller): void {
    this.connections.accept(socket, caller);
  }

  /** Asks the node's agent for an instance's logs; returns a function that cancels the request. */
  requestLogs(node: string, instanceId: string, options: LogRequestOptions, onLines: LogRequest['onLines'], onEnd: LogRequest['onEnd']): () => void {
    return this.logs.request(node, instanceId, options, onLines, onEnd);
  }

  /**
   * Opens a terminal in an instance of the node (model/terminal.ts); undefined, after onExit
   * said why, when the node's agent is not connected, cannot (an older version) or is full.
   */
  openTerminal(node: string, instanceId: string, size: { cols: number; rows: number; command?: string[] }, handlers: TerminalHandlers): TerminalLink | undefined {
    const session = this.connections.byNode.get(node);
    if (session && !session.terminals) {
      handlers.onExit(null, `the agent of node ${node} is too old to open terminals; upgrade it`);
      return undefined;
    }
    return this.terminals.open(node, instanceId, size, handlers);
  }

  /**
   * Asks the node's agent to pull `images` now; resolves with its answer per image. Rejects when
   * the agent is not connected, cannot pre-pull (an older version), or does not answer in time.
   */
  prepull(node: string, images: string[], timeoutMs: number): Promise<PrepullResult[]> {
    return this.questions.prepull(node, images, timeoutMs);
  }

  /**
   * The digest `image` names now, asked of a ready node's engine (for a registry the server
   * cannot reach). Rejects with the engine's words, or when no node can be asked.
   */
  resolveImage(image: string, timeoutMs: number): Promise<{ digest: string; node: string }> {
    return this.questions.resolveImage(image, timeoutMs);
  }

  useInspections(inspections: InspectionService): void {
    this.inspections = inspections;
  }

  /** Whether the node's agent runs inspection checks; undefined when it is not connected. */
  inspects(node: string): boolean | undefined {
    const session = this.connections.byNode.get(node);
    return session ? session.inspects === true : undefined;
  }

  /** Has the node's agent run its checks now; resolves with the stored results. */
  async inspect(node: string, timeoutMs: number): Promise<InspectionRecord> {
    await this.questions.inspect(node, timeoutMs);
    // handle() stores the answer before it settles the question.
    return (await this.inspections?.get(node)) ?? { node, at: Date.now(), checks: {} };
  }

  /** The instances a connected node reports that this server does not know (undefined: not connected). */
  unassigned(node: string): UnassignedReport[] | undefined {
    return this.connections.isConnected(node) ? this.reports.unassigned(node) : undefined;
  }

  nodesWithUnassigned(): string[] {
    return this.reports.nodesWithUnassigned().filter((node) => this.connections.isConnected(node));
  }

  /** An operator settled what the node ran for another cluster: it belongs to this one now. */
  settle(node: string): void {
    this.connections.send(node, { type: 'cluster', id: this.cluster.id });
  }

  close(): void {
    this.assignments.close();
    this.connections.close();
  }

  private async handle(session: Session, message: ValidAgentMessage): Promise<void> {
    if (message.type === 'hello') return this.hello(session, message);
    const node = session.node;
    if (!node) throw new Refusal(`${message.type} before hello`);
    switch (message.type) {
      case 'heartbeat':
        if (message.node.name !== node) throw new Refusal(`heartbeat as node ${message.node.name} on the connection of node ${node}`);
        session.info = message.node;
        await this.reports.registerOnce(session, message.node);
        this.reports.noteUnassigned(node, message.unassigned);
        if (this.reports.hasUnsavedStatuses(node)) await this.reports.saveStatuses(node, []);
        return this.registry.sync(node, () => this.reports.ownEndpoints(session, message.endpoints), JSON.stringify([message.node.address, message.endpoints]));
      case 'removed':
        return this.reports.removed(node, message.ids);
      case 'registry':
        await this.registry.update(node, this.reports.ownEndpoints(session, message.register), message.withdraw);
        this.connections.send(node, { type: 'ack', requestId: message.requestId });
        return;
      case 'status':
        return this.reports.saveStatuses(node, message.statuses);
      case 'events':
        this.reports.noteEvents(node, message.events);
        return;
      case 'log.lines':
        this.logs.lines(node, message.requestId, message.lines, message.times);
        return;
      case 'image.resolved':
      case 'prepulled':
        this.questions.answered(node, message);
        return;
      case 'log.end':
        this.logs.end(node, message.requestId, message.error);
        return;
      case 'inspected': {
        if (message.node !== node) throw new Refusal(`inspection results for node ${message.node} on the connection of node ${node}`);
        // Results nobody asked for come every few minutes; more often they are dropped, not written.
        const asked = this.questions.asked(node, message.requestId);
        if (!asked && Date.now() - (session.inspectedAt ?? 0) < UNASKED_INSPECTION_EVERY_MS) return;
        session.inspectedAt = Date.now();
        if (this.inspections) await this.inspections.record(node, message.results, Date.now(), asked);
        this.questions.answered(node, message);
        return;
      }
      case 'clock.ask':
        this.connections.send(node, { type: 'clock', requestId: message.requestId, serverTime: Date.now() });
        return;
      case 'usage':
        if (this.usage) this.reports.noteUsage(node, message.samples, this.usage);
        return;
      case 'terminal.output':
        this.terminals.output(node, message.sessionId, message.data);
        return;
      case 'terminal.exit':
        this.terminals.exited(node, message.sessionId, message.code, message.error);
        return;
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
    session.inspects = message.accepts.includes('inspect');
    session.terminals = message.accepts.includes('terminal');
    this.connections.admit(session, name);
    this.connections.send(name, { type: 'welcome', heartbeatMs: this.heartbeatMs, cluster: this.cluster.id, ...(minted ? { token: minted.token } : {}) });
    // Right after the welcome, before anything awaited: no inspect request can overtake the policy.
    if (session.inspects && this.inspections) this.connections.send(name, { type: 'inspect.policy', policy: this.inspections.policy });
    if (message.cluster !== undefined && message.cluster !== this.cluster.id) {
      this.events.note({ level: 'warning', type: 'node.foreign_cluster', node: name, message: `node ${name} ran instances for cluster ${message.cluster}, not this one (${this.cluster.id}): it keeps them running and removes nothing until they are adopted or forgotten (gantry node adopt|forget)` });
    }
    this.reports.noteUnassigned(name, message.unassigned);
    await this.reports.register(message.node);
    await this.reports.saveStatuses(name, message.statuses);
    await this.registry.sync(name, this.reports.ownEndpoints(session, message.endpoints));
    this.assignments.pushAssignments(name);
    this.logs.connected(name);
  }
}
