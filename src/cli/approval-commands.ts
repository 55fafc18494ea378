// gantry approvals / approve / reject, as commander sees them: names, arguments, options and help
// only; approval-actions.ts does the work, imported when one of them runs. `gantry team set`
// (which envs need approval) is with the other team commands in user-commands.ts.
import type { Command } from 'commander';
import { clientCommand, lazy, outputOption } from './cli-options.js';

type ApprovalActions = typeof import('./approval-actions.js');
const run = <K extends keyof ApprovalActions>(name: K) => lazy(() => import('./approval-actions.js'), name);

export function registerApprovalCommands(program: Command): void {
  clientCommand(program, 'approvals', 'changes waiting for an owner\'s approval (of your teams; all for admins), with what each changes')
    .argument('[team]', 'only this team\'s')
    .addOption(outputOption())
    .action(run('listApprovals'));
  clientCommand(program, 'approve', 'apply the change waiting for approval of an app, as a new release (an owner of its team who did not ask for it, or an admin)')
    .argument('<app>', 'app name')
    .action(run('approve'));
  clientCommand(program, 'reject', 'drop the change waiting for approval of an app (its team\'s owners and admins; whoever asked may withdraw it)')
    .argument('<app>', 'app name')
    .option('--reason <text>', 'why, for the events (at most 500 characters)')
    .action(run('reject'));
}
