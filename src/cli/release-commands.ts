// gantry history / diff / rollback / rollout status|pause|resume / promote / abort / rebuild /
// restart, as commander sees them: names, arguments, options and help only (cheap to define at
// every start); release-actions.ts does the work, imported when one of them runs.
import type { Command } from 'commander';
import { clientCommand, lazy, outputOption, timeoutOption, wholeNumber } from './cli-options.js';

type ReleaseActions = typeof import('./release-actions.js');
const actions = (): Promise<ReleaseActions> => import('./release-actions.js');
const run = <K extends keyof ReleaseActions>(name: K) => lazy(actions, name);

export function registerReleaseCommands(program: Command): void {
  const rollout = program.command('rollout').description('follow and steer the rollout of a new release');
  clientCommand(rollout, 'status', 'where the rollout of an app stands, and why it stopped if it did')
    .argument('<app>', 'app name')
    .addOption(outputOption())
    .action(run('rolloutStatus'));
  const instance = program.command('instance').description('one instance on its own: stop it (it keeps its place; no replacement starts) and start it again');
  for (const [parent, action, description] of [
    [program, 'rebuild', 'replace an instance where it is: same node, ports and volumes, a new container'],
    [program, 'restart', 'restart an instance: the same container again'],
    [instance, 'stop', 'stop an instance and keep it stopped (no replacement starts) until gantry instance start; a stop and start of its app starts it too'],
    [instance, 'start', 'start an instance stopped with gantry instance stop'],
  ] as const) {
    clientCommand(parent, action, description)
      .argument('<instance>', 'instance id')
      .action(async (id: string, _opts: unknown, cmd: Command) => (await actions()).instanceAction(action, id, cmd));
  }

  for (const [parent, action, description] of [
    [rollout, 'pause', 'hold the rollout where it is (nothing started or stopped)'],
    [rollout, 'resume', 'carry on with a paused rollout'],
    [program, 'promote', 'canary: roll the new release out to every instance'],
    [program, 'abort', 'stop the rollout and go back to the previous release'],
  ] as const) {
    clientCommand(parent, action, description)
      .argument('<app>', 'app name')
      .action(async (app: string, _opts: unknown, cmd: Command) => (await actions()).rolloutAction(action, app, cmd));
  }

  clientCommand(program, 'history', 'list the releases of an app, newest last')
    .argument('<app>', 'app name')
    .addOption(outputOption())
    .action(run('history'));

  clientCommand(program, 'diff', 'show what changed between two releases of an app')
    .argument('<app>', 'app name')
    .argument('<from>', 'release', wholeNumber('from', 1))
    .argument('<to>', 'release', wholeNumber('to', 1))
    .addOption(outputOption())
    .action(run('diff'));

  clientCommand(program, 'rollback', 'deploy an earlier release again (default: the one before the current), as a new release')
    .argument('<app>', 'app name')
    .argument('[release]', 'release to go back to', wholeNumber('release', 1))
    .option('--no-wait', 'do not wait for the app to converge')
    .addOption(timeoutOption())
    .action(run('rollback'));
}
