// The image commands: registry credentials (`gantry registry login|logout|ls`) and warming nodes
// ahead of a rollout (`gantry image prepull`). Declarations only; image-actions.ts does the work.
import type { Command } from 'commander';
import { clientCommand, lazy, outputOption } from './cli-options.js';

type Actions = typeof import('./image-actions.js');
const run = <K extends keyof Actions>(name: K) => lazy(() => import('./image-actions.js'), name);

export function registerImageCommands(program: Command): void {
  const registry = program.command('registry').description('credentials for private image registries (stored encrypted by the server, handed to the agents that pull)');
  clientCommand(registry, 'login', 'store the credentials Gantry pulls from a registry with')
    .argument('<host>', 'registry host[:port], e.g. registry.example.com or 10.0.0.5:5000')
    .requiredOption('-u, --username <name>', 'user name')
    .option('--password-stdin', 'read the password from stdin (else it is asked for on the terminal)')
    .action(run('registryLogin'));
  clientCommand(registry, 'logout', 'remove the stored credentials of a registry')
    .argument('<host>', 'registry host[:port]')
    .action(run('registryLogout'));
  clientCommand(registry, 'ls', 'list registries with stored credentials (never the passwords)')
    .addOption(outputOption())
    .action(run('listRegistries'));

  const image = program.command('image').description('images on the nodes');
  clientCommand(image, 'prepull', "pull an app's images now on every ready node its entries may run on (before a big day); rollouts pre-pull by themselves")
    .argument('<app>', 'app name')
    .option('--timeout <duration>', 'how long to wait for the nodes, e.g. 10m (at most 1h)', '10m')
    .addOption(outputOption())
    .action(run('prepullImages'));
}
