// The endpoints this agent has registered: healthy instances with ports. Registration is sent
// at once; a withdrawal waits for the server's acknowledgement (bounded), because an instance
// must leave the registry before it gets its stop signal.
import { randomUUID } from 'node:crypto';
import type { Endpoint } from '../model/registry.js';
import type { Instance } from '../model/types.js';
import type { AgentToServer } from '../model/agent-protocol.js';

const ACK_TIMEOUT_MS = 3000;

export class Registration {
  private readonly registered = new Map<string, Endpoint>();
  private readonly pending = new Map<string, () => void>();

  constructor(
    private readonly send: (message: AgentToServer) => boolean,
    private readonly where: () => { node: string; address: string },
  ) {}

  all(): Endpoint[] {
    return [...this.registered.values()];
  }

  register(instance: Instance): void {
    if (instance.ports.length === 0 || this.registered.has(instance.id)) return;
    const { node, address } = this.where();
    const endpoint: Endpoint = {
      id: instance.id,
      app: instance.app,
      env: instance.env,
      entry: instance.entry,
      node,
      address,
      ports: Object.fromEntries(instance.ports.map((p) => [p.name, p.host])),
      release: instance.release,
      labels: instance.spec.labels,
      registeredAt: Date.now(),
      source: 'agent',
    };
    this.registered.set(instance.id, endpoint);
    this.send({ type: 'registry', requestId: randomUUID(), register: [endpoint], withdraw: [] });
  }

  /**
   * Resolves once the server has removed it (or could not be told: then its lease will), with
   * whether it was registered at all.
   */
  withdraw(instance: Pick<Instance, 'id'>): Promise<boolean> {
    const endpoint = this.registered.get(instance.id);
    if (!endpoint) return Promise.resolve(false);
    this.registered.delete(instance.id);
    const requestId = randomUUID();
    const ref = { app: endpoint.app, env: endpoint.env, entry: endpoint.entry, id: endpoint.id };
    if (!this.send({ type: 'registry', requestId, register: [], withdraw: [ref] })) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.acknowledged(requestId), ACK_TIMEOUT_MS);
      this.pending.set(requestId, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  acknowledged(requestId: string): void {
    const done = this.pending.get(requestId);
    this.pending.delete(requestId);
    done?.();
  }
}
