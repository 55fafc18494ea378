// A plan's working copy over the snapshot: it clones a node's usage (and a count map) on first
// write, so planning never touches the snapshot and costs nothing per untouched node.
import { bumpMap, type CountMap, type NodeEntry, type NodeUsage, type View } from './state.js';
import type { Snapshot } from './snapshot.js';

/** A plan's working copy over a snapshot: clones a node's usage (and a count map) on first write. */
export class Draft implements View {
  readonly entries: readonly NodeEntry[];
  readonly nodes = new Map<number, NodeUsage>();
  private readonly maps = { entry: new Map<string, Map<number, number>>(), app: new Map<string, Map<number, number>>() };

  constructor(readonly base: Snapshot) {
    this.entries = base.entries;
  }

  usage(i: number): NodeUsage {
    return (this.nodes.size !== 0 && this.nodes.get(i)) || this.entries[i]!.u;
  }

  writable(i: number): NodeUsage {
    let u = this.nodes.get(i);
    if (!u) this.nodes.set(i, (u = this.entries[i]!.u.clone()));
    return u;
  }

  entryCounts(key: string): CountMap | undefined {
    return this.maps.entry.get(key) ?? this.base.entryCounts(key);
  }

  appCounts(app: string): CountMap | undefined {
    return this.maps.app.get(app) ?? this.base.appCounts(app);
  }

  bump(kind: 'entry' | 'app', key: string, i: number, delta: number): void {
    let map = this.maps[kind].get(key);
    if (!map) {
      const base = kind === 'entry' ? this.base.entryCounts(key) : this.base.appCounts(key);
      this.maps[kind].set(key, (map = new Map(base)));
    }
    bumpMap(map, i, delta);
  }
}
