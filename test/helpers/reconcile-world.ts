// A small cluster for table tests of the pure `reconcile` (test/reconcile.test.ts): nodes, apps
// (specs through the real parser, stored in their canonical JSON form as the store keeps them),
// instances, statuses and rollouts in plain maps; an injected clock and counting instance ids.
// `applyPlan` writes a plan back into the view the way the applier would, and `agent` plays the
// nodes' part (start what is wanted, confirm stops and removals), so a rollout can be walked
// pass by pass. No I/O.
import { canonicalSpec, parseAppSpec, type AppSpec } from '../../src/model/spec.js';
import type { AppRecord, AssignedPort, Instance, InstanceState, InstanceStatus, NodeRecord, PoolRecord, ReleaseRecord, RolloutRecord } from '../../src/model/types.js';
import { reconcile } from '../../src/server/reconcile/reconcile.js';
import { snapshotOf } from '../../src/server/reconcile/snapshot.js';
import type { Plan } from '../../src/server/reconcile/plan.js';
import type { ReconcileContext, ReconcileView } from '../../src/server/reconcile/view.js';

export const T0 = 1_700_000_000_000;
export const PORT_LO = 20000;

/** What the `entrypoints` of a gantry.yaml say (the parser fills in the rest). */
export type Entrypoints = Record<string, Record<string, unknown>>;

export class World implements ReconcileView {
  readonly apps = new Map<string, AppRecord>();
  readonly instances = new Map<string, Instance>();
  readonly statuses = new Map<string, InstanceStatus>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly pools = new Map<string, PoolRecord>();
  readonly rollouts = new Map<string, RolloutRecord>();
  /** What ctx.release answers (a rollback's target); delete one to make it "gone from the store". */
  readonly releases = new Map<string, ReleaseRecord>();
  now = T0;
  private ids = 0;
  private handMade = 0;

  instancesOf(app: string, entry?: string): Instance[] {
    return [...this.instances.values()].filter((i) => i.app === app && (entry === undefined || i.entry === entry));
  }

  /** The context of a pass at the current time; ids count up across passes: `${app}-${entry}-${n}`. */
  ctx(): ReconcileContext {
    return {
      now: this.now,
      newId: (app, entry) => `${app}-${entry}-${++this.ids}`,
      release: (app, release) => this.releases.get(`${app}/${release}`),
    };
  }

  /** One pass over the view as it is now. */
  plan(): Plan {
    return reconcile(this, snapshotOf(this), this.ctx());
  }

  tick(ms: number): this {
    this.now += ms;
    return this;
  }

  node(name: string, change: Partial<NodeRecord> = {}): NodeRecord {
    const record: NodeRecord = {
      name,
      address: `10.0.0.${this.nodes.size + 1}`,
      labels: {},
      cores: 4,
      memoryBytes: 8 * 1024 ** 3,
      runtimes: ['process', 'docker'],
      runtimeNotes: [],
      portRange: [PORT_LO, PORT_LO + 99],
      agentVersion: 'test',
      pool: 'default',
      reserved: { cores: 0, memoryBytes: 0 },
      shareBase: 100,
      state: 'ready',
      registeredAt: T0,
      lastHeartbeat: this.now,
      ...change,
    };
    this.nodes.set(name, record);
    return record;
  }

  nodesNamed(...names: string[]): this {
    for (const name of names) this.node(name);
    return this;
  }

  setNode(name: string, change: Partial<NodeRecord>): void {
    this.nodes.set(name, { ...this.nodes.get(name)!, ...change });
  }

  /** An app at release 1 (or `release`), its spec through the real parser. */
  app(name: string, entrypoints: Entrypoints, options: { release?: number; stopped?: boolean } = {}): AppRecord {
    const spec = specOf(name, entrypoints);
    const release = options.release ?? 1;
    const record: AppRecord = { name, env: spec.env, spec, release, stopped: options.stopped ?? false, createdAt: T0, updatedAt: this.now, updatedBy: 'test' };
    this.apps.set(name, record);
    this.releases.set(`${name}/${release}`, { app: name, release, spec, createdAt: this.now, createdBy: 'test', changes: [] });
    return record;
  }

  /** What `gantry apply` of a changed spec does: a new release, and a rollout to it (as services/apps.ts writes it). */
  deploy(name: string, entrypoints: Entrypoints): RolloutRecord {
    const previous = this.apps.get(name)!;
    const spec = specOf(name, entrypoints);
    const release = previous.release + 1;
    this.apps.set(name, { ...previous, spec, release, updatedAt: this.now, updatedBy: 'test' });
    this.releases.set(`${name}/${release}`, { app: name, release, spec, createdAt: this.now, createdBy: 'test', changes: [] });
    const rollout: RolloutRecord = {
      app: name,
      from: previous.release,
      to: release,
      phase: 'progressing',
      by: 'test',
      startedAt: this.now,
      updatedAt: this.now,
      lastProgressAt: this.now,
      progressMark: '',
      entries: {},
      steps: [{ time: this.now, message: `release ${previous.release} → ${release} by test` }],
    };
    this.rollouts.set(name, rollout);
    return rollout;
  }

  setApp(name: string, change: Partial<AppRecord>): void {
    this.apps.set(name, { ...this.apps.get(name)!, ...change });
  }

