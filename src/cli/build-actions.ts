// What the build commands of build-commands.ts do: `gantry build` (image-build.ts does the
// engine's part), `gantry builds`, and the --build step of `gantry apply`, which builds and pushes
// every image the spec has a build section for and applies the spec with those images pinned to
// the digests pushed. Every build, succeeded or failed, is reported to the server (POST /v1/builds).
// Loaded when one of them runs.
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { isPinned, pinImage } from '../model/image-ref.js';
import type { BuildRecord } from '../model/types.js';
import { formatDuration } from '../model/units.js';
import { BuildInputError, isGitUrl } from './build-context.js';
import { ApiRequestError, unreachableError } from './client.js';
import { options } from './cli-options.js';
import { loadClientConfig, readCertificateFile } from './config.js';
import { EXIT, fail } from './errors.js';
import { exchange } from './http.js';
import { EngineUnreachableError, runBuild, type BuildOutcome, type RegistryAuth } from './image-build.js';
import { io, print, printError, renderJson, renderTable, timeAgo } from './output.js';

/** The flags `gantry build` and `gantry apply --build` share. */
interface EngineFlags {
  dockerHost?: string;
  registryUser?: string;
  registryPasswordStdin?: boolean;
}

interface BuildFlags extends EngineFlags {
  tag: string;
  ref?: string;
  dockerfile?: string;
  buildArg?: Record<string, string>;
  push?: boolean;
}

/** A build as GET /v1/builds lists it (the log left out). */
type BuildSummary = Omit<BuildRecord, 'logTail'> & { logLines: number };

export async function build(source: string, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<BuildFlags>(cmd);
  const json = opts.output === 'json';
  const auth = await registryLogin(opts, false);
  const outcome = await engineWork(() =>
    runBuild({
      source,
      ref: opts.ref,
      dockerfile: opts.dockerfile,
      tag: opts.tag,
      buildArgs: opts.buildArg ?? {},
      push: opts.push === true,
      auth,
      dockerHost: opts.dockerHost,
      // With -o json stdout holds the answer alone; the log goes to stderr.
      write: (text) => (json ? io.err : io.out).write(text),
    }),
  );
  const recorded = await report(cmd, outcome);
  if (outcome.result === 'failed') fail(EXIT.api, `build of ${outcome.image} failed: ${outcome.error}`);
  if (json) {
    return print(renderJson({ image: outcome.image, digest: outcome.digest ?? null, commit: outcome.commit ?? null, durationMs: outcome.durationMs, imageId: outcome.imageId ?? null, build: recorded?.id ?? null }));
  }
  print(outcome.digest ? `built and pushed ${pinImage(outcome.image, outcome.digest)}` : `built ${outcome.image}${outcome.imageId ? ` (image ID ${outcome.imageId})` : ''}, not pushed (--push pushes it)`);
}

export async function builds(id: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ app?: string; limit?: number }>(cmd);
  if (id !== undefined) {
    const { build: record } = await api<{ build: BuildRecord }>(cmd, 'GET', `/v1/builds/${encodeURIComponent(id)}`);
    return print(opts.output === 'json' ? renderJson(record) : buildText(record));
  }
  const query = new URLSearchParams();
  if (opts.app) query.set('app', opts.app);
  if (opts.limit !== undefined) query.set('limit', String(opts.limit));
  const { builds: list } = await api<{ builds: BuildSummary[] }>(cmd, 'GET', `/v1/builds${query.size ? `?${query}` : ''}`);
  if (opts.output === 'json') return print(renderJson(list));
  if (list.length === 0) return printError('no builds recorded');
  print(buildsTable(list));
}

export function buildsTable(list: readonly BuildSummary[], now = Date.now()): string {
  return renderTable(['ID', 'AGE', 'IMAGE', 'RESULT', 'DIGEST', 'COMMIT', 'DURATION', 'BY'], list.map((b) => [
    b.id,
    timeAgo(b.at, now),
    b.image,
    b.result,
    b.digest ? b.digest.slice(0, 19) : '-',
    b.commit ? `${b.commit.slice(0, 12)}${b.dirty ? '+' : ''}` : '-',
    formatDuration(b.durationMs),
    b.by,
  ]));
}

function buildText(b: BuildRecord): string {
  const lines = [
    `build ${b.id}: ${b.result} (${formatDuration(b.durationMs)}), by ${b.by} ${timeAgo(b.at)} ago`,
    `image:  ${b.digest ? pinImage(b.image, b.digest) : b.image}`,
    `source: ${b.source}${b.ref ? ` at ${b.ref}` : ''}${b.commit ? `, commit ${b.commit}${b.dirty ? ' with uncommitted changes' : ''}` : ''}`,
  ];
  if (b.dockerfile) lines.push(`dockerfile: ${b.dockerfile}`);
  if (b.app) lines.push(`app:    ${b.app}`);
  if (b.error) lines.push(`error:  ${b.error}`);
  lines.push(`log (last ${b.logTail.length} lines):`, ...b.logTail.map((line) => `  ${line}`));
  return lines.join('\n');
}

/**
 * apply --build: builds and pushes the image of every entrypoint with a build section (its
 * context relative to the spec file; entrypoints with the same image and context share one
 * build), and returns the spec to apply with those images pinned to the digests pushed. A failed
 * build stops here: nothing is applied.
 */
