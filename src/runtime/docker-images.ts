// Images in a Docker Engine: pull (with the engine's own progress, summed over layers), check,
// list, and remove what no container is made from. Pulls go through the engine, so its layer
// store, its registry mirrors and its certs.d trust apply: each layer is fetched once per node.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { engineReference } from '../model/image-ref.js';
import { engineMessage, statusOf } from './docker-common.js';
import type { ImageStore, LocalImage, PullBytes, RegistryAuth } from './runtime.js';

/** A pull that has fetched nothing for this long has stalled (a registry gone quiet mid-pull). */
const STALL_MS = 120_000;
/** Progress is passed on at most this often: a big image sends thousands of lines. */
const PROGRESS_EVERY_MS = 500;

interface PullMessage {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

export class DockerImages implements ImageStore {
  constructor(private readonly docker: Dockerode) {}

  async has(reference: string): Promise<boolean> {
    try {
      await this.docker.getImage(engineReference(reference)).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw new Error(`cannot inspect image "${reference}": ${engineMessage(err)}`);
    }
  }

  async pull(reference: string, auth: RegistryAuth | undefined, progress: (bytes: PullBytes) => void, signal?: AbortSignal): Promise<void> {
    const { fromImage, tag } = pullParams(reference);
    const host = fromImage.split('/', 1)[0]!;
    const authconfig = auth ? { username: auth.username, password: auth.password, serveraddress: host } : undefined;
    let stream: Readable;
    try {
      stream = (await this.docker.createImage(authconfig as Dockerode.AuthConfig, { fromImage, tag, abortSignal: signal })) as Readable;
    } catch (err) {
      throw new Error(pullFailure(engineMessage(err)));
    }
    const layers = new Map<string, { done: number; total: number }>();
    let lastSent = 0;
    let stalled: NodeJS.Timeout | undefined;
    const watch = () => {
      clearTimeout(stalled);
      stalled = setTimeout(() => stream.destroy(new Error(`no data from the registry for ${STALL_MS / 1000}s`)), STALL_MS);
    };
    const sum = (): PullBytes => {
      let doneBytes = 0;
      let totalBytes = 0;
      for (const layer of layers.values()) {
        doneBytes += layer.done;
        totalBytes += layer.total;
      }
      return { doneBytes, totalBytes };
    };
    watch();
    let failure: string | undefined;
    try {
      for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
        if (!line.trim()) continue;
        let message: PullMessage;
        try {
          message = JSON.parse(line) as PullMessage;
        } catch {
          continue; // not a progress line: nothing to learn from it
        }
        watch();
        if (message.error || message.errorDetail?.message) {
          failure = message.errorDetail?.message ?? message.error;
          continue;
        }
        if (!message.id || !message.status) continue;
        const layer = layers.get(message.id) ?? { done: 0, total: 0 };
        const detail = message.progressDetail;
        if (message.status === 'Downloading' && detail?.total) {
          layer.total = detail.total;
          layer.done = Math.min(detail.current ?? 0, detail.total);
        } else if (message.status === 'Download complete' || message.status === 'Pull complete' || message.status === 'Already exists') {
          layer.done = layer.total;
        }
        if (message.status === 'Downloading' || layers.has(message.id)) layers.set(message.id, layer);
        const now = Date.now();
        if (now - lastSent >= PROGRESS_EVERY_MS) {
          lastSent = now;
          progress(sum());
        }
      }
    } catch (err) {
      failure ??= err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(stalled);
    }
    if (failure !== undefined) throw new Error(pullFailure(failure));
    progress(sum());
    // The engine ends some failed pulls without an error line; the image is there or it is not.
    if (!(await this.has(reference))) throw new Error('the engine finished the pull but does not hold the image');
  }

  async resolve(reference: string, auth: RegistryAuth | undefined): Promise<string> {
    const name = engineReference(reference);
    const host = name.split('/', 1)[0]!;
    try {
      const answer = (await this.docker.getImage(name).distribution(auth ? { authconfig: { username: auth.username, password: auth.password, serveraddress: host } } : {})) as { Descriptor?: { digest?: string } };
      const digest = answer.Descriptor?.digest;
      if (!digest || !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error('the engine answered no digest');
      return digest;
    } catch (err) {
      throw new Error(engineMessage(err));
    }
  }

  async list(): Promise<LocalImage[]> {
    const images = await this.docker.listImages({ all: false });
    return images.map((image) => ({
      id: image.Id,
      names: [...(image.RepoTags ?? []), ...(image.RepoDigests ?? [])].filter((name) => !name.startsWith('<none>')),
      sizeBytes: image.Size,
      createdAt: image.Created * 1000,
    }));
  }

  async inUse(): Promise<Set<string>> {
    const containers = await this.docker.listContainers({ all: true });
    return new Set(containers.map((c) => c.ImageID));
  }

  async remove(id: string): Promise<boolean> {
    try {
      // Not forced: an image a container still uses (one started meanwhile) stays.
      await this.docker.getImage(id).remove({ force: false, noprune: false });
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return true;
      if (statusOf(err) === 409) return false;
      throw new Error(`cannot remove image ${id.slice(0, 19)}: ${engineMessage(err)}`);
    }
  }
}

/** POST /images/create parameters: the name, and its tag or digest ("latest" when it names neither: never every tag). */
function pullParams(reference: string): { fromImage: string; tag: string } {
  const ref = engineReference(reference);
  const at = ref.indexOf('@');
  if (at >= 0) return { fromImage: ref.slice(0, at), tag: ref.slice(at + 1) };
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > lastSlash ? { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { fromImage: ref, tag: 'latest' };
}

/** The engine's words, with what a user can do about the common causes. */
export function pullFailure(cause: string): string {
  const text = cause.trim();
  if (/unauthorized|authentication required|denied|401/i.test(text)) return `${text} (the registry refused the credentials, or has none for this node: gantry registry login <host>)`;
  if (/manifest unknown|not found|does not exist/i.test(text)) return `${text} (no such image or tag in the registry)`;
  if (/no matching manifest|platform/i.test(text)) return `${text} (the image has no build for this node's platform)`;
  if (/no space left/i.test(text)) return `${text} (the node's disk is full)`;
  if (/no such host|lookup .* on|dial tcp|connection refused|i\/o timeout|TLS handshake|x509/i.test(text)) return `${text} (the node cannot reach the registry)`;
  return text;
}
