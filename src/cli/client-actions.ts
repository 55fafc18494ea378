// What the client commands of commands.ts do: apply, scale, ps, apps, logs, stop, start, rm,
// nodes, endpoints, watch, events, schema. Loaded when one of them runs. The spec schemas (zod
// and yaml, the heaviest imports of the CLI) are loaded only by the two commands that read specs,
// the waits only by the commands that wait.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatDuration } from '../model/units.js';
import type { GantryClient } from './client.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { io, print, printError, renderJson, renderTable, timeAgo } from './output.js';
import { appsTable, eventsTable, eventStreamHeader, eventStreamLine, instancesTable, nodesTable } from './tables.js';

/** Exits quietly when stdout is closed early (e.g. `gantry logs x | head`). */
function exitOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
}

async function readSpecFile(file: string): Promise<string> {
  try {
    if (file !== '-') return await readFile(file, 'utf8');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    return fail(EXIT.usage, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Validates the spec locally; on problems prints `file: path: message` lines and exits 2. */
export async function validateSpecText(text: string, source: string): Promise<string> {
  const { parseAppSpecText, SpecError } = await import('../model/spec.js');
  try {
    return parseAppSpecText(text, source).app;
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    for (const p of err.problems) printError(`${source}: ${p.path || '(root)'}: ${p.message}`);
    return fail(EXIT.usage, '');
  }
}

/** Waits for the app to converge (riding out a server restart; see wait.ts) and says when it did. */
export async function wait(client: GantryClient, app: string, timeoutMs: number, { quietIfConverged = false } = {}): Promise<void> {
  const { waitForConvergence } = await import('./wait.js');
  const { tookMs, alreadyConverged } = await waitForConvergence(client, app, { timeoutMs, quietIfConverged });
  print(alreadyConverged && quietIfConverged ? `app ${app} already converged` : `app ${app} converged in ${formatDuration(tookMs)}`);
}

export async function apply(_opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ file: string; wait: boolean; timeout: number; build?: boolean }>(cmd);
  const source = opts.file === '-' ? '<stdin>' : opts.file;
  const text = await readSpecFile(opts.file);
  const name = await validateSpecText(text, source);
  const client = clientFor(cmd);
  // --build: the spec as applied names the images just built and pushed, by digest (build-actions.ts).
  const applied = opts.build ? await (await import('./build-actions.js')).buildForApply(text, opts.file, cmd) : { body: text, contentType: 'text/yaml' };
  const res = await client.apply(applied.body, applied.contentType);
  // A change its team must approve first: said, and nothing to wait for (a person decides, maybe days later).
  if ('approval' in res) return print(res.message);
  const app = res.app.name || name;
  const verb = res.created ? 'created' : res.changed ? 'configured' : 'unchanged';
  print(`app ${app} ${verb} (release ${res.app.release})`);
  for (const { path, image, reason } of res.unpinned ?? []) printError(`warning: ${path}: ${image} is not pinned to a digest (${reason}); each node runs what the tag names when it pulls`);
  // Unchanged is no reason to stop waiting: the last apply may still be rolling out.
  if (opts.wait) await wait(client, app, opts.timeout, { quietIfConverged: !res.changed });
}

export async function scale(app: string, entry: string, replicas: number, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ wait: boolean; timeout: number }>(cmd);
  const client = clientFor(cmd);
  await client.scale(app, entry, replicas);
  print(`app ${app}: ${entry} scaled to ${replicas}`);
  if (opts.wait) await wait(client, app, opts.timeout);
}

export async function ps(app: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ node?: string }>(cmd);
  const { instances, unplaced = [] } = await clientFor(cmd).listInstances({ app, node: opts.node });
  if (opts.output === 'json') return print(renderJson(instances));
  if (instances.length === 0 && unplaced.length === 0) return printError(app ? `no instances of app ${app}` : 'no instances');
  if (instances.length > 0) print(instancesTable(instances));
  for (const u of unplaced) print(`${u.app}/${u.entry}: ${u.count} instance${u.count === 1 ? '' : 's'} not placed: ${u.reason}`);
}

export async function apps(_opts: unknown, cmd: Command): Promise<void> {
  const { apps: list } = await clientFor(cmd).listApps();
  if (options(cmd).output === 'json') return print(renderJson(list));
  if (list.length === 0) return printError('no apps');
  print(appsTable(list));
}

