// The secret values and config versions this node's instances use, as the server sent them with
// their assignments. Kept in memory and in the agent's cache (0600 files in its 0700 directory),
// so an instance that must be started afresh while the server is down still gets them; only what
// some instance assigned here uses is kept, the rest is dropped as its instances go.
import type { Instance } from '../model/types.js';

export class NodeValues<T extends { version: number }> {
  private values: Record<string, T>;

  constructor(
    load: () => Record<string, T>,
    private readonly save: (values: Record<string, T>) => void,
    /** The references (team/name) an instance uses. */
    private readonly usesOf: (instance: Instance) => string[],
  ) {
    this.values = load();
  }

  get(ref: string): T | undefined {
    return Object.hasOwn(this.values, ref) ? this.values[ref] : undefined;
  }

  /** Takes what came with the assignments and keeps only what `instances` use; returns the references whose version changed. */
  update(received: Record<string, T> | undefined, instances: readonly Instance[]): string[] {
    const used = new Set(instances.flatMap((i) => this.usesOf(i)));
    const next: Record<string, T> = {};
    const changed: string[] = [];
    for (const ref of used) {
      const known = this.values[ref];
      const value = received && Object.hasOwn(received, ref) ? received[ref] : known;
      if (!value) continue;
      next[ref] = value;
      if (known && known.version !== value.version) changed.push(ref);
    }
    if (JSON.stringify(next) !== JSON.stringify(this.values)) {
      this.values = next;
      this.save(next);
    }
    return changed;
  }
}
