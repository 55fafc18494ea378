// How much disk the engine's images take on this node, for the node's report (`gantry nodes`).
// Listing images costs the engine real work, so it is asked at most once a minute (or after a
// clean-up removed some), not at every heartbeat. Bytes are rounded to whole MiB: the server
// writes the node record whenever the node's info changes, and a figure that wobbles by a few
// bytes would cost a store write per heartbeat.
import type { NodeImages } from '../model/types.js';
import type { Runtime } from '../runtime/runtime.js';

export const IMAGE_USAGE_EVERY_MS = 60_000;
const MIB = 1024 * 1024;

export class ImageDiskUsage {
  private last: NodeImages | undefined;
  private askedAt = -Infinity;

  constructor(private readonly everyMs = IMAGE_USAGE_EVERY_MS) {}

  /** The images of the first usable runtime that has them; undefined when none has (or it never answered). */
  async current(usable: readonly Runtime[], now = Date.now()): Promise<NodeImages | undefined> {
    const store = usable.find((runtime) => runtime.images)?.images;
    if (!store) return undefined;
    if (now - this.askedAt < this.everyMs) return this.last;
    this.askedAt = now;
    try {
      const images = await store.list();
      const bytes = images.reduce((sum, image) => sum + image.sizeBytes, 0);
      this.last = { count: images.length, bytes: Math.round(bytes / MIB) * MIB };
    } catch {
      // The engine did not answer: the last figure stands until the next minute.
    }
    return this.last;
  }

  /** Images came or went: the next report asks the engine again. */
  changed(): void {
    this.askedAt = -Infinity;
  }
}
