// An image build as `docker build` and `docker push` do it, on the user's own Docker Engine
// (DOCKER_HOST, or the local socket) through its API: the context (build-context.ts) streamed
// to POST /build, the engine's log lines printed as they come, then POST /images/{name}/push with
// X-Registry-Auth, the digest taken from the push's last message. No commander here: the build
// and apply --build actions (build-actions.ts) call runBuild and report what it returns.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import Dockerode from 'dockerode';
import { DOCKER_HUB, ImageRefError, normalRegistryHost, parseImageRef, tagOf, type ImageRef } from '../model/image-ref.js';
import { engineMessage } from '../runtime/docker-common.js';
import { BuildInputError, openSource, packContext } from './build-context.js';

/** What the build record keeps of a log (the server's bounds, POST /v1/builds). */
const LOG_TAIL_LINES = 200;
const LOG_LINE_CHARS = 1000;

/** The Docker Engine did not answer: nothing was built. */
export class EngineUnreachableError extends Error {
  override name = 'EngineUnreachableError';
}

/** The engine refused the build or the push; the message is its own. */
class BuildFailedError extends Error {}

export interface RegistryAuth {
  username: string;
  password: string;
}

export interface Engine {
  docker: Dockerode;
  /** Where it is, as the user would name it: for messages. */
  address: string;
}

/** The engine at --docker-host (unix:// or tcp://), else where DOCKER_HOST says, else the local socket. */
export function engineFor(dockerHost?: string): Engine {
  if (dockerHost === undefined) return { docker: new Dockerode(), address: process.env.DOCKER_HOST || 'unix:///var/run/docker.sock' };
  const socket = /^unix:\/\/(\/.+)$/.exec(dockerHost);
  // host: undefined, or a DOCKER_HOST in the environment would win over the socket.
  if (socket) return { docker: new Dockerode({ socketPath: socket[1], host: undefined }), address: dockerHost };
  let url: URL | undefined;
  try {
    url = new URL(dockerHost.includes('://') ? dockerHost : `tcp://${dockerHost}`);
  } catch {
    url = undefined;
  }
  if (!url || !['tcp:', 'http:', 'https:'].includes(url.protocol) || !url.hostname) {
    throw new BuildInputError(`--docker-host ${dockerHost}: expected unix:///path/to/docker.sock or tcp://host:port`);
  }
  const https = url.protocol === 'https:' || url.port === '2376';
  return { docker: new Dockerode({ host: url.hostname, port: Number(url.port || (https ? 2376 : 2375)), protocol: https ? 'https' : 'http' }), address: dockerHost };
}

export async function checkEngine(engine: Engine, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer in ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), timeoutMs);
  });
  try {
    await Promise.race([engine.docker.ping(), timeout]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? engineMessage(err);
    throw new EngineUnreachableError(`cannot reach the Docker Engine at ${engine.address}: ${code}. Is it running? (DOCKER_HOST or --docker-host say where it is)`);
  } finally {
    clearTimeout(timer);
  }
}

/** The reference a build is tagged as: a valid one, and a tag rather than a digest. */
export function buildTag(reference: string): ImageRef {
  let ref: ImageRef;
  try {
    ref = parseImageRef(reference);
  } catch (err) {
    throw new BuildInputError(err instanceof ImageRefError ? err.message : String(err));
  }
  if (ref.digest) throw new BuildInputError(`image "${reference}" names a digest: a build is tagged as a name and tag (registry/app:tag); the digest comes from the push`);
  return ref;
}

/**
 * Credentials for `registry` from the user's Docker config ($DOCKER_CONFIG/config.json or
 * ~/.docker/config.json): `auths[host].auth`, base64 of "user:password", as `docker login`
 * writes it. Credential stores and helpers (credsStore, credHelpers) are not asked: without an
 * `auth` there, the push goes without credentials and a private registry refuses it.
 */
