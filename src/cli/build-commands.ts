// gantry build / gantry builds, as commander sees them: names, arguments, options and help only
// (cheap to define at every start); build-actions.ts does the work, imported when one runs. The
// engine and registry flags are shared with `gantry apply --build` (commands.ts).
import { InvalidArgumentError, type Command } from 'commander';
import { clientCommand, lazy, outputOption, wholeNumber } from './cli-options.js';

type BuildActions = typeof import('./build-actions.js');
const actions = (): Promise<BuildActions> => import('./build-actions.js');
const run = <K extends keyof BuildActions>(name: K) => lazy(actions, name);

/** --build-arg K=V, repeatable; a bare K takes its value from the environment, as docker build does. */
function buildArg(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,255}$/.test(key)) throw new InvalidArgumentError(`"${key}" is not a build argument name (letters, digits and "_"; expected NAME=VALUE).`);
  const found = eq < 0 ? process.env[key] : value.slice(eq + 1);
  return found === undefined ? previous : { ...previous, [key]: found };
}

/** The options that say which Docker Engine builds and how the push logs in to the registry. */
export function engineOptions(command: Command): Command {
  return command
    .option('--docker-host <url>', 'the Docker Engine that builds: unix:///path/docker.sock or tcp://host:port (default: $DOCKER_HOST, else the local socket)')
    .option('--registry-user <user>', 'log in to the registry as this user for the push (with --registry-password-stdin; default: the login `docker login` stored in the Docker config)')
    .option('--registry-password-stdin', 'read the registry password from stdin');
}

export function registerBuildCommands(program: Command): void {
  engineOptions(
    clientCommand(program, 'build', 'build an image on your Docker Engine from a directory or a git URL, tag it, and with --push push it (the build is recorded on the server)')
      .argument('<source>', 'the build context: a directory, or a git URL (https://…, git@…, ….git) cloned at --ref')
      .requiredOption('-t, --tag <image>', 'the image reference to tag it as, e.g. registry.example.com/shop/web:v3')
      .option('--ref <ref>', 'git URL: the branch or tag to build (default: the default branch)')
      .option('--dockerfile <path>', 'the Dockerfile, a path inside the context (default: Dockerfile)')
      .option('--build-arg <name=value>', 'a build argument (repeatable)', buildArg)
      .option('--push', 'push the image to its registry and print its digest'),
  )
    .addOption(outputOption())
    .action(run('build'));

  clientCommand(program, 'builds', 'list the recorded image builds, newest first; with an id, one build and the end of its log')
    .argument('[id]', 'a build id (see the list)')
    .option('--app <app>', 'only the builds made for this app (apply --build)')
    .option('--limit <n>', 'at most N builds (default 50, at most 500)', wholeNumber('--limit', 1))
    .addOption(outputOption())
    .action(run('builds'));
}
