// Keeps every entry at its desired replica count: places missing instances, removes extras,
// replaces instances of an older release once enough of the new one are healthy, and forgets
// instances whose removal the agent confirmed. Runs on the leader only.
import { randomBytes } from 'node:crypto';
import type { Store, TxnOp } from '../../store/store.js';
import type { AppRecord, Instance, InstanceStatus } from '../../model/types.js';
import { entryRuntime, type EntrySpec } from '../../model/spec.js';
import { placeOne, reserve, type NodeSnapshot, type PlacementRequest } from '../../scheduler/firstfit.js';
import { KEYS, type ClusterState } from '../state.js';
import type { EventLog } from '../services/events.js';

export interface Unplaced {
  entry: string;
  count: number;
  reason: string;
}

export class ReplicaController {
  /** Per app, what could not be placed in the last pass and why. */
  readonly unplaced = new Map<string, Unplaced[]>();
  private readonly lastUnplacedMessage = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
  ) {}

  private chain: Promise<void> = Promise.resolve();

  /** One pass at a time: API calls and the periodic loop queue behind each other. */
  reconcile(): Promise<void> {
    const pass = this.chain.then(() => this.pass());
    this.chain = pass.catch(() => {});
    return pass;
  }

  private async pass(): Promise<void> {
    const ops: TxnOp[] = [];
    const notes: Parameters<EventLog['record']>[0][] = [];
    const nodes = this.snapshot();
    this.unplaced.clear();
    for (const app of this.state.apps.values()) {
      for (const [entry, spec] of Object.entries(app.spec.entrypoints)) this.reconcileEntry(app, entry, spec, nodes, ops, notes);
    }
    for (const instance of this.state.instances.values()) {
      const app = this.state.apps.get(instance.app);
      const entryGone = !app || !app.spec.entrypoints[instance.entry];
      if (entryGone && instance.desired !== 'removed') this.setDesired(instance, 'removed', ops);
      if (instance.desired === 'removed' && this.removalDone(instance)) {
        ops.push({ type: 'delete', key: KEYS.instance(instance.app, instance.id) }, { type: 'delete', key: KEYS.status(instance.id) });
        notes.push({ level: 'info', type: 'instance.removed', app: instance.app, entry: instance.entry, instance: instance.id, node: instance.node, message: `removed from ${instance.node}` });
      }
    }
    if (ops.length > 0) {
      const { revision } = await this.store.txn({ compare: [], success: ops });
      await this.state.waitFor(revision);
    }
    for (const note of notes) await this.events.record(note);
  }

  private reconcileEntry(app: AppRecord, entry: string, spec: EntrySpec, nodes: NodeSnapshot[], ops: TxnOp[], notes: Parameters<EventLog['record']>[0][]): void {
    const live = this.state.instancesOf(app.name, entry).filter((i) => i.desired !== 'removed');
    for (const instance of live) {
      const node = this.state.nodes.get(instance.node);
      if (!node || node.state === 'down') {
        this.setDesired(instance, 'removed', ops);
        ops.push({ type: 'put', key: KEYS.status(instance.id), value: JSON.stringify(lostStatus(instance, this.state.statuses.get(instance.id))) });
        notes.push({ level: 'warning', type: 'instance.lost', app: app.name, entry, instance: instance.id, node: instance.node, message: `node ${instance.node} is down; replacing the instance` });
      }
    }
    const alive = live.filter((i) => this.state.nodes.get(i.node)?.state !== 'down' && this.state.nodes.has(i.node));
    if (app.stopped) {
      for (const instance of alive) if (instance.desired === 'running') this.setDesired(instance, 'stopped', ops);
      return;
    }
    for (const instance of alive) if (instance.desired === 'stopped') this.setDesired(instance, 'running', ops);

    const current = alive.filter((i) => i.release === app.release);
    const old = alive.filter((i) => i.release !== app.release);
    const missing = spec.replicas - current.length;
    if (missing > 0) this.place(app, entry, spec, missing, nodes, ops, notes);
    if (missing < 0) {
      for (const instance of [...current].sort(removalOrder(this.state.statuses)).slice(0, -missing)) this.setDesired(instance, 'removed', ops);
    }
    // Old-release instances go once enough new ones are healthy, so the entry never dips below its count.
    const healthyCurrent = current.filter((i) => this.state.statuses.get(i.id)?.state === 'running').length;
    const removable = Math.max(0, healthyCurrent + old.length - spec.replicas);
    for (const instance of [...old].sort(removalOrder(this.state.statuses)).slice(0, spec.replicas === 0 ? old.length : removable)) {
      this.setDesired(instance, 'removed', ops);
    }
  }

  private place(app: AppRecord, entry: string, spec: EntrySpec, count: number, nodes: NodeSnapshot[], ops: TxnOp[], notes: Parameters<EventLog['record']>[0][]): void {
    const runtime = entryRuntime(spec);
    const request: PlacementRequest = { cpu: spec.resources.cpu, memoryBytes: spec.resources.memory, runtime, labels: spec.placement.labels, ports: spec.ports };
    for (let placed = 0; placed < count; placed++) {
      const result = placeOne(nodes, request);
      if ('reason' in result) {
        this.noteUnplaced(app.name, entry, count - placed, result.reason, notes);
        return;
      }
      reserve(nodes.find((n) => n.name === result.node)!, request, result.ports);
      const instance: Instance = {
        id: `${app.name}-${entry}-${randomBytes(4).toString('hex')}`,
        app: app.name,
        env: app.env,
        entry,
        release: app.release,
        node: result.node,
        runtime,
        spec,
        ports: result.ports,
        desired: 'running',
        createdAt: Date.now(),
      };
      ops.push({ type: 'put', key: KEYS.instance(app.name, instance.id), value: JSON.stringify(instance) });
      notes.push({ level: 'info', type: 'instance.placed', app: app.name, entry, instance: instance.id, node: result.node, message: `placed on ${result.node}, release ${app.release}` });
    }
    this.lastUnplacedMessage.delete(`${app.name}/${entry}`);
  }

  private noteUnplaced(app: string, entry: string, count: number, reason: string, notes: Parameters<EventLog['record']>[0][]): void {
    this.unplaced.set(app, [...(this.unplaced.get(app) ?? []), { entry, count, reason }]);
    const key = `${app}/${entry}`;
    if (this.lastUnplacedMessage.get(key) === reason) return;
    this.lastUnplacedMessage.set(key, reason);
    notes.push({ level: 'warning', type: 'instance.unplaced', app, entry, message: `${count} instance(s) cannot be placed: ${reason}` });
  }

  private setDesired(instance: Instance, desired: Instance['desired'], ops: TxnOp[]): void {
    instance.desired = desired; // the cache copy too, so later checks in this pass see it
    ops.push({ type: 'put', key: KEYS.instance(instance.app, instance.id), value: JSON.stringify(instance) });
  }

  /** The agent said it is gone, or nobody is left to say so. */
  private removalDone(instance: Instance): boolean {
    const status = this.state.statuses.get(instance.id);
    const node = this.state.nodes.get(instance.node);
    return status?.state === 'removed' || status?.state === 'lost' || !node || node.state === 'down';
  }

  private snapshot(): NodeSnapshot[] {
    const nodes = new Map<string, NodeSnapshot>();
    for (const node of this.state.nodes.values()) {
      nodes.set(node.name, { ...node, allocatedCpu: 0, allocatedMemory: 0, usedPorts: new Set() });
    }
    for (const instance of this.state.instances.values()) {
      const node = nodes.get(instance.node);
      if (!node) continue;
      node.allocatedCpu += instance.spec.resources.cpu;
      node.allocatedMemory += instance.spec.resources.memory;
      for (const port of instance.ports) node.usedPorts.add(`${port.host}/${port.protocol}`);
    }
    return [...nodes.values()];
  }
}

/** Extras to remove first: not running, then the youngest. */
function removalOrder(statuses: Map<string, InstanceStatus>): (a: Instance, b: Instance) => number {
  const rank = (i: Instance) => (statuses.get(i.id)?.state === 'running' ? 1 : 0);
  return (a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt;
}

function lostStatus(instance: Instance, previous: InstanceStatus | undefined): InstanceStatus {
  return {
    id: instance.id,
    state: 'lost',
    healthy: null,
    restarts: previous?.restarts ?? 0,
    exitCode: previous?.exitCode ?? null,
    runtimeId: previous?.runtimeId ?? null,
    startedAt: previous?.startedAt ?? null,
    message: `node ${instance.node} stopped heartbeating`,
    updatedAt: Date.now(),
  };
}
