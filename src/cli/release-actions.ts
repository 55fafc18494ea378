// What the release commands of release-commands.ts do (history, diff, rollback, rollout, promote,
// abort, rebuild, restart), and how they print a rollout and a diff. Loaded when one of them runs.
import type { Command } from 'commander';
import type { Change } from '../model/diff.js';
import type { InstanceAction } from '../model/api.js';
import { options } from './cli-options.js';
import { wait } from './client-actions.js';
import type { RolloutStatus } from './client.js';
import { clientFor } from './connect.js';
import { formatTime, print, renderJson, renderTable, timeAgo } from './output.js';

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
  for (const [entry, { prepull }] of Object.entries(rollout.entries)) {
    if (!prepull) continue;
    const nodes = Object.entries(prepull.nodes);
    const by = (state: string) => nodes.filter(([, n]) => n.state === state).map(([name, n]) => (n.reason ? `${name} (${n.reason})` : name));
    const [done, failed, pending] = [by('done'), by('failed'), by('pending')];
    const how = prepull.concludedAt === undefined ? 'pulling' : 'pulled';
    lines.push(`pre-pull of ${entry} (${prepull.images.join(', ')}): ${how}; ${done.length}/${nodes.length} node(s) done${failed.length > 0 ? `; failed: ${failed.join(', ')}` : ''}${pending.length > 0 ? `; ${prepull.concludedAt === undefined ? 'waiting for' : 'no answer from'}: ${pending.join(', ')}` : ''}`);
  }
  lines.push('steps:', ...rollout.steps.slice(-10).map((s) => `  ${formatTime(s.time, now)}  ${s.message}`));
  return lines.join('\n');
}

export async function rolloutStatus(app: string, _opts: unknown, cmd: Command): Promise<void> {
  const status = await clientFor(cmd).rolloutStatus(app);
  print(options(cmd).output === 'json' ? renderJson(status) : rolloutText(status));
}

export async function instanceAction(action: InstanceAction, id: string, cmd: Command): Promise<void> {
  await clientFor(cmd).instanceAction(id, action);
  print(`${action} of ${id} requested; gantry events --instance ${id} follows it`);
}

export async function rolloutAction(action: 'pause' | 'resume' | 'promote' | 'abort', app: string, cmd: Command): Promise<void> {
  const { rollout: record } = await clientFor(cmd).rolloutAction(app, action);
  print(`rollout of ${app} to release ${record.to}: ${record.phase}`);
}

export async function history(app: string, _opts: unknown, cmd: Command): Promise<void> {
  const { releases } = await clientFor(cmd).releases(app);
  if (options(cmd).output === 'json') return print(renderJson(releases));
  print(renderTable(['release', 'age', 'by', 'note', 'changes'], releases.map((r) => [
    r.release, timeAgo(r.createdAt), r.approvedBy ? `${r.createdBy}, approved by ${r.approvedBy}` : r.createdBy, r.note ?? '', r.release === 1 ? 'created' : r.changes.map((c) => c.path).join(', ').slice(0, 80),
  ])));
}

export async function diff(app: string, from: number, to: number, _opts: unknown, cmd: Command): Promise<void> {
  const { changes } = await clientFor(cmd).diff(app, from, to);
  print(options(cmd).output === 'json' ? renderJson(changes) : changesText(changes));
}

export async function rollback(app: string, release: number | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ wait: boolean; timeout: number }>(cmd);
  const client = clientFor(cmd);
  const result = await client.rollback(app, release);
  if ('approval' in result) return print(result.message);
  print(`app ${app}: release ${result.release} rolls release ${result.from} back to release ${result.to}`);
  if (opts.wait) await wait(client, app, opts.timeout);
}
