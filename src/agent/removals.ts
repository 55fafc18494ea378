// Removals the server instructed for instances it removed while this node was away (its `remove`
// list; an assignment set to `removed` goes through the supervisor's own path instead). A
// supervised instance takes its supervisor's removal path (withdraw, before-stop hook, drain,
// stop, remove); one only found running, with no record here (a stray), is withdrawn, stopped and
// removed here. The server hears which are done, and asks again until it has: telling it twice
// does no harm. Nothing is removed on a server of another cluster (ownership.ts decides).
import type { AgentToServer } from '../model/agent-protocol.js';
import type { GantryEvent } from '../model/types.js';
import type { RuntimeInstance } from '../runtime/runtime.js';
import type { Assignments } from './assignments.js';
import type { NodeOwnership } from './ownership.js';
import type { Observation, Sighting } from './tick.js';

/** How long a stray gets to stop after SIGTERM. */
const STRAY_GRACE_MS = 10_000;

export interface RemovalsOptions {
  assignments: Assignments;
  ownership: NodeOwnership;
  withdraw(instance: { id: string }): Promise<boolean>;
  event(event: Omit<GantryEvent, 'time'>): void;
  send(message: AgentToServer): boolean;
  nodeName(): string;
}

export class Removals {
  /** Instructed, until they are gone and the server was told. */
  private readonly instructed = new Set<string>();
  private readonly removingStrays = new Set<string>();

  constructor(private readonly options: RemovalsOptions) {}

  /** The server's `remove` list. An instance it also assigns is left to its assignment. */
  instruct(ids: readonly string[]): void {
    const { assignments, ownership } = this.options;
    for (const id of ownership.removable(ids)) {
      if (ownership.isAssigned(id) || this.instructed.has(id)) continue;
      this.instructed.add(id);
      const supervisor = assignments.get(id);
      if (supervisor) supervisor.reassign({ ...supervisor.instance, desired: 'removed' });
    }
  }

  /** From a complete view only: one missing from a runtime that could not be listed is not gone. */
  conclude(observation: Observation): void {
    const { assignments } = this.options;
    const done: string[] = [];
    for (const id of this.instructed) {
      const supervisor = assignments.get(id);
      const seen = observation.instances.get(id);
      if (supervisor) {
        if (supervisor.status.state !== 'removed' || supervisor.isBusy()) continue;
        assignments.forget(id);
      } else if (seen) {
        if (!this.removingStrays.has(id)) void this.removeStray(seen);
        continue;
      }
      done.push(id);
    }
    if (done.length === 0) return;
    for (const id of done) this.instructed.delete(id);
    assignments.save();
    this.options.send({ type: 'removed', ids: done });
  }

  private async removeStray({ runtime, instance }: Sighting): Promise<void> {
    const id = instance.instanceId;
    const about = aboutStray(instance);
    this.removingStrays.add(id);
    try {
      await this.options.withdraw({ id });
      if (instance.state === 'running') await runtime.stop(id, 'SIGTERM', STRAY_GRACE_MS);
      await runtime.remove(id);
      this.options.event({ level: 'info', type: 'instance.removed_on_instruction', ...about, message: `removed ${id} from ${this.options.nodeName()}, as the server asked` });
    } catch (err) {
      this.options.event({ level: 'warning', type: 'instance.error', ...about, message: `could not remove ${id} from ${this.options.nodeName()}: ${(err as Error).message}` });
    } finally {
      this.removingStrays.delete(id);
    }
  }
}

function aboutStray(instance: RuntimeInstance): Pick<GantryEvent, 'instance' | 'app' | 'entry'> {
  return { instance: instance.instanceId, app: instance.labels['gantry.app'], entry: instance.labels['gantry.entry'] };
}
