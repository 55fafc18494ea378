// Images on this node: pulled when an instance needs one (as its entry's pull policy says) or
// when the server asks ahead of a rollout (pre-pull). Several instances wanting the same image
// share one pull. Registry credentials come from the server with the assignments and are kept
// in memory only: never in the agent's cache, never in a message back.
import type { GantryEvent, PullProgress } from '../model/types.js';
import { MAX_PREPULL_IMAGES, type PrepullResult } from '../model/agent-protocol.js';
import type { ImageStore, PullBytes, RegistryAuth } from '../runtime/runtime.js';
import { registryOf } from '../model/image-ref.js';

export type PullPolicy = 'ifMissing' | 'always' | 'never';

export interface PullWatcher {
  /** A pull begins (the image was missing, or the policy is always). */
  started?(): void;
  progress?(progress: PullProgress): void;
}

/** What ensure() did: nothing (the image was there, or the policy says never), or a pull. */
export type EnsureOutcome = { pulled: false } | { pulled: true; ms: number; bytes: number };

interface Pull {
  done: Promise<{ ms: number; bytes: number }>;
  watchers: Set<PullWatcher>;
  last: PullBytes;
}

export class ImagePuller {
  private readonly auth = new Map<string, RegistryAuth>();
  private readonly pulls = new Map<string, Pull>();

  constructor(private readonly store: ImageStore | undefined) {}

  /** The server's credentials for registries this node pulls from (what it sent replaces what it sent before, per host). */
  learnAuth(auth: Record<string, RegistryAuth> | undefined): void {
    for (const [host, credentials] of Object.entries(auth ?? {})) this.auth.set(host, credentials);
  }

  /** The digest `image` names now, through this node's engine (with the server's credentials for its registry). */
  async resolve(image: string): Promise<string> {
    if (!this.store) throw new Error('this node runs no image runtime');
    const host = registryOf(image);
    return this.store.resolve(image, host === undefined ? undefined : this.auth.get(host));
  }

  /** Images being pulled now, with their progress (for the node's report). */
  inFlight(): PullProgress[] {
    return [...this.pulls].map(([image, pull]) => ({ image, ...pull.last }));
  }

  /** The image is on the node when this resolves, as `policy` asks; throws with the engine's cause. */
  async ensure(image: string, policy: PullPolicy, watcher: PullWatcher = {}): Promise<EnsureOutcome> {
    if (!this.store || policy === 'never') return { pulled: false };
    const running = this.pulls.get(image);
    if (running) return { pulled: true, ...(await this.follow(running, watcher)) };
    if (policy === 'ifMissing' && (await this.store.has(image))) return { pulled: false };
    // A pull may have begun while has() was asked.
    const pull = this.pulls.get(image) ?? this.begin(image);
    return { pulled: true, ...(await this.follow(pull, watcher)) };
  }

  private begin(image: string): Pull {
    const store = this.store!;
    const host = registryOf(image);
    const pull: Pull = { watchers: new Set(), last: { doneBytes: 0, totalBytes: 0 }, done: Promise.resolve({ ms: 0, bytes: 0 }) };
    const started = Date.now();
    pull.done = store
      .pull(image, host === undefined ? undefined : this.auth.get(host), (bytes) => {
        pull.last = bytes;
        for (const watcher of pull.watchers) watcher.progress?.({ image, ...bytes });
      })
      .then(() => ({ ms: Date.now() - started, bytes: pull.last.totalBytes }))
      .finally(() => this.pulls.delete(image));
    this.pulls.set(image, pull);
    return pull;
  }

  private async follow(pull: Pull, watcher: PullWatcher): Promise<{ ms: number; bytes: number }> {
    watcher.started?.();
    pull.watchers.add(watcher);
    try {
      return await pull.done;
    } finally {
      pull.watchers.delete(watcher);
    }
  }
}

/** At most this many images of one pre-pull request are pulled at once (the engine pulls layers in parallel too). */
const PREPULL_PARALLEL = 2;

/**
 * Pulls `images` ahead of need (ifMissing: one the node has is done at once), a few at a time;
 * never throws: each image's outcome is in the answer, and said as a node event.
 */
export async function prepull(puller: ImagePuller, images: string[], event: (event: Omit<GantryEvent, 'time'>) => void): Promise<PrepullResult[]> {
  const results: PrepullResult[] = [];
  // A server asks for at most MAX_PREPULL_IMAGES at once; more would make an answer it refuses.
  const queue = [...new Set(images)].slice(0, MAX_PREPULL_IMAGES);
  const worker = async () => {
    for (let image = queue.shift(); image !== undefined; image = queue.shift()) {
      const started = Date.now();
      try {
        const outcome = await puller.ensure(image, 'ifMissing');
        results.push({ image, ms: Date.now() - started });
        if (outcome.pulled) event({ level: 'info', type: 'node.image_pulled', message: `pre-pulled ${image} in ${((Date.now() - started) / 1000).toFixed(1)}s`, data: { image, bytes: outcome.bytes } });
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        results.push({ image, ms: Date.now() - started, error });
        event({ level: 'warning', type: 'node.image_pull_failed', message: `cannot pre-pull ${image}: ${error}`, data: { image } });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PREPULL_PARALLEL, queue.length) }, worker));
  return results;
}