  /**
   * An instance placed by hand on `node` (of the app's current release unless told), with the
   * lowest host ports of the node's range no other instance there holds; `state` gives it a status.
   */
  instance(app: string, entry: string, node: string, options: { id?: string; release?: number; state?: InstanceState; change?: Partial<Instance> } = {}): Instance {
    const record = this.apps.get(app);
    const release = options.release ?? record?.release ?? 1;
    const spec = this.releases.get(`${app}/${release}`)?.spec.entrypoints[entry] ?? record?.spec.entrypoints[entry];
    if (!spec) throw new Error(`no spec for ${app}/${entry} release ${release}`);
    const held = new Set([...this.instances.values()].filter((i) => i.node === node).flatMap((i) => i.ports.map((p) => `${p.host}/${p.protocol}`)));
    let next = PORT_LO;
    const ports: AssignedPort[] = spec.ports.map((p) => {
      let host = p.host;
      if (host === undefined) {
        while (held.has(`${next}/${p.protocol}`)) next++;
        host = next++;
      }
      held.add(`${host}/${p.protocol}`);
      return { name: p.name, ...(p.container === undefined ? {} : { container: p.container }), host, protocol: p.protocol };
    });
    const instance: Instance = {
      id: options.id ?? `${app}-${entry}-h${++this.handMade}`,
      app,
      env: record?.env ?? 'default',
      entry,
      release,
      node,
      runtime: spec.image ? 'docker' : 'process',
      spec,
      ports,
      desired: 'running',
      // Older first, in the order they were made.
      createdAt: T0 - 1_000_000 + this.handMade,
      ...options.change,
    };
    this.instances.set(instance.id, instance);
    if (options.state) this.status(instance.id, options.state);
    return instance;
  }

  status(id: string, state: InstanceState, change: Partial<InstanceStatus> = {}): InstanceStatus {
    const instance = this.instances.get(id);
    const status: InstanceStatus = {
      id,
      state,
      healthy: state === 'running' ? true : null,
      restarts: 0,
      exitCode: null,
      runtimeId: state === 'running' ? `rt-${id}` : null,
      startedAt: state === 'running' ? this.now : null,
      healthySince: state === 'running' ? this.now : null,
      ...(instance ? { release: instance.release } : {}),
      message: null,
      updatedAt: this.now,
      ...change,
    };
    this.statuses.set(id, status);
    return status;
  }

  /** Instances (not removed) of an app, optionally of one entry. */
  live(app: string, entry?: string): Instance[] {
    return this.instancesOf(app, entry).filter((i) => i.desired !== 'removed');
  }

  state(id: string): InstanceState | undefined {
    return this.statuses.get(id)?.state;
  }
}

export function specOf(app: string, entrypoints: Entrypoints): AppSpec {
  return canonicalSpec(parseAppSpec({ app, entrypoints }));
}

/** Writes a plan into the view, as the applier's transaction would. */
export function applyPlan(world: World, plan: Plan): World {
  for (const instance of [...plan.creates, ...plan.updates]) world.instances.set(instance.id, instance);
  for (const status of plan.statuses) world.statuses.set(status.id, status);
  for (const { instance } of plan.deletes) {
    world.instances.delete(instance.id);
    world.statuses.delete(instance.id);
  }
  for (const rollout of plan.rollouts) world.rollouts.set(rollout.app, rollout);
  for (const app of plan.apps) world.apps.set(app.name, app);
  return world;
}

/**
 * The agents' part, on nodes that are up: instances wanted running start and pass their health
 * check (all, or those `starting` picks), stopped ones exit, removed ones are confirmed gone.
 */
export function agent(world: World, starting: (i: Instance) => boolean = () => true): World {
  for (const instance of world.instances.values()) {
    if (world.nodes.get(instance.node)?.state === 'down') continue;
    const state = world.state(instance.id);
    // A new release (joined as it runs, or rebuilt in place): reported running with it.
    const release = world.statuses.get(instance.id)?.release;
    if (instance.desired === 'running' && (state !== 'running' || release !== instance.release) && starting(instance)) world.status(instance.id, 'running');
    else if (instance.desired === 'stopped' && state !== 'exited') world.status(instance.id, 'exited', { exitCode: 0 });
    else if (instance.desired === 'removed' && state !== 'removed') world.status(instance.id, 'removed');
  }
  return world;
}

/** Passes with the agents doing everything asked, until a pass changes nothing (or `max` passes). */
export function settle(world: World, max = 20): Plan[] {
  const plans: Plan[] = [];
  for (let n = 0; n < max; n++) {
    const plan = world.plan();
    plans.push(plan);
    if (isEmpty(plan)) return plans;
    applyPlan(world, plan);
    agent(world);
  }
  throw new Error(`no quiet pass after ${max} passes`);
}

export function isEmpty(plan: Plan): boolean {
  return plan.creates.length + plan.updates.length + plan.deletes.length + plan.statuses.length + plan.rollouts.length + plan.apps.length + plan.events.length === 0;
}

/** The types of a plan's notes, in order. */
export function noteTypes(plan: Plan): string[] {
  return plan.events.map((e) => e.type);
}

export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}
