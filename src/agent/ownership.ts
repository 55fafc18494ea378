// What this node may remove, and which cluster it belongs to. The rule: an instance is removed
// only on an explicit instruction about that instance (its assignment set to `removed`, or the
// server's `remove` list for instances removed while the node was away), never because a list
// came back without it. An instance no assignment names (the server's store was emptied or
// replaced, the agent lost its cache) keeps running and is reported as unassigned, for an
// operator to adopt or forget.
//
// The cluster id guards the same rule from the other side: a node remembers the cluster that
// gave it its instances; a server of another cluster (a store started anew with --init, or
// restored from another cluster's backup) cannot have this node remove anything until an
// operator has adopted or forgotten what it runs (`gantry node adopt|forget`).
import type { Instance } from '../model/types.js';
import type { UnassignedInstance } from '../model/agent-protocol.js';
import type { RuntimeInstance } from '../runtime/runtime.js';
import { INSTANCE_ID, NAME } from '../model/names.js';
import type { AgentCache } from './cache.js';

export class NodeOwnership {
  /** Ids the server last assigned (before it has spoken in this run: the cached assignments). */
  private assigned = new Set<string>();
  /** Running here, labelled for this node, but with no record (found, not remembered). */
  private strays = new Map<string, UnassignedInstance>();
  private cluster: string | undefined;
  /** The server belongs to another cluster than the one this node remembers. */
  foreign = false;
  private toldForeign = false;

  constructor(
    private readonly cache: AgentCache,
    private readonly log: (line: string) => void,
  ) {
    this.cluster = cache.loadCluster();
  }

  /** The cluster this node remembers, for its hello. */
  get rememberedCluster(): string | undefined {
    return this.cluster;
  }

  /** The server's cluster, from its welcome: remembered on first contact, else compared. */
  welcome(cluster: string): void {
    if (this.cluster === undefined) {
      this.cluster = cluster;
      this.cache.saveCluster(cluster);
      this.foreign = false;
      return;
    }
    this.foreign = cluster !== this.cluster;
    if (this.foreign) {
      this.log(
        `this server belongs to cluster ${cluster}, not ${this.cluster} whose instances this node runs: nothing is removed; ` +
          'they keep running and are reported for adoption (gantry node adopt|forget)',
      );
    }
  }

  /** An operator settled what this node ran for its former cluster: it belongs to `cluster` now. */
  join(cluster: string): void {
    this.cluster = cluster;
    this.cache.saveCluster(cluster);
    if (this.foreign) this.log(`this node now belongs to cluster ${cluster}`);
    this.foreign = false;
    this.toldForeign = false;
  }

  setAssigned(instances: readonly Instance[]): void {
    this.assigned = new Set(instances.map((i) => i.id));
  }

  isAssigned(id: string): boolean {
    return this.assigned.has(id);
  }

  /** Of the server's `remove` list, what this node may act on: nothing while its cluster is foreign. */
  removable(ids: readonly string[]): string[] {
    if (!this.foreign || ids.length === 0) return [...ids];
    if (!this.toldForeign) this.log(`ignoring the removal of ${ids.length} instance(s) asked by a server of another cluster`);
    this.toldForeign = true;
    return [];
  }

  /** Remembers what runs here without a record, from a tick's observation. */
  observe(observed: ReadonlyMap<string, RuntimeInstance>, supervised: (id: string) => boolean): void {
    this.strays.clear();
    for (const [id, instance] of observed) {
      if (supervised(id)) continue;
      const { 'gantry.app': app, 'gantry.env': env, 'gantry.entry': entry, 'gantry.release': release } = instance.labels;
      // Labels are what this agent wrote; one that does not fit the names is not reported.
      if (!INSTANCE_ID.test(id) || ![app, env, entry].every((n) => n !== undefined && NAME.test(n))) continue;
      const stray: UnassignedInstance = { id, app: app!, env: env!, entry: entry! };
      if (release && /^\d{1,15}$/.test(release) && Number(release) > 0) stray.release = Number(release);
      this.strays.set(id, stray);
    }
  }

  /** Everything this node runs that no assignment names: supervised ones with their record, strays without. */
  unassigned(supervised: Iterable<Instance>): UnassignedInstance[] {
    const out: UnassignedInstance[] = [];
    for (const instance of supervised) {
      if (this.assigned.has(instance.id)) continue;
      out.push({ id: instance.id, app: instance.app, env: instance.env, entry: instance.entry, release: instance.release, record: instance });
    }
    return [...out, ...this.strays.values()];
  }
}