export async function dockerConfigAuth(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<RegistryAuth | undefined> {
  const file = env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(env.HOME || homedir(), '.docker', 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BuildInputError(`cannot read the Docker config ${file}: ${(err as Error).message}`);
  }
  let auths: unknown;
  try {
    auths = (JSON.parse(text) as { auths?: unknown }).auths;
  } catch {
    // Not the parser's message: it quotes the text around the error, which may be a password.
    throw new BuildInputError(`the Docker config ${file} is not valid JSON`);
  }
  if (!auths || typeof auths !== 'object') return undefined;
  const wanted = normalRegistryHost(registry);
  for (const [key, value] of Object.entries(auths as Record<string, { auth?: unknown }>)) {
    // Keys are hosts, or URLs such as "https://index.docker.io/v1/".
    if (normalRegistryHost(key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '')) !== wanted) continue;
    if (typeof value?.auth !== 'string' || value.auth === '') continue;
    const decoded = Buffer.from(value.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new BuildInputError(`the Docker config ${file}: the "auth" of ${key} is not base64 of "user:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** The log of a build: printed as it comes, its last lines kept for the build record. */
export class BuildLog {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly write: (text: string) => void) {}

  /** Text as the engine streams it: a line may come in pieces, or several in one piece. */
  text(chunk: string): void {
    this.write(chunk);
    const parts = (this.partial + chunk).split(/\r\n|\n|\r/);
    this.partial = parts.pop()!;
    for (const line of parts) this.keep(line);
  }

  line(line: string): void {
    if (this.partial) this.text('\n');
    this.text(`${line}\n`);
  }

  tail(): string[] {
    if (this.partial) this.keep(this.partial);
    this.partial = '';
    return [...this.lines];
  }

  private keep(line: string): void {
    this.lines.push(line.slice(0, LOG_LINE_CHARS));
    if (this.lines.length > LOG_TAIL_LINES) this.lines.shift();
  }
}

/** One JSON message of the engine's build and push streams. */
interface EngineMessage {
  stream?: string;
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string; Tag?: string };
}

async function* messages(stream: NodeJS.ReadableStream): AsyncGenerator<EngineMessage> {
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  const parse = (line: string): EngineMessage => {
    try {
      return JSON.parse(line) as EngineMessage;
    } catch {
      return { stream: `${line}\n` };
    }
  };
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    buffer += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield parse(line);
    }
  }
  buffer += decoder.end();
  if (buffer.trim()) yield parse(buffer.trim());
}

function failure(m: EngineMessage): string | undefined {
  if (m.error === undefined && m.errorDetail === undefined) return undefined;
  return (m.error || m.errorDetail?.message || 'the engine reported an error without a message').trim();
}

/** Progress of a layer moving ("Pushing 3MB/9MB", "Waiting"): too many lines to print. */
const isProgress = (m: EngineMessage) => m.progressDetail?.current !== undefined || ['Preparing', 'Waiting', 'Pushing', 'Downloading', 'Extracting'].includes(m.status ?? '');

async function buildImage(engine: Engine, request: { context: Readable; tag: string; dockerfile: string; buildArgs: Record<string, string> }, log: BuildLog): Promise<string | undefined> {
  const stream = await engine.docker.buildImage(request.context, { t: request.tag, dockerfile: request.dockerfile, buildargs: request.buildArgs, rm: true, forcerm: true });
  let imageId: string | undefined;
  for await (const m of messages(stream)) {
    const error = failure(m);
    if (error !== undefined) {
      log.line(`error: ${error}`);
      throw new BuildFailedError(error);
    }
    if (m.stream !== undefined) log.text(m.stream);
    else if (m.aux?.ID) log.line(`image ID ${(imageId = m.aux.ID)}`);
    else if (m.status && !isProgress(m)) log.line(m.id ? `${m.id}: ${m.status}` : m.status);
  }
  return imageId;
}

/** Pushes `reference` (a tag) and returns the manifest digest the registry took. */
async function pushImage(engine: Engine, ref: ImageRef, reference: string, auth: RegistryAuth | undefined, log: BuildLog): Promise<string> {
  const name = ref.tag === undefined ? reference : reference.slice(0, -(ref.tag.length + 1));
  // The engine wants X-Registry-Auth even for a registry without logins: then an empty one.
  const serveraddress = normalRegistryHost(ref.registry) === DOCKER_HUB ? 'https://index.docker.io/v1/' : ref.registry;
  const stream = await engine.docker.getImage(name).push({ tag: tagOf(ref), authconfig: auth ? { ...auth, serveraddress } : {} });
  let digest: string | undefined;
  for await (const m of messages(stream)) {
    const error = failure(m);
    if (error !== undefined) {
      log.line(`error: ${error}`);
      const hint = !auth && /unauthori[sz]ed|auth/i.test(error) ? ` (no credentials for ${ref.registry}: \`docker login ${ref.registry}\`, or --registry-user with --registry-password-stdin)` : '';
      throw new BuildFailedError(`the push to ${ref.registry} failed: ${error}${hint}`);
    }
    if (m.aux?.Digest) digest = m.aux.Digest;
    else if (m.status && !isProgress(m)) {
      log.line(m.id ? `${m.id}: ${m.status}` : m.status);
      digest ??= /digest: (sha256:[a-f0-9]{64})/.exec(m.status)?.[1];
    }
  }
  if (!digest) throw new BuildFailedError(`the push of ${reference} ended without the registry's digest`);
  return digest;
}

export interface BuildRequest {
  /** A directory, or a git URL. */
  source: string;
  /** Git URL only: the branch or tag to clone. */
  ref?: string;
  /** A path inside the context (default "Dockerfile"). */
  dockerfile?: string;
  /** The reference to tag the image as. */
  tag: string;
  buildArgs: Record<string, string>;
  push: boolean;
  /** For the push: else the Docker config's credentials for the registry, if any. */
  auth?: RegistryAuth;
  dockerHost?: string;
  /** Where the log goes as it comes. */
  write: (text: string) => void;
}

/** What came of a build: what the build record holds, less what the server adds. */
export interface BuildOutcome {
  image: string;
  digest?: string;
  imageId?: string;
  source: string;
  ref?: string;
  commit?: string;
  dirty?: boolean;
  dockerfile?: string;
  durationMs: number;
  result: 'succeeded' | 'failed';
  error?: string;
  logTail: string[];
}

/**
 * Builds (and pushes) an image. Problems with the request (BuildInputError) and an engine that
 * does not answer (EngineUnreachableError) are thrown before anything is built; once the engine
 * has the context, a failure of the build or the push is returned as a failed outcome, so that it
 * can be recorded like a success.
 */
export async function runBuild(request: BuildRequest): Promise<BuildOutcome> {
  const started = Date.now();
  const ref = buildTag(request.tag);
  const engine = engineFor(request.dockerHost);
  await checkEngine(engine);
  const auth = request.push ? (request.auth ?? (await dockerConfigAuth(ref.registry))) : undefined;
  const dockerfile = request.dockerfile ?? 'Dockerfile';
  const source = await openSource(request.source, { ref: request.ref });
  try {
    const context = await packContext(source.dir, dockerfile);
    const log = new BuildLog(request.write);
    const known = {
      image: request.tag,
      source: source.source,
      ...(source.ref !== undefined ? { ref: source.ref } : {}),
      ...(source.commit !== undefined ? { commit: source.commit } : {}),
      ...(source.dirty !== undefined ? { dirty: source.dirty } : {}),
      ...(request.dockerfile !== undefined ? { dockerfile } : {}),
    };
    const commit = source.commit ? ` at commit ${source.commit.slice(0, 12)}${source.dirty ? ' (with uncommitted changes)' : ''}` : '';
    log.line(`building ${request.tag} from ${source.source}${commit}: ${context.files} file${context.files === 1 ? '' : 's'}, ${Math.ceil(context.bytes / 1024)} KiB, on the Docker Engine at ${engine.address}`);
    try {
      const imageId = await buildImage(engine, { context: context.stream, tag: request.tag, dockerfile, buildArgs: request.buildArgs }, log);
      const digest = request.push ? await pushImage(engine, ref, request.tag, auth, log) : undefined;
      return { ...known, ...(digest ? { digest } : {}), ...(imageId ? { imageId } : {}), durationMs: Date.now() - started, result: 'succeeded', logTail: log.tail() };
    } catch (err) {
      let error = err instanceof BuildFailedError ? err.message : `the Docker Engine at ${engine.address}: ${engineMessage(err)}`;
      // Belt and braces: whatever the engine or registry echoes, the password is not shown or stored.
      if (auth?.password) error = error.split(auth.password).join('***');
      return { ...known, durationMs: Date.now() - started, result: 'failed', error, logTail: log.tail().map((line) => (auth?.password ? line.split(auth.password).join('***') : line)) };
    } finally {
      context.stream.destroy();
    }
  } finally {
    await source.cleanup();
  }
}
