// The client commands of the `gantry` CLI, as commander sees them: apply, scale, ps, apps, logs,
// stop, start, rm, nodes, endpoints, watch, events, schema. Only their names, arguments, options
// and help live here, so defining them all costs next to nothing at start; what each does is in
// client-actions.ts, imported when it runs. main.ts registers them.
import { Option, type Command } from 'commander';
import { clientCommand, lazy, outputOption, timeoutOption, wholeNumber } from './cli-options.js';

// What this module has always offered other command modules, kept: the option helpers, the
// client of a command, and the two steps of apply that others reuse (loaded when called).
export { handleCliError, fail, CliError, EXIT } from './errors.js';
export { clientCommand, options, outputOption, timeoutOption, wholeNumber } from './cli-options.js';
export { clientFor } from './connect.js';

type ClientActions = typeof import('./client-actions.js');
const actions = (): Promise<ClientActions> => import('./client-actions.js');
const run = <K extends keyof ClientActions>(name: K) => lazy(actions, name);

export async function wait(...args: Parameters<ClientActions['wait']>): Promise<void> {
  return (await actions()).wait(...args);
}

export async function validateSpecText(...args: Parameters<ClientActions['validateSpecText']>): Promise<string> {
  return (await actions()).validateSpecText(...args);
}

export function registerClientCommands(program: Command): void {
  clientCommand(program, 'apply', 'create or update an app from its spec (gantry.yaml), then wait until it runs')
    .requiredOption('-f, --file <file>', 'the app spec, YAML or JSON ("-" for stdin)')
    .option('--build', 'first build and push the images of the entrypoints with a build section (on your Docker Engine), then apply the spec with them pinned to the digests pushed')
    .option('--docker-host <url>', '--build: the Docker Engine that builds, unix:///path/docker.sock or tcp://host:port (default: $DOCKER_HOST, else the local socket)')
    .option('--registry-user <user>', '--build: log in to the registries as this user for the pushes (with --registry-password-stdin; default: the Docker config\'s logins)')
    .option('--registry-password-stdin', '--build: read the registry password from stdin')
    .option('--no-wait', 'do not wait for the app to converge')
    .addOption(timeoutOption())
    .action(run('apply'));

  clientCommand(program, 'scale', 'set the number of replicas of an entrypoint, then wait until it runs')
    .argument('<app>', 'app name')
    .argument('<entry>', 'entrypoint name')
    .argument('<replicas>', 'number of replicas', wholeNumber('replicas'))
    .option('--no-wait', 'do not wait for the app to converge')
    .addOption(timeoutOption())
    .action(run('scale'));

  clientCommand(program, 'ps', 'list instances (of an app)')
    .argument('[app]', 'only the instances of this app')
    .option('--node <node>', 'only the instances on this node')
    .addOption(outputOption())
    .action(run('ps'));

  clientCommand(program, 'apps', 'list apps')
    .addOption(outputOption())
    .action(run('apps'));

  clientCommand(program, 'logs', "print an app's logs (every instance, merged by time) or one instance's")
    .argument('<app|instance>', 'app name, or instance id (see gantry ps)')
    .option('-f, --follow', 'keep printing new lines (an app: joining instances that start meanwhile)')
    .option('--tail <lines>', 'only the last N lines (of each instance)', wholeNumber('--tail'))
    .option('--entry <entry>', "an app: only this entrypoint's instances")
    .option('--since <when>', 'an app: lines written since a duration ago (10m, 2h, 7d) or a time (2026-11-30T20:00:00Z)')
    .option('--grep <regex>', 'an app: only lines matching this regular expression (applied on the nodes)')
    .action(run('logs'));

  clientCommand(program, 'exec', 'a terminal in an instance: a shell, or the command after --, run by its node (interactive on a terminal; otherwise stdin is the input); exits with its exit code')
    .argument('<instance>', 'instance id (see gantry ps)')
    .argument('[command...]', 'what to run instead of sh, after --, e.g. gantry exec web-main-1a2b3c4d -- ls -l')
    .action(lazy(() => import('./exec-actions.js'), 'exec'));

  for (const [action, description] of [['stop', 'stop all instances of an app, keeping them (then wait until they have stopped)'], ['start', 'start a stopped app again (then wait until it runs)']] as const) {
    clientCommand(program, action, description)
      .argument('<app>', 'app name')
      .option('--no-wait', 'do not wait for the app to converge')
      .addOption(timeoutOption())
      .action(run(action));
  }

  clientCommand(program, 'rm', 'remove an app and its instances')
    .argument('<app>', 'app name')
    .option('--no-wait', 'do not wait for the instances to be gone')
    .addOption(timeoutOption())
    .action(run('rm'));

  clientCommand(program, 'nodes', 'list nodes')
    .addOption(outputOption())
    .action(run('nodes'));

  clientCommand(program, 'endpoints', 'list registered endpoints (healthy instances with ports, and outside services)')
    .argument('[app]', 'only this app')
    .option('--env <env>', 'only this environment')
    .option('--entry <entry>', 'only this entrypoint')
    .addOption(outputOption())
    .action(run('endpoints'));

  clientCommand(program, 'watch', 'stream registry (or instance) changes as JSON lines, from a snapshot or a revision')
    .addOption(new Option('--prefix <what>', 'what to follow').choices(['registry', 'instances', 'status', 'apps', 'nodes']).default('registry'))
    .option('--since <revision>', 'resume after this revision (no snapshot)', wholeNumber('--since'))
    .action(run('watch'));

  clientCommand(program, 'events', 'list events; with -f, stream them')
    .option('--app <app>', 'only the events of this app')
    .option('--instance <id>', 'only the events of this instance')
    .option('-f, --follow', 'keep printing new events')
    .option('--since <seq>', 'only events after this sequence number', wholeNumber('--since'))
    .option('--limit <n>', 'at most N events', wholeNumber('--limit', 1))
    .addOption(outputOption())
    .action(run('events'));

  program
    .command('schema')
    .description('print the JSON Schema of the app spec (gantry.yaml)')
    .exitOverride()
    .action(run('schema'));
}
