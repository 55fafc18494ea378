// The client commands of the `gantry` CLI: apply, scale, ps, apps, logs, stop, start, rm, nodes,
// events, schema. They talk to the server through GantryClient; main.ts registers them.
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { appSpecJsonSchema, parseAppSpecText, SpecError } from '../model/spec.js';
import { formatDuration, parseDuration } from '../model/units.js';
import { GantryClient } from './client.js';
import { loadClientConfig, readCertificateFile } from './config.js';
import { EXIT, fail } from './errors.js';
import { io, OUTPUT_FORMATS, print, printError, renderJson, renderTable, timeAgo, type OutputFormat } from './output.js';
import { appsTable, eventsTable, eventStreamHeader, eventStreamLine, instancesTable, nodesTable } from './tables.js';
import { waitForConvergence, waitForRemoval } from './wait.js';

export { handleCliError, fail, CliError, EXIT } from './errors.js';

interface CommonOptions {
  server?: string;
  token?: string;
  output?: OutputFormat;
}

/** A whole number >= min, for commander's option and argument parsers. */
export function wholeNumber(what: string, min = 0): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min) throw new InvalidArgumentError(`${what} must be a whole number${min > 0 ? ` >= ${min}` : ''}.`);
    return Number(value);
  };
}

function durationOption(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as "30s", "2m", "1h".');
  return ms;
}

export function clientCommand(program: Command, nameAndArgs: string, description: string): Command {
  return program
    .command(nameAndArgs)
    .description(description)
    .option('--server <url>', 'Gantry server URL (default: $GANTRY_SERVER, the config file, http://127.0.0.1:7070)')
    .option('--token <token>', 'API token (default: $GANTRY_TOKEN, the config file)')
    .option('--ca <file>', 'PEM CA certificate(s) that verify an https:// server (default: $GANTRY_CA, the config file, the system CAs)')
    .exitOverride();
}

export const outputOption = () => new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table');
export const timeoutOption = () => new Option('--timeout <duration>', 'how long to wait for convergence').argParser(durationOption).default(120_000, '2m');

export function options<T>(cmd: Command): T & CommonOptions {
  return cmd.optsWithGlobals() as T & CommonOptions;
}

export function clientFor(cmd: Command): GantryClient {
  const { server, token, ca } = options<{ ca?: string }>(cmd);
  const config = loadClientConfig({ server, token, ca });
  const caFrom = ca ? '--ca' : process.env.GANTRY_CA ? 'GANTRY_CA' : 'the CA file ("ca" in the config file)';
  return new GantryClient({ ...config, ca: config.ca === undefined ? undefined : readCertificateFile(config.ca, caFrom).pem });
}

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
export function validateSpecText(text: string, source: string): string {
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
  const { tookMs, alreadyConverged } = await waitForConvergence(client, app, { timeoutMs, quietIfConverged });
  print(alreadyConverged && quietIfConverged ? `app ${app} already converged` : `app ${app} converged in ${formatDuration(tookMs)}`);
}

