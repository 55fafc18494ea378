// Image references as Docker reads them: [registry/]repository[:tag][@digest]. The registry is
// the first path component when it looks like a host (has a "." or a ":", or is "localhost");
// otherwise the image is on Docker Hub, where one-component names live under "library/".
// Gantry pins an image by appending the digest the tag named when the release was made
// ("host/app:v1@sha256:..."): the engine then runs exactly those bits, and the tag stays
// readable in history and diffs.

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API really answers. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface ImageRef {
  /** Registry host (with port), e.g. "registry.example.com:5000"; "docker.io" for Docker Hub. */
  registry: string;
  /** Repository path inside the registry, e.g. "library/nginx", "shop/web". */
  repository: string;
  tag?: string;
  /** "sha256:<64 hex>" when the reference names a digest. */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

export class ImageRefError extends Error {
  constructor(readonly reference: string, reason: string) {
    super(`image "${reference}" is not a valid reference: ${reason}`);
    this.name = 'ImageRefError';
  }
}

/** Parses a reference; throws ImageRefError saying what is wrong with it. */
export function parseImageRef(reference: string): ImageRef {
  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageRefError(reference, 'a digest is "sha256:" and 64 lower-case hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageRefError(reference, 'a tag is at most 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry)) throw new ImageRefError(reference, `"${registry}" is not a registry host[:port]`);
  }
  if (parts.length === 0 || parts.some((part) => !COMPONENT.test(part))) {
    throw new ImageRefError(reference, 'repository path components are lower-case letters and digits, separated by ".", "_", "__" or "-"');
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  return { registry, repository: parts.join('/'), ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The reference without its digest, "latest" when it names no tag: what a user wrote and means. */
export function tagOf(ref: ImageRef): string {
  return ref.tag ?? 'latest';
}

/** Whether the reference is pinned to a digest already. */
export function isPinned(reference: string): boolean {
  return reference.includes('@');
}

/** `reference` pinned to `digest`, keeping the name and tag as written ("app:v1" → "app:v1@sha256:..."). */
export function pinImage(reference: string, digest: string): string {
  const at = reference.indexOf('@');
  return `${at >= 0 ? reference.slice(0, at) : reference}@${digest}`;
}

/**
 * The reference as an engine takes it: a pinned one by its digest alone ("host/app@sha256:…"),
 * since "name:tag@digest" is not accepted everywhere; any other as written.
 */
export function engineReference(reference: string): string {
  const at = reference.indexOf('@');
  if (at < 0) return reference;
  const name = reference.slice(0, at);
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return `${colon > lastSlash ? name.slice(0, colon) : name}${reference.slice(at)}`;
}

/** The registry host a reference pulls from ("docker.io" for Docker Hub), or undefined when it does not parse. */
export function registryOf(reference: string): string | undefined {
  try {
    return parseImageRef(reference).registry;
  } catch {
    return undefined;
  }
}

/** Registry host names as stored and compared: lower case, Docker Hub's aliases folded into one. */
export function normalRegistryHost(host: string): string {
  const lower = host.toLowerCase();
  return lower === 'index.docker.io' || lower === DOCKER_HUB_API || lower === 'registry.hub.docker.com' ? DOCKER_HUB : lower;
}

/** A registry host[:port] as a user may give it to `gantry registry login`. */
export function isRegistryHost(host: string): boolean {
  return host.length <= 255 && HOST.test(host);
}
