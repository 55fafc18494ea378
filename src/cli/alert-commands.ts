// gantry alerts and gantry alert silence / silences / unsilence, as commander sees them;
// alert-actions.ts does the work, imported when it runs.
import type { Command } from 'commander';
import { clientCommand, lazy, outputOption } from './cli-options.js';

type Actions = typeof import('./alert-actions.js');
const run = <K extends keyof Actions>(name: K) => lazy(() => import('./alert-actions.js'), name);

export function registerAlertCommands(program: Command): void {
  clientCommand(program, 'alerts', 'pending, firing and lately resolved alerts you may see (rules: an app spec\'s alerts:, the server\'s --alert-rules)')
    .option('--app <app>', "only this app's alerts")
    .option('--node <name>', "only this node's alerts")
    .addOption(outputOption())
    .action(run('listAlerts'));
  const alert = program.command('alert').description('silence alerts for a while');
  clientCommand(alert, 'silence', 'send nothing for the alerts every matcher matches (they still change state), e.g. gantry alert silence app=shop rule=restarts --for 2h')
    .argument('<matchers...>', 'label=value: rule, app, entry, node or severity')
    .requiredOption('--for <duration>', 'how long, e.g. 30m, 2h or 1d (at most 30d)')
    .option('--comment <text>', 'why, for whoever reads gantry alert silences')
    .addOption(outputOption())
    .action(run('silenceAlerts'));
  clientCommand(alert, 'silences', 'silences in force you may see')
    .addOption(outputOption())
    .action(run('listSilences'));
  clientCommand(alert, 'unsilence', 'end a silence')
    .argument('<id>', 'its id, from gantry alert silences')
    .action(run('unsilence'));
}
