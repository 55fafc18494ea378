// The instances this node supervises: one supervisor per instance the server assigned here (or,
// before the server has spoken, that the cache remembers). A new assignment set creates
// supervisors for new instances and hands the others their new record; one the set no longer
// names is kept running, supervised, and reported as unassigned (ownership.ts) until an explicit
// removal is done with it. Also the node's shared CPU pool, which moves with the bound instances.
import type { Instance, InstanceStatus } from '../model/types.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AgentCache } from './cache.js';
import { sharedPool } from './cpu.js';
import type { LocalNode } from './local-node.js';
import type { NodeOwnership } from './ownership.js';
import { Supervisor, type SupervisorHooks } from './supervisor.js';

/** Where the agent reaches its instances' ports for health checks. */
const CHECK_HOST = '127.0.0.1';

export interface AssignmentsOptions {
  runtimes: readonly Runtime[];
  node: LocalNode;
  ownership: NodeOwnership;
  cache: AgentCache;
  /** Cores kept for the host's own daemons: never in the shared pool. */
  reservedCores: number;
  hooks: Omit<SupervisorHooks, 'sharedCpuset'>;
}

export class Assignments {
  private readonly supervisors = new Map<string, Supervisor>();
  /** What an earlier run of the agent last saw of each instance (restart counts, addresses). */
  private readonly remembered: Map<string, InstanceStatus>;
  private readonly hooks: SupervisorHooks;
  private sharedCores: number[] = [];
  /** The server's assignment set as last heard (or as cached, until it speaks). */
  private assigned: readonly Instance[] = [];

  constructor(private readonly options: AssignmentsOptions) {
    this.remembered = options.cache.loadStatuses();
    this.hooks = { ...options.hooks, sharedCpuset: () => this.sharedCores };
  }

  /**
   * What the server wants on this node now. Instances that gain traffic are handed their record
   * first, then those that lose it: a switch never leaves nobody registered.
   */
  set(instances: readonly Instance[]): void {
    this.assigned = instances;
    this.options.ownership.setAssigned(instances);
    const gainingFirst = [...instances].sort((a, b) => Number(b.serving !== false) - Number(a.serving !== false));
    for (const instance of gainingFirst) {
      const existing = this.supervisors.get(instance.id);
      if (existing) existing.reassign(instance);
      else this.supervise(instance);
    }
    // One no longer assigned is forgotten once it was removed (on an instruction).
    const wanted = new Set(instances.map((i) => i.id));
    for (const [id, supervisor] of this.supervisors) {
      if (!wanted.has(id) && supervisor.status.state === 'removed' && !supervisor.isBusy()) this.forget(id);
    }
    this.refreshSharedCores();
  }

  /** What changed of the assignments: `instances` assigned as given, `gone` no longer assigned. */
  change(instances: readonly Instance[], gone: readonly string[]): void {
    const next = new Map(this.assigned.map((i) => [i.id, i]));
    for (const id of gone) next.delete(id);
    for (const instance of instances) next.set(instance.id, instance);
    this.set([...next.values()]);
  }

  get(id: string): Supervisor | undefined {
    return this.supervisors.get(id);
  }

  has(id: string): boolean {
    return this.supervisors.has(id);
  }

  get size(): number {
    return this.supervisors.size;
  }

  all(): IterableIterator<Supervisor> {
    return this.supervisors.values();
  }

  statuses(): InstanceStatus[] {
    return [...this.supervisors.values()].map((s) => s.status);
  }

  /** Every record this node supervises, assigned or not: what it must remember across restarts. */
  records(): Instance[] {
    return [...this.supervisors.values()].map((s) => s.instance);
  }

  save(): void {
    this.options.cache.saveAssignments(this.records());
  }

  runtimeOf(instanceId: string): Runtime | undefined {
    const supervisor = this.supervisors.get(instanceId);
    return supervisor && this.options.runtimes.find((r) => r.name === supervisor.runtimeName);
  }

  forget(id: string): void {
    this.supervisors.get(id)?.dispose();
    this.supervisors.delete(id);
  }

  /** Stops every supervisor's timers (the agent is closing); the instances keep running. */
  disposeAll(): void {
    for (const supervisor of this.supervisors.values()) supervisor.dispose();
  }

  private supervise(instance: Instance): void {
    const runtime = this.options.runtimes.find((r) => r.name === instance.runtime);
    if (runtime) this.supervisors.set(instance.id, new Supervisor(instance, runtime, CHECK_HOST, this.hooks, this.remembered.get(instance.id)));
  }

  /** When bound instances come or go the shared pool changes: the running unbound ones move to it. */
  private refreshSharedCores(): void {
    const next = sharedPool(this.options.node.info.cores, this.options.reservedCores, this.records());
    if (next.join() === this.sharedCores.join()) return;
    this.sharedCores = next;
    for (const supervisor of this.supervisors.values()) {
      const { instance } = supervisor;
      if (instance.cpu?.mode === 'bound' || !['starting', 'running', 'unhealthy'].includes(supervisor.status.state)) continue;
      this.runtimeOf(instance.id)
        ?.updateCpuset(instance.id, next)
        .catch((err: Error) => this.hooks.event({ level: 'warning', type: 'instance.limits', app: instance.app, entry: instance.entry, instance: instance.id, message: `could not move ${instance.id} to cores ${next.join(',')}: ${err.message}` }));
    }
  }
}
