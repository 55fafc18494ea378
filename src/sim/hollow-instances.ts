// The instances one hollow node "runs": nothing at all, only the bookkeeping the real agent keeps
// for them (src/agent/main.ts and supervisor.ts) and the reports it would send. An instance
// assigned to run "starts" after a delay and is then reported running and healthy, and put in
// the registry when it has ports; one to stop or remove is withdrawn first, then reported exited
// or removed. Like the real agent, an instance the server no longer assigns is kept (and reported
// as unassigned) until it was removed, and one the server names in `remove` is removed and
// confirmed. Only what the reports need of an instance is kept (not its spec): a fleet holds
// 150,000 of them in one process.
import type { EndpointRef, UnassignedInstance } from '../model/agent-protocol.js';
import type { Endpoint } from '../model/registry.js';
import type { AssignedPort, DesiredState, Instance, InstanceState, InstanceStatus } from '../model/types.js';
import type { FleetCounters } from './counters.js';

/** Where the reports go: the node's connection (which batches and queues them). */
export interface InstanceReports {
  status(status: InstanceStatus): void;
  register(endpoint: Endpoint): void;
  withdraw(ref: EndpointRef): void;
  removed(ids: string[]): void;
}

export interface InstanceTiming {
  /** From assignment to "running and healthy" (pulling, starting, a first health check). */
  startDelayMs: number;
  /** From a stop or removal to "exited" / "removed" (drain, stop signal, grace). */
  stopDelayMs: number;
  /** From a crash to the restart, for an instance crashed into backoff. */
  restartDelayMs: number;
}

export type CrashKind = 'backoff' | 'exited';

interface HollowInstance {
  id: string;
  app: string;
  env: string;
  entry: string;
  release: number;
  ports: AssignedPort[];
  labels: Record<string, string>;
  desired: DesiredState;
  serving: boolean;
  restart: number;
  rebuild: number;
  /** False once an assignment set no longer names it. */
  assigned: boolean;
  status: InstanceStatus;
  /** Set while its endpoint is registered (kept: the server compares it on every heartbeat). */
  registeredAt?: number;
  timer?: NodeJS.Timeout;
}

