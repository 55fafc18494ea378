// Team quotas: what a team's apps use against the limits an admin set, and setting them.
// Declarations only; quota-actions.ts does the work.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { clientCommand, lazy, outputOption, wholeNumber } from './cli-options.js';

type Actions = typeof import('./quota-actions.js');
const run = <K extends keyof Actions>(name: K) => lazy(() => import('./quota-actions.js'), name);

function cpuAmount(value: string): number {
  if (!/^\d+(\.\d{1,3})?$/.test(value.trim())) throw new InvalidArgumentError('expected a number of CPUs such as 32 or 0.5 (at most 3 decimals).');
  return Number(value);
}

export function registerQuotaCommands(program: Command): void {
  const quota = clientCommand(program, 'quota', "what teams' apps use against their quotas: yours, or one team's (admins and operators: every team)")
    .argument('[team]', 'only this team')
    .addOption(outputOption())
    .action(run('showQuota'));
  clientCommand(quota, 'set', "set a team's limits for one env, or for all its envs together without --env (admins); replaces that scope's limits: a resource left out is unlimited")
    .argument('<team>', 'team name')
    .option('--env <env>', "the env these limits are for (an app's env:, default if it names none); without it: the team's total over all envs")
    .option('--cpu <cpus>', 'CPUs, as entries ask for them (replicas × resources.cpu), e.g. 32 or 0.5', cpuAmount)
    .option('--memory <size>', 'memory, e.g. 64Gi or 512Mi (replicas × resources.memory)')
    .option('--instances <n>', 'instances (replicas)', wholeNumber('--instances'))
    .action(run('setQuota'));
  clientCommand(quota, 'rm', "clear a team's quota: all of it, or one env's limits, or the total (admins)")
    .argument('<team>', 'team name')
    .addOption(new Option('--env <env>', "only this env's limits").conflicts('total'))
    .option('--total', 'only the limits over all envs')
    .action(run('removeQuota'));
}