export async function buildForApply(text: string, file: string, cmd: Command): Promise<{ body: string; contentType: string }> {
  const opts = options<EngineFlags>(cmd);
  const { parseAppSpecText } = await import('../model/spec.js');
  const spec = parseAppSpecText(text, file === '-' ? '<stdin>' : file);
  const baseDir = file === '-' ? process.cwd() : dirname(resolve(file));
  const builds = new Map<string, { image: string; context: string; dockerfile?: string; args: Record<string, string>; entries: string[] }>();
  for (const [entry, e] of Object.entries(spec.entrypoints)) {
    if (!e.build || !e.image) continue;
    if (isPinned(e.image)) fail(EXIT.usage, `entrypoints.${entry}.image: ${e.image} names a digest; with build it is the tag the image is pushed as`);
    const context = isGitUrl(e.build.context) ? e.build.context : resolve(baseDir, e.build.context);
    const wanted = { image: e.image, context, dockerfile: e.build.dockerfile, args: e.build.args ?? {} };
    const same = builds.get(e.image);
    if (!same) {
      builds.set(e.image, { ...wanted, entries: [entry] });
      continue;
    }
    // One tag cannot name two different builds.
    if (same.context !== context || same.dockerfile !== wanted.dockerfile || canonical(same.args) !== canonical(wanted.args)) {
      fail(EXIT.usage, `entrypoints.${same.entries[0]} and entrypoints.${entry} build ${e.image} differently (context, dockerfile or args): give them different images`);
    }
    same.entries.push(entry);
  }
  if (builds.size === 0) {
    printError('--build: no entrypoint of the spec has a build section; it is applied as it is');
    return { body: text, contentType: 'text/yaml' };
  }
  const auth = await registryLogin(opts, file === '-');
  const pinned = new Map<string, string>();
  for (const b of builds.values()) {
    const outcome = await engineWork(() => runBuild({ source: b.context, dockerfile: b.dockerfile, tag: b.image, buildArgs: b.args, push: true, auth, dockerHost: opts.dockerHost, write: (t) => io.out.write(t) }));
    await report(cmd, outcome, spec.app);
    if (outcome.result === 'failed') fail(EXIT.api, `build of ${b.image} (entrypoints ${b.entries.join(', ')}) failed: ${outcome.error}; nothing was applied`);
    const image = pinImage(b.image, outcome.digest!);
    print(`built and pushed ${image}`);
    for (const entry of b.entries) pinned.set(entry, image);
  }
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(text);
  for (const [entry, image] of pinned) doc.setIn(['entrypoints', entry, 'image'], image);
  return { body: JSON.stringify(doc.toJS()), contentType: 'application/json' };
}

const canonical = (args: Record<string, string>) => JSON.stringify(Object.entries(args).sort(([a], [b]) => a.localeCompare(b)));

/** What went wrong before anything was built, as the CLI's usage (2) and unreachable (4) errors. */
async function engineWork<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof BuildInputError) fail(EXIT.usage, err.message);
    if (err instanceof EngineUnreachableError) fail(EXIT.unreachable, err.message);
    throw err;
  }
}

/** --registry-user with the password on stdin (never in argv, where `ps` shows it). */
async function registryLogin(opts: EngineFlags, stdinTaken: boolean): Promise<RegistryAuth | undefined> {
  if (opts.registryPasswordStdin && !opts.registryUser) fail(EXIT.usage, '--registry-password-stdin needs --registry-user');
  if (!opts.registryUser) return undefined;
  if (!opts.registryPasswordStdin) fail(EXIT.usage, '--registry-user needs the password on stdin: add --registry-password-stdin');
  if (stdinTaken) fail(EXIT.usage, 'the spec (-f -) and the registry password cannot both come from stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!password) fail(EXIT.usage, '--registry-password-stdin: no password on stdin');
  return { username: opts.registryUser, password };
}

/**
 * Records the build on the server. The image is built (and pushed) whatever the server says, so
 * a record that cannot be stored is a warning, not the command's failure.
 */
async function report(cmd: Command, outcome: BuildOutcome, app?: string): Promise<BuildRecord | undefined> {
  const { imageId: _imageId, ...fields } = outcome;
  // Within the server's bounds (api/builds.ts), however long the engine's message.
  const bounded = { ...fields, source: fields.source.slice(0, 2048), ...(fields.error !== undefined ? { error: fields.error.slice(0, 4000) } : {}), ...(app ? { app } : {}) };
  try {
    const { build: record } = await api<{ build: BuildRecord }>(cmd, 'POST', '/v1/builds', bounded);
    return record;
  } catch (err) {
    const problems = err instanceof ApiRequestError ? err.problems.map((p) => ` (${p.path}: ${p.message})`).join('') : '';
    printError(`warning: the build was not recorded on the Gantry server: ${err instanceof Error ? err.message : String(err)}${problems}`);
    return undefined;
  }
}

/** One JSON request of the builds API, with the client's server, token and CA (connect.ts). */
async function api<T>(cmd: Command, method: string, path: string, body?: unknown): Promise<T> {
  const { server, token, ca } = options(cmd);
  const config = loadClientConfig({ server, token, ca });
  const caPem = config.ca === undefined ? undefined : readCertificateFile(config.ca, ca ? '--ca' : 'the CA file').pem;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (config.token) headers.authorization = `Bearer ${config.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const base = config.server.replace(/\/+$/, '');
  let text: string;
  let status: number;
  try {
    const res = await exchange(new URL(base + path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), ca: caPem });
    status = res.status;
    text = await res.text();
  } catch (err) {
    throw unreachableError(base, err);
  }
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (status < 200 || status >= 300) {
    const error = parsed && typeof (parsed as { error?: unknown }).error === 'string' ? (parsed as ApiRequestError['body']) : { error: text.trim() || `HTTP ${status}` };
    throw new ApiRequestError(status, error);
  }
  return parsed as T;
}
