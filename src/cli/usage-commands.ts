// gantry top, as commander sees it; usage-actions.ts does the work, imported when it runs.
import type { Command } from 'commander';
import { clientCommand, lazy, outputOption } from './cli-options.js';

const actions = () => import('./usage-actions.js');

export function registerUsageCommands(program: Command): void {
  clientCommand(program, 'top', 'what instances really use (CPU, memory, throttling, network) against their requests and limits, per instance and app')
    .argument('[app]', 'only this app')
    .option('--node <name>', "only this node's instances")
    .addOption(outputOption())
    .action(lazy(actions, 'top'));
}
