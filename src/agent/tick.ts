// The agent's tick: once a second (and right after new assignments) it lists every usable runtime
// and hands each supervisor what was seen of its instance. A tick never overlaps the previous one.
//
// A runtime that could not be listed (an engine that stopped answering) is not "everything gone":
// the view says which runtimes were listed, so their instances are neither started again nor
// reported vanished, and strays and finished removals are only concluded from a complete view.
import type { RuntimeName } from '../model/types.js';
import type { Runtime, RuntimeInstance } from '../runtime/runtime.js';
import { NODE_LABEL, observationClock } from './supervisor.js';

export interface Sighting {
  instance: RuntimeInstance;
  runtime: Runtime;
}

export interface Observation {
  /** observationClock() read right before the first listing began (see Supervisor.tick). */
  listedAt: number;
  /** What runs here labelled for this node, by instance id. */
  instances: Map<string, Sighting>;
  listed: Set<RuntimeName>;
  /** Every usable runtime was listed: what is missing from the view is really gone. */
  complete: boolean;
}

export async function observeRuntimes(runtimes: readonly Runtime[], nodeName: string, log: (line: string) => void): Promise<Observation> {
  // Read before listing: a supervisor ignores a view begun before its last step ended (a container
  // it started meanwhile would look missing, and be started a second time).
  const listedAt = observationClock();
  const instances = new Map<string, Sighting>();
  const listed = new Set<RuntimeName>();
  for (const runtime of runtimes) {
    let found: RuntimeInstance[];
    try {
      found = await runtime.list();
    } catch (err) {
      log(`cannot list the ${runtime.name} runtime's instances: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    listed.add(runtime.name);
    for (const instance of found) {
      if (instance.labels[NODE_LABEL] === nodeName) instances.set(instance.instanceId, { instance, runtime });
    }
  }
  return { listedAt, instances, listed, complete: listed.size === runtimes.length };
}

/** Runs `body` every `everyMs`, and when asked, never two at once; a failure is logged. */
export class Ticker {
  private running = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    everyMs: number,
    private readonly body: () => Promise<void>,
    private readonly log: (line: string) => void,
  ) {
    this.timer = setInterval(() => this.now(), everyMs);
  }

  /** A tick now, unless one is under way (it sees what the caller just changed, or the next does). */
  now(): void {
    if (this.running) return;
    this.running = true;
    this.body()
      .catch((err: Error) => this.log(`tick failed: ${err.message}`))
      .finally(() => (this.running = false));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
