// Team configs: `gantry config set|get|ls|history|diff|rollback|rm`. Declarations only;
// config-actions.ts does the work.
import type { Command } from 'commander';
import { clientCommand, lazy, outputOption, wholeNumber } from './cli-options.js';

type Actions = typeof import('./config-actions.js');
const run = <K extends keyof Actions>(name: K) => lazy(() => import('./config-actions.js'), name);
const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description("a team's configs: versioned files or key-values that apps mount (files: [{ path, config }]) or take as env (envFrom)");
  clientCommand(config, 'set', 'store a new version: a file (--from-file, or stdin) or key-values (--set K=V, --env-file); apps using it roll, or reload in place if they asked')
    .argument('<team/name>', 'e.g. shop/nginx-conf')
    .option('--from-file <file>', 'the content of this file (a file config)')
    .option('--set <key=value>', 'a key-value (repeatable; a key-value config)', collect)
    .option('--env-file <file>', 'KEY=VALUE lines (a key-value config; # comments and blank lines skipped)')
    .option('--note <text>', 'why, kept with the version')
    .option('--app <app>', "only this app of the team may use it ('' lifts it; default: as it was)")
    .option('--env <env>', "only apps in this env may use it ('' lifts it; default: as it was)")
    .action(run('setConfig'));
  clientCommand(config, 'get', 'print a config: its text, or KEY=VALUE lines')
    .argument('<team/name>', 'e.g. shop/nginx-conf')
    .option('--at <version>', 'an earlier version (--version is the CLI\'s own)', wholeNumber('--at', 1))
    .addOption(outputOption())
    .action(run('getConfig'));
  clientCommand(config, 'ls', "a team's configs: kind, version, which apps use them")
    .argument('<team>', 'team name')
    .addOption(outputOption())
    .action(run('listConfigs'));
  clientCommand(config, 'history', 'the kept versions of a config, oldest first')
    .argument('<team/name>', 'e.g. shop/nginx-conf')
    .addOption(outputOption())
    .action(run('configHistory'));
  clientCommand(config, 'diff', 'what changed between two versions (key-values by key, text by line)')
    .argument('<team/name>', 'e.g. shop/nginx-conf')
    .requiredOption('--from <n>', 'the older version', wholeNumber('--from', 1))
    .option('--to <n>', 'the newer version (default: the current one)', wholeNumber('--to', 1))
    .action(run('diffConfig'));
  clientCommand(config, 'rollback', "make an earlier version's content the newest version again")
    .argument('<team/name>', 'e.g. shop/nginx-conf')
    .argument('<version>', 'the version to go back to', wholeNumber('version', 1))
    .action(run('rollbackConfig'));
  clientCommand(config, 'rm', 'remove a config no app uses, with its history')
    .argument('<team/name>', 'e.g. shop/nginx-conf')
    .action(run('removeConfig'));
}
