// A release runs the same bits on every node: when a spec is applied, every image tag in it is
// resolved to the digest it names now and written into the spec ("app:v1" → "app:v1@sha256:…").
// A digest the user wrote (or a release pinned: a rollback) stays, once its registry confirmed
// it holds it; `pull: never` images are local by declaration and stay as written. A definite answer that the image cannot be had (no such tag, refused credentials) is a
// bad spec: the apply is refused with the field's path, nothing stored. A registry the server
// cannot reach is asked through a node's engine; when that fails too, the tag stays unpinned,
// said as a warning.
import type { AppSpec } from '../../model/spec.js';
import { SpecError, type SpecProblem } from '../../model/spec.js';
import { isPinned, pinImage, registryOf } from '../../model/image-ref.js';
import { RegistryError, type RegistryClient, type RegistryCredentials } from './registry-client.js';

export interface Unpinned {
  path: string;
  image: string;
  reason: string;
}

export interface PinResult {
  spec: AppSpec;
  unpinned: Unpinned[];
}

/** How long a registry that could not be reached is not asked again (every apply would wait for it). */
const UNREACHABLE_MEMORY_MS = 30_000;

export class ImagePinner {
  private readonly unreachable = new Map<string, { until: number; reason: string }>();

  constructor(
    private readonly client: RegistryClient,
    private readonly credentialsFor: (host: string) => RegistryCredentials | undefined,
    /**
     * Asks a node's engine instead (the registry may be on a network the nodes reach and the
     * server does not); rejects with the engine's words, or NoNodeToAsk-like errors when none
     * can be asked.
     */
    private readonly viaNode?: (image: string) => Promise<string>,
    private readonly now: () => number = Date.now,
  ) {}

  /** `spec` with its tags pinned; throws SpecError naming each image that definitely cannot be had. */
  async pin(spec: AppSpec): Promise<PinResult> {
    const pinned = structuredClone(spec);
    const unpinned: Unpinned[] = [];
    const problems: SpecProblem[] = [];
    const digests = new Map<string, Promise<string>>();
    const jobs: Promise<void>[] = [];
    for (const [name, entry] of Object.entries(pinned.entrypoints)) {
      if (entry.pull === 'never') continue;
      const places: Array<[string, string | undefined, (image: string) => void]> = [
        [`entrypoints.${name}.image`, entry.image, (image) => (entry.image = image)],
        [`entrypoints.${name}.init.image`, entry.init?.image, (image) => (entry.init!.image = image)],
      ];
      for (const [path, image, set] of places) {
        if (image === undefined) continue;
        let digest = digests.get(image);
        if (!digest) digests.set(image, (digest = this.resolve(image)));
        jobs.push(
          digest.then(
            (found) => set(pinImage(image, found)),
            (err: unknown) => {
              // Pinned already and not checkable now: the nodes pull exactly that digest anyway.
              if (err instanceof RegistryError && err.kind === 'unreachable') {
                if (!isPinned(image)) unpinned.push({ path, image, reason: err.message });
              }
              else problems.push({ path, message: err instanceof Error ? err.message : String(err) });
            },
          ),
        );
      }
    }
    await Promise.all(jobs);
    if (problems.length > 0) throw new SpecError(problems.sort((a, b) => a.path.localeCompare(b.path)));
    return { spec: pinned, unpinned: unpinned.sort((a, b) => a.path.localeCompare(b.path)) };
  }

  /** From the registry, else through a node; a registry neither reaches is not asked again for a while. */
  private async resolve(image: string): Promise<string> {
    const host = registryOf(image)!;
    const known = this.unreachable.get(host);
    if (known && known.until > this.now()) throw new RegistryError('unreachable', known.reason);
    try {
      try {
        return await this.client.resolve(image, this.credentialsFor(host));
      } catch (err) {
        if (!(err instanceof RegistryError && err.kind === 'unreachable') || !this.viaNode || isPinned(image)) throw err;
        return await this.fromNode(image, err);
      }
    } catch (err) {
      if (err instanceof RegistryError && err.kind === 'unreachable') this.unreachable.set(host, { until: this.now() + UNREACHABLE_MEMORY_MS, reason: err.message });
      throw err;
    }
  }

  /** The server could not reach the registry (`unreachable`): a node's engine may. Its verdict on the image stands; its own trouble reaching it leaves the tag unpinned. */
  private async fromNode(image: string, unreachable: RegistryError): Promise<string> {
    try {
      return await this.viaNode!(image);
    } catch (err) {
      const words = err instanceof Error ? err.message : String(err);
      if (/manifest unknown|not found|does not exist/i.test(words)) throw new RegistryError('not-found', `${image}: no such tag or repository in the registry (${words})`);
      if (/unauthorized|denied|authentication required/i.test(words)) throw new RegistryError('unauthorized', `${image}: the registry refused the node's pull (${words}); store credentials with gantry registry login ${registryOf(image)}`);
      throw new RegistryError('unreachable', `${unreachable.message}; asking a node's engine failed too: ${words}`);
    }
  }
}
