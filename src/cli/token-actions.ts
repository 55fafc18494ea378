// Personal tokens (`--mine`: yours, acting as you) and robot tokens (`--team t`: the team's, for
// its CI), both narrowed by a scope and maybe expiring. What `gantry token create|ls|rm` do when
// given --mine or --team.
import type { Command } from 'commander';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, print, renderJson, renderTable } from './output.js';

interface ScopedOptions {
  mine?: boolean;
  team?: string;
  scope?: string;
  expires?: string;
  teamRole?: string;
  output?: string;
}

/** Whether the command is about personal or robot tokens (and whose), or neither. */
export function scopedOwner(cmd: Command): { team?: string } | undefined {
  const { mine, team } = options<ScopedOptions>(cmd);
  if (mine && team !== undefined) fail(EXIT.usage, '--mine and --team: one or the other (your own token, or a team\'s robot token)');
  return mine ? {} : team !== undefined ? { team } : undefined;
}

export async function createScopedToken(name: string, owner: { team?: string }, cmd: Command): Promise<void> {
  const { scope, expires, teamRole, output } = options<ScopedOptions>(cmd);
  if (teamRole !== undefined && owner.team === undefined) fail(EXIT.usage, '--team-role: only a robot token (--team) has a role in a team');
  const body = {
    name,
    ...(scope !== undefined ? { scope: scope.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(expires !== undefined ? { expiresIn: expires } : {}),
    ...(teamRole !== undefined ? { role: teamRole } : {}),
  };
  const created = await clientFor(cmd).createScopedToken(owner.team, body);
  if (output === 'json') return print(renderJson(created));
  const whose = owner.team === undefined ? 'personal token' : `robot token of team ${owner.team} (${created.teamRole})`;
  const until = created.expiresAt ? `, valid until ${new Date(created.expiresAt).toISOString()}` : ', no expiry';
  print(`${whose} "${created.name}", scope ${created.scope.join(', ')}${until} (shown only this once; the server keeps its hash):\n\n    ${created.token}\n`);
  print(`Use it as GANTRY_TOKEN (or Authorization: Bearer) in the script or CI job; revoke it with gantry token rm ${created.name} ${owner.team === undefined ? '--mine' : `--team ${owner.team}`}`);
}

export async function listScopedTokens(owner: { team?: string }, cmd: Command): Promise<void> {
  const { tokens } = await clientFor(cmd).scopedTokens(owner.team);
  if (options(cmd).output === 'json') return print(renderJson(tokens));
  const now = Date.now();
  const rows = tokens.map((t) => [t.name, ...(owner.team === undefined ? [] : [t.teamRole ?? '-']), t.scope.join(','), t.expiresAt === undefined ? '-' : `${formatTime(t.expiresAt, now)}${t.expiresAt <= now ? ' (expired)' : ''}`, formatTime(t.createdAt, now)]);
  print(renderTable(['NAME', ...(owner.team === undefined ? [] : ['ROLE']), 'SCOPE', 'EXPIRES', 'CREATED'], rows));
}

export async function revokeScopedToken(name: string, owner: { team?: string }, cmd: Command): Promise<void> {
  await clientFor(cmd).revokeScopedToken(owner.team, name);
  print(`${owner.team === undefined ? 'personal token' : `robot token of team ${owner.team}`} "${name}" revoked`);
}
