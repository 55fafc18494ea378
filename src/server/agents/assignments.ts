// Pushes each connected node its assignments: the whole set when it says hello, then (to agents
// that take assignments.changed) only what changed, gathered for a moment, each time with what the
// instances need (instance-values.ts); a new registry login, secret or config value goes at once
// to the nodes that use it.
import type { Instance } from '../../model/types.js';
import { entrySecrets } from '../../model/spec-secrets.js';
import { entryConfigs } from '../../model/spec-configs.js';
import type { ClusterState } from '../state.js';
import { STORE, lastSegment } from '../keys.js';
import type { AgentConnections } from './connections.js';
import type { InstanceValues } from './instance-values.js';

export class AssignmentPusher {
  private readonly pushTimers = new Map<string, NodeJS.Timeout>();
  /** Per connected node, the instances whose assignment changed since the last message to it. */
  private readonly pendingChanges = new Map<string, { changed: Set<string>; gone: Set<string> }>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly state: ClusterState,
    private readonly connections: AgentConnections,
    private readonly values: InstanceValues,
  ) {
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
  }

  /** The node's whole assignment set (on hello). */
  pushAssignments(node: string): void {
    this.pendingChanges.delete(node);
    const remove = this.state.removalsOnNode(node);
    const instances = this.state.instancesOnNode(node);
    this.connections.send(node, { type: 'assignments', instances, ...(remove.length > 0 ? { remove } : {}), ...this.values.authFor(instances) });
  }

  /** The node's connection closed: its next connection gets the whole set. */
  disconnected(node: string): void {
    this.pendingChanges.delete(node);
  }

  close(): void {
    this.unsubscribe();
    for (const timer of this.pushTimers.values()) clearTimeout(timer);
  }

  /** Notes a change of a connected node's assignments, sent to it shortly (with whatever else changed meanwhile). */
  private changed(node: string, id: string, how: 'changed' | 'gone'): void {
    if (!this.connections.isConnected(node)) return; // a node that connects gets the whole set
    let pending = this.pendingChanges.get(node);
    if (!pending) this.pendingChanges.set(node, (pending = { changed: new Set(), gone: new Set() }));
    pending[how].add(id);
    this.schedulePush(node);
  }

  private schedulePush(node: string): void {
    if (!this.connections.isConnected(node) || this.pushTimers.has(node)) return;
    this.pushTimers.set(node, setTimeout(() => {
      this.pushTimers.delete(node);
      this.pushChanges(node);
    }, 20));
  }

  /** What changed of the node's assignments since the last message: the records changed, the ids gone. */
  private pushChanges(node: string): void {
    if (!this.connections.byNode.get(node)?.takesChanges) return this.pushAssignments(node);
    const pending = this.pendingChanges.get(node);
    this.pendingChanges.delete(node);
    const instances: Instance[] = [];
    for (const id of pending?.changed ?? []) {
      const instance = this.state.instances.get(id);
      if (instance?.node === node) instances.push(instance);
    }
    const gone = [...(pending?.gone ?? [])].filter((id) => this.state.instances.get(id)?.node !== node);
    const remove = this.state.removalsOnNode(node);
    this.connections.send(node, { type: 'assignments.changed', instances, gone, ...(remove.length > 0 ? { remove } : {}), ...this.values.authFor(instances) });
  }

  /** New credentials for `host`: the nodes whose instances pull from it get them now, not at their next change. */
  private resendRegistryAuth(host: string): void {
    for (const [node, session] of this.connections.byNode) {
      if (!session.takesChanges) continue; // an older agent gets them with its next whole set
      const { registryAuth } = this.values.authFor(this.state.instancesOnNode(node));
      const credentials = registryAuth?.[host];
      if (credentials) this.connections.send(node, { type: 'assignments.changed', instances: [], gone: [], registryAuth: { [host]: credentials } });
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
    for (const [node, session] of this.connections.byNode) {
      if (!session.takesChanges) continue; // an older agent gets it with its next whole set
      if (!this.state.instancesOnNode(node).some((i) => i.desired === 'running' && uses(i.spec).includes(ref))) continue;
      const values = kind === 'secrets' ? this.values.secretValues([ref]) : this.values.configValues([ref]);
      if (Object.keys(values).length > 0) this.connections.send(node, { type: 'assignments.changed', instances: [], gone: [], [kind]: values });
    }
  }
}