export function registerClientCommands(program: Command): void {
  clientCommand(program, 'apply', 'create or update an app from its spec (gantry.yaml), then wait until it runs')
    .requiredOption('-f, --file <file>', 'the app spec, YAML or JSON ("-" for stdin)')
    .option('--no-wait', 'do not wait for the app to converge')
    .addOption(timeoutOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = options<{ file: string; wait: boolean; timeout: number }>(cmd);
      const source = opts.file === '-' ? '<stdin>' : opts.file;
      const text = await readSpecFile(opts.file);
      const name = validateSpecText(text, source);
      const client = clientFor(cmd);
      const res = await client.apply(text, 'text/yaml');
      const app = res.app.name || name;
      const verb = res.created ? 'created' : res.changed ? 'configured' : 'unchanged';
      print(`app ${app} ${verb} (release ${res.app.release})`);
      // Unchanged is no reason to stop waiting: the last apply may still be rolling out.
      if (opts.wait) await wait(client, app, opts.timeout, { quietIfConverged: !res.changed });
    });

  clientCommand(program, 'scale', 'set the number of replicas of an entrypoint, then wait until it runs')
    .argument('<app>', 'app name')
    .argument('<entry>', 'entrypoint name')
    .argument('<replicas>', 'number of replicas', wholeNumber('replicas'))
    .option('--no-wait', 'do not wait for the app to converge')
    .addOption(timeoutOption())
    .action(async (app: string, entry: string, replicas: number, _opts: unknown, cmd: Command) => {
      const opts = options<{ wait: boolean; timeout: number }>(cmd);
      const client = clientFor(cmd);
      await client.scale(app, entry, replicas);
      print(`app ${app}: ${entry} scaled to ${replicas}`);
      if (opts.wait) await wait(client, app, opts.timeout);
    });

  clientCommand(program, 'ps', 'list instances (of an app)')
    .argument('[app]', 'only the instances of this app')
    .option('--node <node>', 'only the instances on this node')
    .addOption(outputOption())
    .action(async (app: string | undefined, _opts: unknown, cmd: Command) => {
      const opts = options<{ node?: string }>(cmd);
      const { instances, unplaced = [] } = await clientFor(cmd).listInstances({ app, node: opts.node });
      if (opts.output === 'json') return print(renderJson(instances));
      if (instances.length === 0 && unplaced.length === 0) return printError(app ? `no instances of app ${app}` : 'no instances');
      if (instances.length > 0) print(instancesTable(instances));
      for (const u of unplaced) print(`${u.app}/${u.entry}: ${u.count} instance${u.count === 1 ? '' : 's'} not placed: ${u.reason}`);
    });

  clientCommand(program, 'apps', 'list apps')
    .addOption(outputOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const { apps } = await clientFor(cmd).listApps();
      if (options(cmd).output === 'json') return print(renderJson(apps));
      if (apps.length === 0) return printError('no apps');
      print(appsTable(apps));
    });

  clientCommand(program, 'logs', "print an instance's logs")
    .argument('<instance>', 'instance id (see gantry ps)')
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <lines>', 'only the last N lines', wholeNumber('--tail'))
    .action(async (instance: string, _opts: unknown, cmd: Command) => {
      const opts = options<{ follow?: boolean; tail?: number }>(cmd);
      exitOnClosedStdout();
      for await (const line of clientFor(cmd).logs(instance, { tail: opts.tail, follow: opts.follow })) {
        io.out.write(`${line}\n`);
      }
    });

  for (const [action, description] of [['stop', 'stop all instances of an app, keeping them (then wait until they have stopped)'], ['start', 'start a stopped app again (then wait until it runs)']] as const) {
    clientCommand(program, action, description)
      .argument('<app>', 'app name')
      .option('--no-wait', 'do not wait for the app to converge')
      .addOption(timeoutOption())
      .action(async (app: string, _opts: unknown, cmd: Command) => {
        const opts = options<{ wait: boolean; timeout: number }>(cmd);
        const client = clientFor(cmd);
        await (action === 'stop' ? client.stopApp(app) : client.startApp(app));
        print(`app ${app} ${action === 'stop' ? 'stopping' : 'starting'}`);
        if (opts.wait) await wait(client, app, opts.timeout);
      });
  }

  clientCommand(program, 'rm', 'remove an app and its instances')
    .argument('<app>', 'app name')
    .option('--no-wait', 'do not wait for the instances to be gone')
    .addOption(timeoutOption())
    .action(async (app: string, _opts: unknown, cmd: Command) => {
      const opts = options<{ wait: boolean; timeout: number }>(cmd);
      const client = clientFor(cmd);
      await client.removeApp(app);
      print(`app ${app} removed`);
      if (!opts.wait) return;
      const took = await waitForRemoval(client, app, { timeoutMs: opts.timeout });
      if (took > 0) print(`all instances of ${app} are gone (${formatDuration(took)})`);
    });

  clientCommand(program, 'nodes', 'list nodes')
    .addOption(outputOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const { nodes } = await clientFor(cmd).listNodes();
      if (options(cmd).output === 'json') return print(renderJson(nodes));
      if (nodes.length === 0) return printError('no nodes (start an agent: gantry agent, or gantry up)');
      print(nodesTable(nodes));
    });

  clientCommand(program, 'endpoints', 'list registered endpoints (healthy instances with ports, and outside services)')
    .argument('[app]', 'only this app')
    .option('--env <env>', 'only this environment')
    .option('--entry <entry>', 'only this entrypoint')
    .addOption(outputOption())
    .action(async (app: string | undefined, _opts: unknown, cmd: Command) => {
      const opts = options<{ env?: string; entry?: string }>(cmd);
      const { endpoints } = await clientFor(cmd).listEndpoints({ app, env: opts.env, entry: opts.entry });
      if (opts.output === 'json') return print(renderJson(endpoints));
      if (endpoints.length === 0) return printError('no endpoints registered');
      print(renderTable(['app', 'env', 'entry', 'id', 'address', 'ports', 'node', 'age'], endpoints.map((e) => [
        e.app, e.env, e.entry, e.id, e.address, Object.entries(e.ports).map(([name, port]) => `${name}:${port}`).join(','), e.node ?? '(external)', timeAgo(e.registeredAt),
      ])));
    });

  clientCommand(program, 'watch', 'stream registry (or instance) changes as JSON lines, from a snapshot or a revision')
    .addOption(new Option('--prefix <what>', 'what to follow').choices(['registry', 'instances', 'status', 'apps', 'nodes']).default('registry'))
    .option('--since <revision>', 'resume after this revision (no snapshot)', wholeNumber('--since'))
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = options<{ prefix: string; since?: number }>(cmd);
      exitOnClosedStdout();
      for await (const message of clientFor(cmd).watch({ prefix: opts.prefix, since: opts.since, retries: 20 })) print(JSON.stringify(message));
    });

  clientCommand(program, 'events', 'list events; with -f, stream them')
    .option('--app <app>', 'only the events of this app')
    .option('--instance <id>', 'only the events of this instance')
    .option('-f, --follow', 'keep printing new events')
    .option('--since <seq>', 'only events after this sequence number', wholeNumber('--since'))
    .option('--limit <n>', 'at most N events', wholeNumber('--limit', 1))
    .addOption(outputOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = options<{ app?: string; instance?: string; follow?: boolean; since?: number; limit?: number }>(cmd);
      const client = clientFor(cmd);
      const json = opts.output === 'json';
      if (!opts.follow) {
        const { events } = await client.events({ app: opts.app, instance: opts.instance, since: opts.since, limit: opts.limit });
        if (json) return print(renderJson(events));
        if (events.length === 0) return printError('no events');
        return print(eventsTable(events));
      }
      exitOnClosedStdout();
      if (!json) print(eventStreamHeader());
      let count = 0;
      for await (const event of client.followEvents({ app: opts.app, instance: opts.instance, since: opts.since })) {
        print(json ? JSON.stringify(event) : eventStreamLine(event));
        if (opts.limit !== undefined && ++count >= opts.limit) break;
      }
    });

  program
    .command('schema')
    .description('print the JSON Schema of the app spec (gantry.yaml)')
    .exitOverride()
    .action(() => print(renderJson(appSpecJsonSchema())));
}
