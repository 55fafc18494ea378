// Image clean-up: now and then the agent removes images Gantry itself used for an app on this
// node (image-record.ts) that are older than the app's newest N releases here. Never an image
// an operator put on the host by hand (it is not in the record), and never one that is still
// needed: one a container of the engine is made from (running or stopped, Gantry's or not), one
// a current assignment names, one being pulled, one the kept releases use under another name, or
// one also tagged under a name Gantry never used (removal by id would take that tag with it).
// Removal is the engine's non-forced one, so an image a container took meanwhile stays.
import type { GantryEvent } from '../model/types.js';
import { entryImages } from '../model/spec.js';
import { normalRegistryHost, parseImageRef, tagOf } from '../model/image-ref.js';
import type { ImageStore, LocalImage } from '../runtime/runtime.js';
import { ImageUseRecord, type ImageUse } from './image-record.js';

export const DEFAULT_KEEP_RELEASES = 3;
export const DEFAULT_GC_INTERVAL_MS = 10 * 60_000;

/** `gantry agent --image-keep-releases`: 0 (or enabled false) turns clean-up off. */
export interface ImageGcSettings {
  keepReleases?: number;
  intervalMs?: number;
  enabled?: boolean;
}

/** What the collector asks of the agent's assignments: the images their instances name. */
export interface AssignedInstances {
  records(): readonly { spec: { image?: string; init?: { image?: string } } }[];
}

/** What the collector asks of the image puller: the references being pulled now. */
export interface PullsInFlight {
  inFlight(): readonly { image: string }[];
}

export interface ImageCollectorOptions {
  /** The engine's images; undefined on a node without the docker runtime (nothing to do). */
  store: ImageStore | undefined;
  /** Where the record of the images used is kept (the agent's data directory). */
  dataDir: string;
  settings?: ImageGcSettings;
  assignments: AssignedInstances;
  pulls: PullsInFlight;
  event(event: Omit<GantryEvent, 'time'>): void;
  /** Images were removed: the node's disk usage changed. */
  removed?(): void;
  log?(line: string): void;
}

export interface RemovedImage {
  app: string;
  image: string;
  release: number;
  id: string;
  bytes: number;
}

/** One pass: what went, and which candidates stayed and why. */
export interface CollectResult {
  removed: RemovedImage[];
  kept: { app: string; image: string; why: string }[];
}

export class ImageCollector {
  readonly keepReleases: number;
  private readonly record: ImageUseRecord;
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CollectResult> | undefined;

  constructor(private readonly options: ImageCollectorOptions) {
    const keep = options.settings?.keepReleases ?? DEFAULT_KEEP_RELEASES;
    this.keepReleases = options.settings?.enabled === false ? 0 : Math.max(0, Math.floor(keep));
    this.log = options.log ?? (() => {});
    this.record = new ImageUseRecord(options.dataDir, this.log);
  }

  get enabled(): boolean {
    return this.keepReleases > 0 && this.options.store !== undefined;
  }

  /** An instance of `app` release `release` runs from `image` (noted even while clean-up is off, for when it is on). */
  noteUse(image: string, use: { app: string; release: number }): void {
    if (this.options.store) this.record.note(use.app, image, use.release);
  }

