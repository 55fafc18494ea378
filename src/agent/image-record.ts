// The images Gantry itself used on this node, per app: the reference an instance was assigned
// (as the server pinned it, "host/app:v1@sha256:…"), the newest release that used it and when.
// Image clean-up (image-gc.ts) only ever considers what is written here, so an image an operator
// put on the host by hand is never a candidate. The file lives in the agent's data directory and
// is replaced atomically; losing it only means fewer images are cleaned up, never more.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir, writePrivateFileAtomic } from '../host/private-files.js';

export const IMAGE_RECORD_FILE = 'images-used.json';
/**
 * Entries kept per app; beyond it the lowest releases are forgotten (so never cleaned up): the
 * file stays small even when clean-up is off or every old image is still held by a container.
 */
const MAX_ENTRIES_PER_APP = 100;
/** lastUsedAt alone changing is written at most this often (starts are frequent, the date is a hint). */
const TOUCH_WRITE_MS = 60 * 60_000;

export interface ImageUse {
  /** The reference as assigned. */
  image: string;
  /** The newest release of the app that ran it on this node. */
  release: number;
  lastUsedAt: number;
}

export class ImageUseRecord {
  private readonly path: string;
  private apps = new Map<string, ImageUse[]>();
  private dirty = false;

  constructor(
    private readonly dir: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.path = join(dir, IMAGE_RECORD_FILE);
    this.apps = this.load();
  }

  /** An instance of `app` release `release` is about to run from `image`. */
  note(app: string, image: string, release: number, now = Date.now()): void {
    const uses = this.apps.get(app) ?? [];
    const known = uses.find((use) => use.image === image);
    if (known && known.release >= release) {
      const stale = now - known.lastUsedAt >= TOUCH_WRITE_MS;
      known.lastUsedAt = Math.max(known.lastUsedAt, now);
      if (stale) this.save();
      else this.dirty = true;
      return;
    }
    if (known) Object.assign(known, { release, lastUsedAt: now });
    else uses.push({ image, release, lastUsedAt: now });
    if (uses.length > MAX_ENTRIES_PER_APP) uses.sort((a, b) => b.release - a.release).splice(MAX_ENTRIES_PER_APP);
    this.apps.set(app, uses);
    this.save();
  }

  /** Every app with the images it used (copies: the record changes only through its methods). */
  all(): Map<string, ImageUse[]> {
    return new Map([...this.apps].map(([app, uses]) => [app, uses.map((use) => ({ ...use }))]));
  }

  /** Drops the entries of `app` naming `images` (removed, or gone from the engine). */
  forget(app: string, images: Iterable<string>): void {
    const drop = new Set(images);
    const uses = this.apps.get(app);
    if (!uses || drop.size === 0) return;
    const kept = uses.filter((use) => !drop.has(use.image));
    if (kept.length === uses.length) return;
    if (kept.length > 0) this.apps.set(app, kept);
    else this.apps.delete(app);
    this.save();
  }

  /** Writes what only changed in memory (last-use dates). */
  flush(): void {
    if (this.dirty) this.save();
  }

  private load(): Map<string, ImageUse[]> {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`cannot read ${this.path}: ${(err as Error).message}`);
      return new Map();
    }
    try {
      const parsed = JSON.parse(text) as { apps?: Record<string, unknown> };
      const apps = new Map<string, ImageUse[]>();
      for (const [app, uses] of Object.entries(parsed.apps ?? {})) {
        if (!Array.isArray(uses)) continue;
        const valid = uses.filter(isImageUse);
        if (valid.length > 0) apps.set(app, valid);
      }
      return apps;
    } catch (err) {
      // Starting empty only means the images recorded so far are never cleaned up.
      this.log(`${this.path} is not readable JSON (${(err as Error).message}): starting a new record of the images used`);
      return new Map();
    }
  }

  private save(): void {
    try {
      ensurePrivateDir(this.dir);
      writePrivateFileAtomic(this.path, JSON.stringify({ apps: Object.fromEntries(this.apps) }));
      this.dirty = false;
    } catch (err) {
      // Not fatal: the record in memory is right, the next change writes it again.
      this.dirty = true;
      this.log(`cannot write ${this.path}: ${(err as Error).message}`);
    }
  }
}

function isImageUse(value: unknown): value is ImageUse {
  const use = value as Partial<ImageUse> | null;
  return typeof use?.image === 'string' && Number.isSafeInteger(use.release) && typeof use.lastUsedAt === 'number';
}
