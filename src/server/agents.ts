// The server's side of the agent connections: registers nodes, pushes each node its
// assignments whenever they change, stores what agents report, relays log requests.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { WebSocket } from 'ws';
import type { Store } from '../store/store.js';
import type { AgentToServer, ServerToAgent } from '../model/agent-protocol.js';
import type { InstanceStatus, NodeInfo, NodeRecord } from '../model/types.js';
import { KEYS, type ClusterState } from './state.js';
import type { EventLog } from './services/events.js';
import type { RegistryService } from './services/registry.js';

interface LogRequest {
  node: string;
  onLines: (lines: string[]) => void;
  onEnd: (error?: string) => void;
}

export class AgentHub {
  private readonly sockets = new Map<string, WebSocket>();
  /** The token each connection was opened with, so revoking a token closes its connections. */
  private readonly tokenOf = new Map<WebSocket, string>();
  private readonly pushTimers = new Map<string, NodeJS.Timeout>();
  private readonly logRequests = new Map<string, LogRequest>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly registry: RegistryService,
    private readonly heartbeatMs: number,
  ) {
    this.unsubscribe = state.onChange((kind, key) => {
      if (kind !== 'instance') return;
      const id = key.slice(key.lastIndexOf('/') + 1);
      const instance = state.instances.get(id);
      if (instance) this.schedulePush(instance.node);
      else for (const node of this.sockets.keys()) this.schedulePush(node); // deleted: we no longer know its node
    });
  }

  isConnected(node: string): boolean {
    return this.sockets.has(node);
  }

  /** Closes the connections opened with this token (it was revoked); returns how many. */
  disconnectToken(tokenName: string): number {
    let closed = 0;
    for (const [socket, name] of this.tokenOf) {
      if (name !== tokenName) continue;
      socket.close(4001, 'token revoked');
      closed++;
    }
    return closed;
  }

  /** `tokenName`: the name of the token the agent connected with. */
  accept(socket: WebSocket, tokenName: string): void {
    this.tokenOf.set(socket, tokenName);
    let node: string | undefined;
    // One message at a time per agent: a withdrawal must not overtake the registration before it.
    let queue: Promise<void> = Promise.resolve();
    socket.on('message', (data) => {
      let message: AgentToServer;
      try {
        message = JSON.parse(String(data)) as AgentToServer;
      } catch {
        socket.close(1003, 'invalid JSON');
        return;
      }
      if (message.type === 'hello') {
        node = message.node.name;
        this.sockets.get(node)?.close(4000, 'replaced by a newer connection');
        this.sockets.set(node, socket);
      }
      if (!node) {
        socket.close(1008, 'hello first');
        return;
      }
      const from = node;
      queue = queue.then(() => this.handle(from, message)).catch((err: Error) => {
        if (message.type === 'registry') this.send(from, { type: 'ack', requestId: message.requestId, error: err.message });
        void this.events.record({ level: 'error', type: 'agent.error', node: from, message: `handling ${message.type}: ${err.message}` });
      });
    });
    socket.on('close', () => {
      this.tokenOf.delete(socket);
      if (node && this.sockets.get(node) === socket) this.sockets.delete(node);
      for (const [id, request] of this.logRequests) {
        if (request.node === node) {
          request.onEnd(`agent of node ${node} disconnected`);
          this.logRequests.delete(id);
        }
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

  close(): void {
    this.unsubscribe();
    for (const timer of this.pushTimers.values()) clearTimeout(timer);
    for (const socket of this.sockets.values()) socket.close(1001, 'server shutting down');
  }

  private async handle(node: string, message: AgentToServer): Promise<void> {
    switch (message.type) {
      case 'hello':
        this.send(node, { type: 'welcome', heartbeatMs: this.heartbeatMs });
        await this.register(message.node);
        await this.saveStatuses(message.statuses);
        await this.registry.sync(node, message.endpoints);
        this.pushAssignments(node);
        return;
      case 'heartbeat':
        await this.register(message.node);
        return this.registry.sync(node, message.endpoints);
      case 'registry':
        await this.registry.update(node, message.register, message.withdraw);
        this.send(node, { type: 'ack', requestId: message.requestId });
        return;
      case 'status':
        return this.saveStatuses(message.statuses);
      case 'events':
        for (const event of message.events) await this.events.record({ ...event, node });
        return;
      case 'log.lines':
        this.logRequests.get(message.requestId)?.onLines(message.lines);
        return;
      case 'log.end': {
        const request = this.logRequests.get(message.requestId);
        this.logRequests.delete(message.requestId);
        request?.onEnd(message.error);
        return;
      }
    }
  }

  private async register(info: NodeInfo): Promise<void> {
    const key = KEYS.node(info.name);
    const current = await this.store.get(key);
    const previous = current ? (JSON.parse(current.value) as NodeRecord) : undefined;
    const now = Date.now();
    const record: NodeRecord = {
      ...info,
      // An operator's cordon, drain or dedication outlives heartbeats and reconnections.
      state: previous?.state === 'cordoned' || previous?.state === 'draining' ? previous.state : 'ready',
      dedicatedTo: previous?.dedicatedTo,
      registeredAt: previous?.registeredAt ?? now,
      lastHeartbeat: now,
    };
    // Compare-and-swap, so a heartbeat never undoes an operator's cordon written meanwhile.
    const result = await this.store.txn({ compare: [{ key, target: 'modRevision', op: '==', value: current?.modRevision ?? 0 }], success: [{ type: 'put', key, value: JSON.stringify(record) }] });
    if (!result.succeeded) return this.register(info);
    await this.state.waitFor(result.revision);
    if (info.recovering && !previous?.recovering) await this.events.record({ level: 'warning', type: 'node.recovering', node: info.name, message: `node ${info.name} rebooted: it restarts its previous instances before taking new ones` });
    if (!info.recovering && previous?.recovering) await this.events.record({ level: 'info', type: 'node.recovered', node: info.name, message: `node ${info.name} has its previous instances back and takes new ones again` });
    if (!previous) await this.events.record({ level: 'info', type: 'node.registered', node: info.name, message: `node ${info.name} joined: ${info.cores} cores, runtimes ${info.runtimes.join(', ') || 'none'}` });
    else if (previous.state === 'down') await this.events.record({ level: 'info', type: 'node.up', node: info.name, message: `node ${info.name} is back` });
  }

  private async saveStatuses(statuses: InstanceStatus[]): Promise<void> {
    const changed = statuses.filter((status) => {
      const previous = this.state.statuses.get(status.id);
      return this.state.instances.has(status.id) && (!previous || !isDeepStrictEqual({ ...previous, updatedAt: 0 }, { ...status, updatedAt: 0 }));
    });
    if (changed.length === 0) return;
    const { revision } = await this.store.txn({ compare: [], success: changed.map((s) => ({ type: 'put' as const, key: KEYS.status(s.id), value: JSON.stringify(s) })) });
    await this.state.waitFor(revision);
  }

  private schedulePush(node: string): void {
    if (!this.sockets.has(node) || this.pushTimers.has(node)) return;
    this.pushTimers.set(node, setTimeout(() => {
      this.pushTimers.delete(node);
      this.pushAssignments(node);
    }, 20));
  }

  private pushAssignments(node: string): void {
    this.send(node, { type: 'assignments', instances: this.state.instancesOnNode(node) });
  }

  private send(node: string, message: ServerToAgent): boolean {
    const socket = this.sockets.get(node);
    if (!socket || socket.readyState !== socket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }
}
