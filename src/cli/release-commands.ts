// gantry history / diff / rollback.
import type { Command } from 'commander';
import type { Change } from '../model/diff.js';
import { clientCommand, clientFor, options, outputOption, timeoutOption, wait, wholeNumber } from './commands.js';
import { formatTime, print, renderJson, renderTable, timeAgo } from './output.js';
import type { RolloutStatus } from './client.js';

function value(v: unknown): string {
  return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
}

export function changesText(changes: Change[]): string {
  if (changes.length === 0) return 'no changes';
  return changes
    .map((c) => (c.kind === 'added' ? `+ ${c.path}: ${value(c.to)}` : c.kind === 'removed' ? `- ${c.path}: ${value(c.from)}` : `~ ${c.path}: ${value(c.from)} → ${value(c.to)}`))
    .join('\n');
}

export function rolloutText(status: RolloutStatus, now = Date.now()): string {
  const { rollout, entries } = status;
  if (!rollout) return 'no rollout yet: the app has only ever had one release';
  const lines = [`release ${rollout.from} → ${rollout.to}: ${rollout.phase} (started ${timeAgo(rollout.startedAt, now)} ago by ${rollout.by})`];
  if (rollout.reason) lines.push(`reason: ${rollout.reason}`);
  lines.push(renderTable(['entry', 'strategy', 'replicas', 'updated', 'healthy', 'old'], entries.map((e) => [e.entry, e.strategy, e.replicas, e.updated, e.healthy, e.old])));
  lines.push('steps:', ...rollout.steps.slice(-10).map((s) => `  ${formatTime(s.time, now)}  ${s.message}`));
  return lines.join('\n');
}

export function registerReleaseCommands(program: Command): void {
  const rollout = program.command('rollout').description('follow and steer the rollout of a new release');
  clientCommand(rollout, 'status', 'where the rollout of an app stands, and why it stopped if it did')
    .argument('<app>', 'app name')
    .addOption(outputOption())
    .action(async (app: string, _opts: unknown, cmd: Command) => {
      const status = await clientFor(cmd).rolloutStatus(app);
      print(options(cmd).output === 'json' ? renderJson(status) : rolloutText(status));
    });
  for (const [action, description] of [
    ['rebuild', 'replace an instance where it is: same node, ports and volumes, a new container'],
    ['restart', 'restart an instance: the same container again'],
  ] as const) {
    clientCommand(program, action, description)
      .argument('<instance>', 'instance id')
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        await clientFor(cmd).instanceAction(id, action);
        print(`${action} of ${id} requested; gantry events --instance ${id} follows it`);
      });
  }

  for (const [parent, action, description] of [
    [rollout, 'pause', 'hold the rollout where it is (nothing started or stopped)'],
    [rollout, 'resume', 'carry on with a paused rollout'],
    [program, 'promote', 'canary: roll the new release out to every instance'],
    [program, 'abort', 'stop the rollout and go back to the previous release'],
  ] as const) {
    clientCommand(parent, action, description)
      .argument('<app>', 'app name')
      .action(async (app: string, _opts: unknown, cmd: Command) => {
        const { rollout: record } = await clientFor(cmd).rolloutAction(app, action);
        print(`rollout of ${app} to release ${record.to}: ${record.phase}`);
      });
  }

  clientCommand(program, 'history', 'list the releases of an app, newest last')
    .argument('<app>', 'app name')
    .addOption(outputOption())
    .action(async (app: string, _opts: unknown, cmd: Command) => {
      const { releases } = await clientFor(cmd).releases(app);
      if (options(cmd).output === 'json') return print(renderJson(releases));
      print(renderTable(['release', 'age', 'by', 'note', 'changes'], releases.map((r) => [
        r.release, timeAgo(r.createdAt), r.createdBy, r.note ?? '', r.release === 1 ? 'created' : r.changes.map((c) => c.path).join(', ').slice(0, 80),
      ])));
    });

  clientCommand(program, 'diff', 'show what changed between two releases of an app')
    .argument('<app>', 'app name')
    .argument('<from>', 'release', wholeNumber('from', 1))
    .argument('<to>', 'release', wholeNumber('to', 1))
    .addOption(outputOption())
    .action(async (app: string, from: number, to: number, _opts: unknown, cmd: Command) => {
      const { changes } = await clientFor(cmd).diff(app, from, to);
      print(options(cmd).output === 'json' ? renderJson(changes) : changesText(changes));
    });

  clientCommand(program, 'rollback', 'deploy an earlier release again (default: the one before the current), as a new release')
    .argument('<app>', 'app name')
    .argument('[release]', 'release to go back to', wholeNumber('release', 1))
    .option('--no-wait', 'do not wait for the app to converge')
    .addOption(timeoutOption())
    .action(async (app: string, release: number | undefined, _opts: unknown, cmd: Command) => {
      const opts = options<{ wait: boolean; timeout: number }>(cmd);
      const client = clientFor(cmd);
      const result = await client.rollback(app, release);
      print(`app ${app}: release ${result.release} rolls release ${result.from} back to release ${result.to}`);
      if (opts.wait) await wait(client, app, opts.timeout);
    });
}