const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export class HollowInstances {
  private readonly records = new Map<string, HollowInstance>();
  /** Removals the server instructed that are under way (it repeats them in every push until confirmed). */
  private readonly removing = new Set<string>();
  private runtimeSeq = 0;

  constructor(
    private readonly where: () => { node: string; address: string },
    private readonly reports: InstanceReports,
    private readonly timing: InstanceTiming,
    private readonly counters: FleetCounters,
  ) {}

  /** A full assignment set from the server, and the instances it says to remove although unassigned. */
  assign(instances: readonly Instance[], remove: readonly string[] = []): void {
    const wanted = new Set(instances.map((i) => i.id));
    this.change(instances, [...this.records.keys()].filter((id) => !wanted.has(id)), remove);
  }

  /** What changed of the assignments (assignments.changed): as assign, for these instances only. */
  change(instances: readonly Instance[], unassigned: readonly string[], remove: readonly string[] = []): void {
    for (const instance of instances) {
      const known = this.records.get(instance.id);
      if (known) this.reassign(known, instance);
      else this.adopt(instance);
    }
    for (const id of unassigned) {
      const record = this.records.get(id);
      if (!record) continue;
      if (record.status.state === 'removed') this.forget(record);
      else record.assigned = false;
    }
    const gone: string[] = [];
    for (const id of remove) {
      const record = this.records.get(id);
      if (record?.assigned || this.removing.has(id)) continue;
      if (!record) gone.push(id);
      else this.removeOnInstruction(record);
    }
    if (gone.length > 0) this.reports.removed(gone);
  }

  statuses(): InstanceStatus[] {
    return [...this.records.values()].map((r) => r.status);
  }

  /** Every endpoint this node has registered: sent with each heartbeat, as the real agent does. */
  endpoints(): Endpoint[] {
    const out: Endpoint[] = [];
    for (const record of this.records.values()) if (record.registeredAt !== undefined) out.push(this.endpointOf(record, record.registeredAt));
    return out;
  }

  unassigned(): UnassignedInstance[] {
    const out: UnassignedInstance[] = [];
    for (const r of this.records.values()) if (!r.assigned) out.push({ id: r.id, app: r.app, env: r.env, entry: r.entry, release: r.release });
    return out;
  }

  runningIds(): string[] {
    return [...this.records.values()].filter((r) => r.status.state === 'running').map((r) => r.id);
  }

  /** Makes a running instance fail: `backoff` (restarted after the restart delay) or `exited` (stays down). */
  crash(id: string, kind: CrashKind): boolean {
    const record = this.records.get(id);
    if (!record || record.status.state !== 'running') return false;
    this.withdraw(record);
    this.counters.crashed++;
    const restarts = record.status.restarts + (kind === 'backoff' ? 1 : 0);
    const message = kind === 'backoff' ? `exited with code 1; restarting in ${this.timing.restartDelayMs / 1000}s (hollow crash)` : 'exited with code 0 (hollow crash)';
    this.setState(record, { state: kind, healthy: null, exitCode: kind === 'backoff' ? 1 : 0, restarts, message });
    if (kind === 'backoff') this.later(record, this.timing.restartDelayMs, () => this.start(record));
    return true;
  }

  dispose(): void {
    for (const record of [...this.records.values()]) this.forget(record);
  }

  private adopt(instance: Instance): void {
    const record: HollowInstance = {
      id: instance.id,
      app: instance.app,
      env: instance.env,
      entry: instance.entry,
      release: instance.release,
      ports: instance.ports,
      labels: Object.keys(instance.spec.labels).length > 0 ? instance.spec.labels : NO_LABELS,
      desired: instance.desired,
      serving: instance.serving !== false,
      restart: instance.restart ?? 0,
      rebuild: instance.rebuild ?? 0,
      assigned: true,
      status: { id: instance.id, state: 'pending', healthy: null, restarts: 0, exitCode: null, runtimeId: null, startedAt: null, healthySince: null, release: instance.release, ip: null, message: null, updatedAt: Date.now() },
    };
    this.records.set(record.id, record);
    this.counters.instances++;
    this.pursue(record);
  }

  private reassign(record: HollowInstance, instance: Instance): void {
    record.assigned = true;
    const restartAsked = (instance.restart ?? 0) !== record.restart || (instance.rebuild ?? 0) !== record.rebuild;
    const wasServing = record.serving;
    Object.assign(record, { release: instance.release, ports: instance.ports, serving: instance.serving !== false, restart: instance.restart ?? 0, rebuild: instance.rebuild ?? 0 });
    if (instance.desired !== record.desired) {
      record.desired = instance.desired;
      return this.pursue(record);
    }
    if (record.desired !== 'running') return;
    if (restartAsked) {
      this.withdraw(record);
      this.setState(record, { state: 'starting', healthy: null, message: null });
      return this.later(record, this.timing.startDelayMs, () => this.start(record));
    }
    if (record.serving === wasServing || record.status.state !== 'running') return;
    if (record.serving) this.register(record);
    else this.withdraw(record);
  }

  /** Heads for the desired state: a start after the start delay, or a withdrawal, then a stop after the stop delay. */
  private pursue(record: HollowInstance): void {
    const { state } = record.status;
    if (record.desired === 'running') {
      if (state === 'running' || record.timer) return;
      return this.later(record, this.timing.startDelayMs, () => this.start(record));
    }
    const goal: InstanceState = record.desired === 'removed' ? 'removed' : 'exited';
    clearTimeout(record.timer);
    record.timer = undefined;
    if (state === goal) return;
    this.withdraw(record);
    this.later(record, this.timing.stopDelayMs, () => this.setState(record, { state: goal, healthy: null, message: goal === 'exited' ? 'stopped' : null }));
  }

  private start(record: HollowInstance): void {
    if (record.desired !== 'running') return;
    this.setState(record, { state: 'running', healthy: true, runtimeId: `hollow-${++this.runtimeSeq}`, startedAt: Date.now(), exitCode: null, message: null, release: record.release });
    if (record.serving) this.register(record);
  }

  /** Removed while this node was away: withdrawn, "stopped", forgotten, and confirmed. */
  private removeOnInstruction(record: HollowInstance): void {
    this.removing.add(record.id);
    this.withdraw(record);
    this.later(record, this.timing.stopDelayMs, () => {
      this.removing.delete(record.id);
      this.forget(record);
      this.reports.removed([record.id]);
    });
  }

  private later(record: HollowInstance, ms: number, then: () => void): void {
    clearTimeout(record.timer);
    record.timer = setTimeout(() => {
      record.timer = undefined;
      then();
    }, ms);
  }

  private setState(record: HollowInstance, change: Partial<InstanceStatus>): void {
    const was = record.status.state;
    const now = Date.now();
    record.status = { ...record.status, ...change, updatedAt: now };
    const state = record.status.state;
    if (state !== 'running') record.status.healthySince = null;
    else if (was !== 'running') record.status.healthySince = now;
    if (was === 'running' && state !== 'running') this.counters.running--;
    if (was !== 'running' && state === 'running') this.counters.running++;
    this.reports.status(record.status);
  }

  private forget(record: HollowInstance): void {
    clearTimeout(record.timer);
    if (!this.records.delete(record.id)) return;
    this.counters.instances--;
    if (record.status.state === 'running') this.counters.running--;
  }

  private register(record: HollowInstance): void {
    if (record.ports.length === 0 || record.registeredAt !== undefined || record.desired !== 'running') return;
    record.registeredAt = Date.now();
    this.reports.register(this.endpointOf(record, record.registeredAt));
  }

  private withdraw(record: HollowInstance): void {
    if (record.registeredAt === undefined) return;
    record.registeredAt = undefined;
    this.reports.withdraw({ app: record.app, env: record.env, entry: record.entry, id: record.id });
  }

  private endpointOf(record: HollowInstance, registeredAt: number): Endpoint {
    const { node, address } = this.where();
    const ports: Record<string, number> = {};
    for (const port of record.ports) ports[port.name] = port.host;
    return { id: record.id, app: record.app, env: record.env, entry: record.entry, node, address, ports, release: record.release, labels: record.labels, registeredAt, source: 'agent' };
  }
}