  /** Runs a pass every `intervalMs` (the first one interval after the start, not while the node starts up). */
  start(): void {
    if (!this.enabled || this.timer) return;
    const every = this.options.settings?.intervalMs ?? DEFAULT_GC_INTERVAL_MS;
    this.timer = setInterval(() => void this.collect().catch((err: Error) => this.log(`image clean-up failed: ${err.message}`)), every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.record.flush();
  }

  /** One pass; a pass asked for while one runs gets that one's result. */
  collect(): Promise<CollectResult> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<CollectResult> {
    const result: CollectResult = { removed: [], kept: [] };
    const store = this.options.store;
    if (!store || !this.enabled) return result;
    const recorded = this.record.all();
    const { keep, candidates } = planCleanup(recorded, this.keepReleases);
    if (candidates.length === 0) return result; // no engine calls when nothing is old enough
    const [images, inUse] = await Promise.all([store.list(), store.inUse()]);
    const index = new ImageIndex(images);
    // Ids the kept releases use: a candidate may name the same image another way (tag vs digest).
    const keptIds = new Set(keep.flatMap(({ use }) => index.find(use.image)?.id ?? []));
    const ownNames = recordedNames(recorded);
    const removedIds = new Set<string>();
    const forget = new Map<string, string[]>();
    const forgetLater = (app: string, image: string) => forget.set(app, [...(forget.get(app) ?? []), image]);

    for (const { app, use } of candidates) {
      const image = index.find(use.image);
      if (!image) {
        forgetLater(app, use.image); // gone already (removed by hand, or never pulled)
        continue;
      }
      if (removedIds.has(image.id)) {
        forgetLater(app, use.image);
        continue;
      }
      // Asked right before the removal: an assignment or pull that came during the pass counts.
      const why = inUse.has(image.id) ? 'a container uses it' : keptIds.has(image.id) ? 'a newer release uses it' : (foreignTag(image, ownNames) ?? this.neededNow(image, index));
      if (why) {
        result.kept.push({ app, image: use.image, why });
        continue;
      }
      let removed: boolean;
      try {
        removed = await store.remove(image.id);
      } catch (err) {
        result.kept.push({ app, image: use.image, why: (err as Error).message });
        this.log(`image clean-up: ${(err as Error).message}`);
        continue;
      }
      if (!removed) {
        result.kept.push({ app, image: use.image, why: 'the engine refused (in use)' });
        continue;
      }
      removedIds.add(image.id);
      forgetLater(app, use.image);
      const gone: RemovedImage = { app, image: use.image, release: use.release, id: image.id, bytes: image.sizeBytes };
      result.removed.push(gone);
      this.options.event({
        level: 'info',
        type: 'node.image_removed',
        message: `removed image ${use.image} (${mib(image.sizeBytes)}) of ${app} release ${use.release}: older than the newest ${this.keepReleases} releases of ${app} here, and nothing uses it`,
        data: { image: use.image, app, release: use.release, id: image.id.slice(0, 19), bytes: image.sizeBytes },
      });
    }
    for (const [app, gone] of forget) this.record.forget(app, gone);
    this.record.flush();
    if (result.removed.length > 0) this.options.removed?.();
    return result;
  }

  /** Why an image must stay though nothing ran from it yet: an assignment names it, or it is being pulled. */
  private neededNow(image: LocalImage, index: ImageIndex): string | undefined {
    for (const instance of this.options.assignments.records()) {
      for (const reference of entryImages(instance.spec)) {
        if (index.find(reference)?.id === image.id) return `assigned (${reference})`;
      }
    }
    for (const { image: reference } of this.options.pulls.inFlight()) {
      if (index.find(reference)?.id === image.id) return `being pulled (${reference})`;
    }
    return undefined;
  }
}

/**
 * Per app, the images of its newest `keepReleases` distinct releases stay; every other recorded
 * image is a candidate for removal (still subject to the checks in the pass).
 */
export function planCleanup(apps: ReadonlyMap<string, readonly ImageUse[]>, keepReleases: number): { keep: { app: string; use: ImageUse }[]; candidates: { app: string; use: ImageUse }[] } {
  const keep: { app: string; use: ImageUse }[] = [];
  const candidates: { app: string; use: ImageUse }[] = [];
  for (const [app, uses] of apps) {
    const newest = new Set([...new Set(uses.map((use) => use.release))].sort((a, b) => b - a).slice(0, keepReleases));
    for (const use of uses) (newest.has(use.release) ? keep : candidates).push({ app, use });
  }
  // Oldest first: when a pass stops part way, what went is what mattered least.
  candidates.sort((a, b) => a.use.release - b.use.release);
  return { keep, candidates };
}

/**
 * The engine's images by the names they are known by. Names are compared parsed, so
 * "nginx:1.25" and "docker.io/library/nginx:1.25" are one; a pinned reference
 * ("host/app:v1@sha256:…") is the image of that digest only, whatever the tag names now.
 */
export class ImageIndex {
  private readonly byName = new Map<string, LocalImage>();

  constructor(images: readonly LocalImage[]) {
    for (const image of images) for (const name of image.names) this.byName.set(nameKey(name), image);
  }

  find(reference: string): LocalImage | undefined {
    return this.byName.get(nameKey(reference));
  }
}

/**
 * The names Gantry's record accounts for: each recorded reference, and the tag a pinned one was
 * written with. Removing an image by id drops every tag it has in its repository, so an image
 * also tagged by someone else under a name Gantry never used is left alone.
 */
function recordedNames(apps: ReadonlyMap<string, readonly ImageUse[]>): Set<string> {
  const names = new Set<string>();
  for (const uses of apps.values()) {
    for (const { image } of uses) {
      names.add(nameKey(image));
      const at = image.indexOf('@');
      if (at > 0 && image.slice(0, at).lastIndexOf(':') > image.slice(0, at).lastIndexOf('/')) names.add(nameKey(image.slice(0, at)));
    }
  }
  return names;
}

/** Why an image must stay: a tag on it that Gantry never used (digest names come with pulls, they are no one's choice). */
function foreignTag(image: LocalImage, ownNames: ReadonlySet<string>): string | undefined {
  const foreign = image.names.find((name) => !name.includes('@') && !ownNames.has(nameKey(name)));
  return foreign === undefined ? undefined : `also tagged ${foreign}, which Gantry did not use`;
}

/** registry/repository@digest for a pinned reference, registry/repository:tag otherwise; the text itself if it does not parse. */
function nameKey(reference: string): string {
  try {
    const ref = parseImageRef(reference);
    const repository = `${normalRegistryHost(ref.registry)}/${ref.repository}`;
    return ref.digest ? `${repository}@${ref.digest}` : `${repository}:${tagOf(ref)}`;
  } catch {
    return reference;
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
