// What the invitation commands do: gantry user invite / invitations / revoke-invite, and
// gantry accept-invite (which saves the session like gantry login). Loaded when one runs.
import type { Command } from 'commander';
import { options } from './cli-options.js';
import { loadClientConfig, saveClientConfig } from './config.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, print, renderJson, renderTable } from './output.js';
import { readSecret } from './secret-input.js';

export async function invite(_opts: unknown, cmd: Command): Promise<void> {
  const { team, role, platformRole, expires } = options<{ team?: string; role?: 'owner' | 'developer' | 'viewer'; platformRole?: 'admin' | 'operator' | 'member'; expires?: string }>(cmd);
  if (role !== undefined && team === undefined) fail(EXIT.usage, '--role is the role in a team: give --team too');
  const client = clientFor(cmd);
  const { invitation, code } = await client.createInvitation({ team, role, platformRole, expiresIn: expires });
  const what = `${invitation.platformRole}${invitation.team ? `, ${invitation.teamRole} of team ${invitation.team}` : ''}`;
  print(`invitation ${invitation.id} (${what}) valid until ${new Date(invitation.expiresAt).toISOString()}; the code works once and is shown only now:`);
  print(code);
  print(`they accept it with: gantry accept-invite ${code} --name <their name> --server ${client.server}`);
}

export async function listInvitations(_opts: unknown, cmd: Command): Promise<void> {
  const { invitations } = await clientFor(cmd).invitations();
  if (options(cmd).output === 'json') return print(renderJson(invitations));
  if (invitations.length === 0) return print('no open invitations (gantry user invite)');
  const now = Date.now();
  print(renderTable(['ID', 'ROLE', 'TEAM', 'CREATED', 'BY', 'EXPIRES'], invitations.map((i) => [i.id, i.platformRole, i.team ? `${i.team} (${i.teamRole})` : '-', formatTime(i.createdAt, now), i.createdBy, new Date(i.expiresAt).toISOString()])));
}

export async function revokeInvitation(id: string, _opts: unknown, cmd: Command): Promise<void> {
  const { revoked } = await clientFor(cmd).revokeInvitation(id);
  print(`invitation ${revoked.id} revoked: its code no longer works`);
}

export async function acceptInvite(code: string, _opts: unknown, cmd: Command): Promise<void> {
  const { name, passwordStdin, server, ca } = options<{ name: string; passwordStdin?: boolean; server?: string; ca?: string }>(cmd);
  const password = await readSecret(passwordStdin ? 'stdin' : `choose a password for ${name}: `);
  if (password === '') fail(EXIT.usage, 'no password given');
  const session = await clientFor(cmd).acceptInvitation(code, name, password);
  const config = loadClientConfig({ server, ca });
  const path = saveClientConfig({ server: config.server, token: session.token, ca: config.ca });
  print(`welcome, ${session.user} (${session.role}): signed in to ${config.server} until ${new Date(session.expiresAt).toISOString()}; the session token is saved in ${path}`);
}
