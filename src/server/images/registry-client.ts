// Asks a registry which digest a tag names now (the Docker Registry HTTP API v2, as Docker Hub,
// Harbor and distribution speak it): a HEAD of the manifest, answering the registry's challenge
// with Basic credentials or a Bearer token fetched from its realm. Trust follows Docker's own
// rules so that what the server can resolve, the nodes can pull: a host's CA in
// <certs dir>/<host>/ca.crt, and plain HTTP only for loopback registries.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, fetch, type Dispatcher } from 'undici';
import { DOCKER_HUB, DOCKER_HUB_API, parseImageRef, tagOf, type ImageRef } from '../../model/image-ref.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Why a registry would not say: `unreachable` is the only kind worth asking a node's engine about. */
export type RegistryFailure = 'unreachable' | 'unauthorized' | 'not-found' | 'refused';

export class RegistryError extends Error {
  constructor(readonly kind: RegistryFailure, message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface RegistryClientOptions {
  /** Docker's per-registry trust folder: <dir>/<host[:port]>/ca.crt. */
  certsDir: string;
  timeoutMs: number;
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
/** A manifest is small; one that is not is not a manifest. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_TOKEN_BYTES = 64 * 1024;

export class RegistryClient {
  private readonly dispatchers = new Map<string, Promise<Dispatcher>>();

  constructor(private readonly options: RegistryClientOptions) {}

  /** The digest `reference`'s tag names now in its registry. Throws RegistryError. */
  async resolve(reference: string, credentials?: RegistryCredentials): Promise<string> {
    const ref = parseImageRef(reference);
    // A digest the user wrote is checked, not trusted: one the registry does not hold would fail every pull.
    const what = ref.digest ? `${ref.registry}/${ref.repository}@${ref.digest}` : `${ref.registry}/${ref.repository}:${tagOf(ref)}`;
    const response = await this.manifest(ref, credentials, what);
    if (ref.digest) {
      const answered = response.headers.get('docker-content-digest');
      if (answered && answered !== ref.digest) throw new RegistryError('refused', `${what}: the registry answers digest ${answered} for it (digest mismatch)`);
      return ref.digest;
    }
    const header = response.headers.get('docker-content-digest');
    if (header && /^sha256:[a-f0-9]{64}$/.test(header)) return header;
    // Some registries leave the header out of HEAD answers: the digest is the manifest's own hash.
    const body = await this.request(ref, 'GET', credentials, what);
    const bytes = Buffer.from(await body.arrayBuffer());
    if (bytes.length > MAX_MANIFEST_BYTES) throw new RegistryError('refused', `${what}: the registry answered a manifest of ${bytes.length} bytes`);
    return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled(this.dispatchers.values());
    await Promise.all(all.map((d) => (d.status === 'fulfilled' ? d.value.close() : undefined)));
  }

  private manifest(ref: ImageRef, credentials: RegistryCredentials | undefined, what: string) {
    return this.request(ref, 'HEAD', credentials, what);
  }

  private async request(ref: ImageRef, method: 'HEAD' | 'GET', credentials: RegistryCredentials | undefined, what: string) {
    const path = `/v2/${ref.repository}/manifests/${ref.digest ?? encodeURIComponent(tagOf(ref))}`;
    const headers: Record<string, string> = { accept: MANIFEST_TYPES };
    let response = await this.send(ref.registry, path, method, headers, what);
    if (response.status === 401) {
      const challenge = response.headers.get('www-authenticate') ?? '';
      await response.body?.cancel().catch(() => undefined);
      headers.authorization = await this.authorization(ref, challenge, credentials, what);
      response = await this.send(ref.registry, path, method, headers, what);
    }
    if (response.ok) return response;
    const detail = await errorDetail(response);
    if (response.status === 401) throw new RegistryError('unauthorized', `${what}: the registry refused ${credentials ? 'the stored credentials' : 'an anonymous pull'} (unauthorized${detail}); ${credentials ? 'check them with' : 'store credentials with'} gantry registry login ${ref.registry}`);
    if (response.status === 403) throw new RegistryError('unauthorized', `${what}: access denied by the registry${detail}`);
    if (response.status === 404) throw new RegistryError('not-found', `${what}: no such tag or repository in the registry (manifest unknown${detail})`);
    throw new RegistryError(response.status >= 500 ? 'unreachable' : 'refused', `${what}: the registry answered HTTP ${response.status}${detail}`);
  }

  /** The Authorization header that answers the registry's challenge. */
  private async authorization(ref: ImageRef, challenge: string, credentials: RegistryCredentials | undefined, what: string): Promise<string> {
    const basic = credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined;
    const scheme = challenge.split(' ', 1)[0]?.toLowerCase();
    if (scheme === 'basic') {
      if (!basic) throw new RegistryError('unauthorized', `${what}: the registry needs credentials; store them with gantry registry login ${ref.registry}`);
      return basic;
    }
    if (scheme !== 'bearer') throw new RegistryError('refused', `${what}: the registry asks for an authentication scheme Gantry does not speak (${scheme || 'none given'})`);
    const params = challengeParams(challenge);
    if (!params.realm) throw new RegistryError('refused', `${what}: the registry's Bearer challenge names no realm`);
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch {
      throw new RegistryError('refused', `${what}: the registry's token realm is not a URL`);
    }
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? `repository:${ref.repository}:pull`);
    const dispatcher = await this.dispatcher(realm.host);
    let answer;
    try {
      answer = await fetch(realm, { headers: basic ? { authorization: basic } : {}, dispatcher, signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (err) {
      throw new RegistryError('unreachable', `${what}: cannot reach the registry's token service at ${realm.host}: ${causeOf(err)}`);
    }
    const text = await answer.text();
    if (answer.status === 401 || answer.status === 403) throw new RegistryError('unauthorized', `${what}: the registry's token service refused ${credentials ? 'the stored credentials' : 'an anonymous pull'}`);
    if (!answer.ok || text.length > MAX_TOKEN_BYTES) throw new RegistryError('refused', `${what}: the registry's token service answered HTTP ${answer.status}`);
    let token: unknown;
    try {
      const body = JSON.parse(text) as { token?: unknown; access_token?: unknown };
      token = body.token ?? body.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token.length === 0) throw new RegistryError('refused', `${what}: the registry's token service gave no token`);
    return `Bearer ${token}`;
  }

  private async send(registry: string, path: string, method: 'HEAD' | 'GET', headers: Record<string, string>, what: string) {
    const host = registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
    const dispatcher = await this.dispatcher(host);
    const attempt = (scheme: 'https' | 'http') =>
      fetch(`${scheme}://${host}${path}`, { method, headers, dispatcher, redirect: 'follow', signal: AbortSignal.timeout(this.options.timeoutMs) });
    try {
      return await attempt('https');
    } catch (err) {
      // Docker speaks plain HTTP to a loopback registry that has no TLS; so does Gantry, and only there.
      if (isLoopback(host)) {
        try {
          return await attempt('http');
        } catch {
          // The HTTPS failure says more.
        }
      }
      throw new RegistryError('unreachable', `${what}: cannot reach registry ${registry}: ${causeOf(err)}`);
    }
  }

  /** One connection pool per host, trusting that host's CA when Docker's certs folder has one. */
  private dispatcher(host: string): Promise<Dispatcher> {
    let found = this.dispatchers.get(host);
    if (!found) {
      found = readFile(join(this.options.certsDir, host.replace(/[/\\]/g, '_'), 'ca.crt'), 'utf8').then(
        (ca) => new Agent({ connect: { ca }, connections: 4 }),
        () => new Agent({ connections: 4 }),
      );
      this.dispatchers.set(host, found);
    }
    return found;
  }
}

function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '[::1]';
}

/** `realm="...",service="...",scope="..."` of a Bearer challenge. */
function challengeParams(challenge: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const match of challenge.matchAll(/([a-zA-Z]+)="([^"]*)"/g)) params[match[1]!.toLowerCase()] = match[2]!;
  return params;
}

/** The registry's own error code and message ("MANIFEST_UNKNOWN: manifest unknown"), briefly. */
async function errorDetail(response: Awaited<ReturnType<typeof fetch>>): Promise<string> {
  try {
    const text = (await response.text()).slice(0, 4096);
    const body = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = body.errors?.[0];
    if (first && typeof first.code === 'string') return `: ${first.code}${typeof first.message === 'string' ? ` ${first.message.slice(0, 200)}` : ''}`;
  } catch {
    // A HEAD answer has no body; a proxy's HTML page says nothing useful.
  }
  return '';
}

/** The low-level reason (ECONNREFUSED, ENOTFOUND, a certificate problem, a timeout) in words. */
function causeOf(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  const cause = e.cause;
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return 'unknown host (DNS lookup failed)';
  if (cause?.code === 'ECONNREFUSED') return 'connection refused';
  if (cause?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(cause.code)) return `TLS certificate not trusted (${cause.code}); put the registry's CA in the Docker certs folder for this host`;
  return cause?.message ?? e.message ?? String(err);
}
