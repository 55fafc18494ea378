// What the node, pool, token and capacity commands of node-commands.ts do. Loaded when one of
// them runs.
import type { Command } from 'commander';
import type { TokenInfo } from '../model/api.js';
import { DURATION_PATTERN } from '../model/units.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, print, renderJson, renderTable } from './output.js';
import { createScopedToken, listScopedTokens, revokeScopedToken, scopedOwner } from './token-actions.js';

export async function nodeAction(action: 'cordon' | 'uncordon' | 'drain', name: string, cmd: Command): Promise<void> {
  const { node: view } = await clientFor(cmd).nodeAction(name, action);
  print(`node ${name}: ${view.state}`);
}

export async function dedicate(name: string, app: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const { none } = options<{ none?: boolean }>(cmd);
  if (!app && !none) throw new Error('name the app, or pass --none');
  await clientFor(cmd).dedicate(name, none ? null : app!);
  print(none ? `node ${name} takes every app` : `node ${name} takes only app ${app}`);
}

export async function unassigned(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { unassigned: list } = await clientFor(cmd).unassigned(name);
  if (options(cmd).output === 'json') return print(renderJson(list));
  if (list.length === 0) return print(`node ${name} runs nothing this server does not know`);
  print(renderTable(['INSTANCE', 'APP', 'ENV', 'ENTRY', 'RELEASE', 'ADOPTABLE'], list.map((u) => [u.id, u.app, u.env, u.entry, u.release ?? '-', u.adoptable ? 'yes' : 'no (no record: forget it)'])));
}

export async function adopt(names: string[], _opts: unknown, cmd: Command): Promise<void> {
  const result = await clientFor(cmd).adopt(names);
  print(`adopted ${result.adopted.length} instance(s) on ${result.nodes.join(', ') || 'no node'}${result.createdApps.length ? `; apps made from them: ${result.createdApps.join(', ')}` : ''}`);
  for (const skipped of result.skipped) print(`  skipped ${skipped.id}: ${skipped.reason}`);
}

export async function forget(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { instance } = options<{ instance?: string[] }>(cmd);
  const { forgotten } = await clientFor(cmd).forget(name, instance);
  print(`node ${name} removes ${forgotten.length} instance(s): ${forgotten.join(', ') || '-'}`);
}

export async function setPool(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const { team } = options<{ team?: string }>(cmd);
  await clientFor(cmd).setPool(name, team);
  print(team ? `pool ${name} belongs to team ${team}` : `pool ${name} is open to every team`);
}

export async function createToken(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const owner = scopedOwner(cmd);
  if (owner) return createScopedToken(name, owner, cmd);
  const { role, node, ttl, output } = options<{ role: string; node?: string; ttl?: string; output?: string }>(cmd);
  if (role !== 'agent' && role !== 'admin' && role !== 'join') fail(EXIT.usage, `--role ${role}: expected agent, join or admin`);
  if (node !== undefined && role !== 'agent') fail(EXIT.usage, '--node: only an agent token is bound to a node');
  if (ttl !== undefined && role !== 'join') fail(EXIT.usage, '--ttl: only a join token expires');
  if (ttl !== undefined && !DURATION_PATTERN.test(ttl)) fail(EXIT.usage, `--ttl ${ttl}: expected a duration such as "1h" or "72h"`);
  const client = clientFor(cmd);
  const created = await client.createToken(name, role, { ...(node !== undefined ? { node } : {}), ...(ttl !== undefined ? { ttl } : {}) });
  if (output === 'json') return print(renderJson(created));
  const what = created.node ? ` for node ${created.node}` : created.expiresAt ? `, valid until ${new Date(created.expiresAt).toISOString()}` : '';
  print(`${created.role} token "${created.name}"${what} (shown only this once; the server keeps its hash):\n\n    ${created.token}\n`);
  if (created.role === 'admin') return;
  // The token goes to the agent in a file only its user can read: on the command line, every user sees it in ps.
  const file = '/etc/gantry/agent-token';
  const nodeName = created.node ?? '<node-name>';
  print(created.role === 'agent'
    ? `Start the agent of node ${nodeName} with it. As the agent's user, write it to a file only that user can read, and give the agent the file:`
    : 'New nodes join with it until it expires (each is then given an agent token of its own, kept in its data directory). As the agent\'s user, write it to a file only that user can read, and give the agent the file:');
  print(`\n    (umask 077; mkdir -p ${file.slice(0, file.lastIndexOf('/'))}; cat > ${file})    # paste the token, then Ctrl-D`);
  print(`    gantry agent --server ${client.server} --token-file ${file} --node-name ${nodeName}${client.verifiesWithCa ? ' --ca <the CA file>' : ''}\n`);
}

export async function listTokens(_opts: unknown, cmd: Command): Promise<void> {
  const owner = scopedOwner(cmd);
  if (owner) return listScopedTokens(owner, cmd);
  const { tokens } = await clientFor(cmd).tokens();
  if (options(cmd).output === 'json') return print(renderJson(tokens));
  const now = Date.now();
  const expires = (t: TokenInfo) => (t.expiresAt === undefined ? '-' : `${formatTime(t.expiresAt, now)}${t.expiresAt <= now ? ' (expired)' : ''}`);
  print(renderTable(['NAME', 'ROLE', 'NODE', 'EXPIRES', 'CREATED'], tokens.map((t) => [t.name, t.role, t.node ?? '-', expires(t), formatTime(t.createdAt, now)])));
}

export async function revokeToken(name: string, _opts: unknown, cmd: Command): Promise<void> {
  const owner = scopedOwner(cmd);
  if (owner) return revokeScopedToken(name, owner, cmd);
  const { revoked, closedConnections } = await clientFor(cmd).revokeToken(name);
  print(`${revoked.role} token "${name}" revoked${closedConnections ? `; ${closedConnections} agent connection(s) closed` : ''}`);
}

export async function capacity(app: string, entry: string, _opts: unknown, cmd: Command): Promise<void> {
  const result = await clientFor(cmd).capacity(app, entry);
  if (options(cmd).output === 'json') return print(renderJson(result));
  print(`${result.total} more instance${result.total === 1 ? '' : 's'} of ${app}/${entry} fit${result.blocked ? ` (${result.blocked})` : ''}`);
  if (result.nodes.length > 0) print(renderTable(['node', 'fits'], result.nodes.map((n) => [n.node, n.count])));
}
