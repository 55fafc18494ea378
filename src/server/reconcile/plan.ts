// What one reconcile pass decided, as plain data: instances to create, change and delete,
// statuses to set, rollout and app records, the nodes whose allocation guard the write needs,
// and the events to record once it landed. The applier (apply.ts) turns it into one guarded
// store transaction; nothing here touches the store.
import type { AppRecord, Instance, InstanceStatus, RolloutRecord } from '../../model/types.js';
import type { GantryEvent } from '../../model/types.js';
import type { ReconcileView } from './view.js';

/** An event to record, without the time and sequence the event log gives it. */
export type Note = Omit<GantryEvent, 'time' | 'seq'>;

/** What could not be placed of an entry, and why. */
export interface Unplaced {
  entry: string;
  count: number;
  reason: string;
}

export interface Plan {
  creates: Instance[];
  /** Instances whose record changes (desired state, release, traffic, ports), each in its final form. */
  updates: Instance[];
  /** Instances to forget; `unconfirmed` when their node did not say they are gone (it is told to remove them). */
  deletes: { instance: Instance; unconfirmed: boolean }[];
  statuses: InstanceStatus[];
  rollouts: RolloutRecord[];
  apps: AppRecord[];
  /** Nodes whose allocation this plan changes: the write must find them as the view saw them. */
  guards: Set<string>;
  events: Note[];
  unplaced: Map<string, Unplaced[]>;
}

/** Builds a plan; every change of an instance reads the version this pass already changed. */
export class PlanBuilder {
  private readonly changed = new Map<string, Instance>();
  private readonly created: Instance[] = [];
  private readonly deleted = new Map<string, { instance: Instance; unconfirmed: boolean }>();
  readonly statuses: InstanceStatus[] = [];
  readonly rollouts: RolloutRecord[] = [];
  readonly apps: AppRecord[] = [];
  readonly guards = new Set<string>();
  readonly events: Note[] = [];
  readonly unplaced = new Map<string, Unplaced[]>();

  constructor(private readonly view: ReconcileView) {}

  /** The instance as this pass leaves it so far. */
  current(instance: Instance): Instance {
    return this.changed.get(instance.id) ?? instance;
  }

  update(instance: Instance, change: Partial<Instance>): Instance {
    const next = { ...this.current(instance), ...change };
    this.changed.set(instance.id, next);
    return next;
  }

  create(instance: Instance): void {
    this.created.push(instance);
    this.guards.add(instance.node);
  }

  delete(instance: Instance, unconfirmed: boolean): void {
    this.changed.delete(instance.id);
    this.deleted.set(instance.id, { instance, unconfirmed });
  }

  isDeleted(id: string): boolean {
    return this.deleted.has(id);
  }

  guard(node: string): void {
    this.guards.add(node);
  }

  note(event: Note): void {
    this.events.push(event);
  }

  noteUnplaced(app: string, entry: string, count: number, reason: string): void {
    this.unplaced.set(app, [...(this.unplaced.get(app) ?? []), { entry, count, reason }]);
  }

  build(): Plan {
    // Only real changes: an update that ends where the view already is writes nothing.
    const updates = [...this.changed.values()].filter((next) => JSON.stringify(next) !== JSON.stringify(this.view.instances.get(next.id)));
    return {
      creates: this.created,
      updates,
      deletes: [...this.deleted.values()],
      statuses: this.statuses,
      rollouts: this.rollouts,
      apps: this.apps,
      guards: this.guards,
      events: this.events,
      unplaced: this.unplaced,
    };
  }
}