/** `{app}-{entry}-{8 hex}`: how the replica controller names instances. */
const INSTANCE_NAMED = /^[a-z0-9-]+-[a-z0-9-]+-[0-9a-f]{8}$/;

/**
 * `gantry logs <app|instance>`: an instance id (or an app named like one) reads that instance as
 * before; any other name, or any of --entry/--since/--grep, reads the app's merged logs.
 */
export async function logs(target: string, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ follow?: boolean; tail?: number; entry?: string; since?: string; grep?: string }>(cmd);
  exitOnClosedStdout();
  const client = clientFor(cmd);
  const appOnly = opts.entry !== undefined || opts.since !== undefined || opts.grep !== undefined;
  const lines = INSTANCE_NAMED.test(target) && !appOnly
    ? client.logs(target, { tail: opts.tail, follow: opts.follow })
    : client.appLogs(target, { tail: opts.tail, follow: opts.follow, entry: opts.entry, since: opts.since, grep: opts.grep });
  for await (const line of lines) io.out.write(`${line}\n`);
}

async function stopOrStart(action: 'stop' | 'start', app: string, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ wait: boolean; timeout: number }>(cmd);
  const client = clientFor(cmd);
  await (action === 'stop' ? client.stopApp(app) : client.startApp(app));
  print(`app ${app} ${action === 'stop' ? 'stopping' : 'starting'}`);
  if (opts.wait) await wait(client, app, opts.timeout);
}

export const stop = (app: string, opts: unknown, cmd: Command) => stopOrStart('stop', app, opts, cmd);
export const start = (app: string, opts: unknown, cmd: Command) => stopOrStart('start', app, opts, cmd);

export async function rm(app: string, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ wait: boolean; timeout: number }>(cmd);
  const client = clientFor(cmd);
  await client.removeApp(app);
  print(`app ${app} removed`);
  if (!opts.wait) return;
  const { waitForRemoval } = await import('./wait.js');
  const took = await waitForRemoval(client, app, { timeoutMs: opts.timeout });
  if (took > 0) print(`all instances of ${app} are gone (${formatDuration(took)})`);
}

export async function nodes(_opts: unknown, cmd: Command): Promise<void> {
  const { nodes: list } = await clientFor(cmd).listNodes();
  if (options(cmd).output === 'json') return print(renderJson(list));
  if (list.length === 0) return printError('no nodes (start an agent: gantry agent, or gantry up)');
  print(nodesTable(list));
}

export async function endpoints(app: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ env?: string; entry?: string }>(cmd);
  const { endpoints: list } = await clientFor(cmd).listEndpoints({ app, env: opts.env, entry: opts.entry });
  if (opts.output === 'json') return print(renderJson(list));
  if (list.length === 0) return printError('no endpoints registered');
  print(renderTable(['app', 'env', 'entry', 'id', 'address', 'ports', 'node', 'age'], list.map((e) => [
    e.app, e.env, e.entry, e.id, e.address, Object.entries(e.ports).map(([name, port]) => `${name}:${port}`).join(','), e.node ?? '(external)', timeAgo(e.registeredAt),
  ])));
}

export async function watch(_opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ prefix: string; since?: number }>(cmd);
  exitOnClosedStdout();
  for await (const message of clientFor(cmd).watch({ prefix: opts.prefix, since: opts.since, retries: 20 })) print(JSON.stringify(message));
}

export async function events(_opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ app?: string; instance?: string; follow?: boolean; since?: number; limit?: number }>(cmd);
  const client = clientFor(cmd);
  const json = opts.output === 'json';
  if (!opts.follow) {
    const { events: list } = await client.events({ app: opts.app, instance: opts.instance, since: opts.since, limit: opts.limit });
    if (json) return print(renderJson(list));
    if (list.length === 0) return printError('no events');
    return print(eventsTable(list));
  }
  exitOnClosedStdout();
  if (!json) print(eventStreamHeader());
  let count = 0;
  for await (const event of client.followEvents({ app: opts.app, instance: opts.instance, since: opts.since })) {
    print(json ? JSON.stringify(event) : eventStreamLine(event));
    if (opts.limit !== undefined && ++count >= opts.limit) break;
  }
}

export async function schema(): Promise<void> {
  const { appSpecJsonSchema } = await import('../model/spec.js');
  print(renderJson(appSpecJsonSchema()));
}
