// What the commands of approval-commands.ts (and `gantry team set`) do. Loaded when one runs.
import type { Command } from 'commander';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { print, renderJson, renderTable, timeAgo } from './output.js';
import { changesText } from './release-actions.js';

export async function listApprovals(team: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const { approvals } = await clientFor(cmd).approvals(team);
  if (options(cmd).output === 'json') return print(renderJson(approvals));
  if (approvals.length === 0) return print('no changes wait for approval');
  const now = Date.now();
  for (const a of approvals) {
    const base = a.base.release === 0 ? 'new app' : `on release ${a.base.release}`;
    print(renderTable(['APP', 'ENV', 'TEAM', 'KIND', 'BY', 'ASKED', 'BASE'], [[a.app, a.env, a.teams.join(','), a.kind, a.requestedBy, `${timeAgo(a.requestedAt, now)} ago`, base]]));
    if (a.note) print(`note: ${a.note}`);
    print(`${changesText(a.changes)}\n`);
  }
}

export async function approve(app: string, _opts: unknown, cmd: Command): Promise<void> {
  const { app: record, approval } = await clientFor(cmd).approve(app);
  print(`${app}: release ${record.release} approved (${approval.kind} asked by ${approval.requestedBy}); it rolls out now: gantry rollout status ${app}`);
}

export async function reject(app: string, _opts: unknown, cmd: Command): Promise<void> {
  const { reason } = options<{ reason?: string }>(cmd);
  const { rejected } = await clientFor(cmd).reject(app, reason);
  print(`${app}: the ${rejected.kind} asked by ${rejected.requestedBy} is dropped`);
}

export async function setTeam(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { requireApproval } = options<{ requireApproval?: string }>(cmd);
  if (requireApproval === undefined) fail(EXIT.usage, 'nothing to set: give --require-approval <env,...> ("" for none)');
  const envs = requireApproval.split(',').map((env) => env.trim()).filter(Boolean);
  const answer = await clientFor(cmd).requireApproval(name, envs);
  print(answer.requireApproval.length > 0 ? `team ${name}: new releases in ${answer.requireApproval.join(', ')} wait for an owner's approval` : `team ${name}: no env needs approval`);
}
