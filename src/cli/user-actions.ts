// What the commands of user-commands.ts do. Loaded when one of them runs.
import type { Command } from 'commander';
import { options } from './cli-options.js';
import { configPath, loadClientConfig, readConfigFile, saveClientConfig } from './config.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, print, renderJson, renderTable } from './output.js';
import { readSecret } from './secret-input.js';

export async function login(_opts: unknown, cmd: Command): Promise<void> {
  const { user, passwordStdin, ttl, server, ca } = options<{ user: string; passwordStdin?: boolean; ttl?: string; server?: string; ca?: string }>(cmd);
  const password = await readSecret(passwordStdin ? 'stdin' : `password for ${user}: `);
  if (password === '') fail(EXIT.usage, 'no password given');
  const session = await clientFor(cmd).login(user, password, ttl);
  const config = loadClientConfig({ server, ca });
  const path = saveClientConfig({ server: config.server, token: session.token, ca: config.ca });
  print(`signed in to ${config.server} as ${session.user} (${session.role}) until ${new Date(session.expiresAt).toISOString()}; the session token is saved in ${path}`);
}

export async function logout(_opts: unknown, cmd: Command): Promise<void> {
  const client = clientFor(cmd);
  await client.logout();
  // The saved token is now worthless: keep the server, drop the token.
  const path = configPath();
  const saved = readConfigFile(path);
  const used = loadClientConfig(options(cmd));
  if (saved.token !== undefined && saved.token === used.token) saveClientConfig({ server: saved.server ?? used.server, ca: saved.ca });
  print(`signed out of ${client.server}`);
}

export async function whoami(_opts: unknown, cmd: Command): Promise<void> {
  const me = await clientFor(cmd).whoami();
  print(me.user ? `${me.user} (${me.role}, signed in)` : `token "${me.name}" (${me.role})`);
}

export async function createUser(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { role, passwordStdin } = options<{ role: 'admin' | 'operator' | 'member'; passwordStdin?: boolean }>(cmd);
  const password = await readSecret(passwordStdin ? 'stdin' : `password for new user ${name}: `);
  const { user } = await clientFor(cmd).createUser(name, password, role);
  print(`user ${user.name} (${user.role}) created; they sign in with gantry login -u ${user.name}`);
}

export async function setPassword(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { passwordStdin } = options<{ passwordStdin?: boolean }>(cmd);
  const password = await readSecret(passwordStdin ? 'stdin' : `new password for ${name}: `);
  await clientFor(cmd).updateUser(name, { password });
  print(`password of ${name} changed; their sessions have ended`);
}

export async function listUsers(_opts: unknown, cmd: Command): Promise<void> {
  const { users } = await clientFor(cmd).users();
  if (options(cmd).output === 'json') return print(renderJson(users));
  if (users.length === 0) return print('no users yet (gantry user create <name>)');
  const now = Date.now();
  print(renderTable(['NAME', 'ROLE', 'SOURCE', 'CREATED', 'BY'], users.map((u) => [u.name, u.role, u.source ?? 'local', formatTime(u.createdAt, now), u.createdBy])));
}

export async function removeUser(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { removed } = await clientFor(cmd).removeUser(name);
  print(`user ${removed} removed; their sessions have ended`);
}

export async function canI(verb: string, resource: string, _opts: unknown, cmd: Command): Promise<void> {
  const { as } = options<{ as?: string }>(cmd);
  const answer = await clientFor(cmd).canI(verb, resource, as);
  print(answer.allowed ? 'yes' : `no: ${answer.why ?? 'not allowed'}`);
  if (!answer.allowed) process.exitCode = EXIT.api;
}

export async function createTeam(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { owner } = options<{ owner?: string }>(cmd);
  const { team } = await clientFor(cmd).createTeam(name, owner);
  print(`team ${team.name} created${owner ? ` with owner ${owner}` : ''}; apps join it with team: ${team.name} in their spec`);
}

export async function listTeams(_opts: unknown, cmd: Command): Promise<void> {
  const { teams } = await clientFor(cmd).teams();
  if (options(cmd).output === 'json') return print(renderJson(teams));
  if (teams.length === 0) return print('no teams (gantry team create <name>)');
  print(renderTable(['NAME', 'MEMBERS', 'OWNERS'], teams.map((t) => [t.name, Object.keys(t.members).length, Object.entries(t.members).filter(([, role]) => role === 'owner').map(([user]) => user).join(', ') || '-'])));
}

export async function showTeam(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { team } = await clientFor(cmd).team(name);
  if (options(cmd).output === 'json') return print(renderJson(team));
  print(`team ${team.name}`);
  if (team.requireApproval?.length) print(`approval required for: ${team.requireApproval.join(', ')} (gantry approvals ${team.name})`);
  print(renderTable(['USER', 'ROLE'], Object.entries(team.members).sort(([a], [b]) => a.localeCompare(b))));
}

export async function addMember(name: string, user: string, _opts: unknown, cmd: Command): Promise<void> {
  const { role } = options<{ role: 'owner' | 'developer' | 'viewer' }>(cmd);
  await clientFor(cmd).setMember(name, user, role);
  print(`${user} is ${role} of team ${name}`);
}

export async function removeMember(name: string, user: string, _opts: unknown, cmd: Command): Promise<void> {
  await clientFor(cmd).removeMember(name, user);
  print(`${user} is no longer in team ${name}`);
}

export async function removeTeam(name: string, _opts: unknown, cmd: Command): Promise<void> {
  await clientFor(cmd).removeTeam(name);
  print(`team ${name} removed`);
}

export async function audit(_opts: unknown, cmd: Command): Promise<void> {
  const { user, team, since, limit } = options<{ user?: string; team?: string; since?: string; limit: string }>(cmd);
  // jsonl is this command's own format, beyond the common table and json.
  const format = String(cmd.opts().output);
  const { entries } = await clientFor(cmd).audit({ user, team, since, limit });
  if (format === 'json') return print(renderJson(entries));
  if (format === 'jsonl') return print(entries.map((e) => JSON.stringify(e)).join('\n'));
  if (entries.length === 0) return print('no audit entries match');
  const now = Date.now();
  print(renderTable(['TIME', 'WHO', 'TEAM', 'REQUEST', 'TARGET', 'OUTCOME', 'FROM', 'WHAT'], entries.map((e) => [
    formatTime(e.time, now), e.who, e.team ?? '-', `${e.method} ${e.route}`, Object.entries(e.target).map(([k, v]) => `${k}=${v}`).join(' ') || '-', `${e.outcome} ${e.status}`, e.from, e.summary ?? '',
  ])));
}
