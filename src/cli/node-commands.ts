// gantry node cordon|uncordon|drain|dedicate, gantry pool set, gantry capacity, gantry token.
import type { Command } from 'commander';
import { clientCommand, clientFor, options, outputOption } from './commands.js';
import { formatTime, print, renderJson, renderTable } from './output.js';
import { EXIT, fail } from './errors.js';
import { DURATION_PATTERN } from '../model/units.js';
import type { TokenInfo } from '../model/api.js';

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('operate on one node');
  for (const [action, description] of [
    ['cordon', 'take no new instances on a node (those running stay)'],
    ['uncordon', 'let a cordoned or drained node take instances again'],
    ['drain', 'take no new instances and move the running ones elsewhere (each replaced before it goes)'],
  ] as const) {
    clientCommand(node, action, description)
      .argument('<name>', 'node name')
      .action(async (name: string, _opts: unknown, cmd: Command) => {
        const { node: view } = await clientFor(cmd).nodeAction(name, action);
        print(`node ${name}: ${view.state}`);
      });
  }
  clientCommand(node, 'dedicate', 'let a node take instances of one app only (promotion days); --none to undo')
    .argument('<name>', 'node name')
    .argument('[app]', 'the app')
    .option('--none', 'open the node to every app again')
    .action(async (name: string, app: string | undefined, _opts: unknown, cmd: Command) => {
      const { none } = options<{ none?: boolean }>(cmd);
      if (!app && !none) throw new Error('name the app, or pass --none');
      await clientFor(cmd).dedicate(name, none ? null : app!);
      print(none ? `node ${name} takes every app` : `node ${name} takes only app ${app}`);
    });

  clientCommand(node, 'unassigned', 'instances a node runs that the server does not know (its store was emptied or replaced)')
    .argument('<name>', 'node name')
    .addOption(outputOption())
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { unassigned } = await clientFor(cmd).unassigned(name);
      if (options(cmd).output === 'json') return print(renderJson(unassigned));
      if (unassigned.length === 0) return print(`node ${name} runs nothing this server does not know`);
      print(renderTable(['INSTANCE', 'APP', 'ENV', 'ENTRY', 'RELEASE', 'ADOPTABLE'], unassigned.map((u) => [u.id, u.app, u.env, u.entry, u.release ?? '-', u.adoptable ? 'yes' : 'no (no record: forget it)'])));
    });
  clientCommand(node, 'adopt', 'take over, as they run, the instances nodes run that the server does not know (apps missing from the store are made from them)')
    .argument('[names...]', 'nodes (default: every node that reports such instances)')
    .action(async (names: string[], _opts: unknown, cmd: Command) => {
      const result = await clientFor(cmd).adopt(names);
      print(`adopted ${result.adopted.length} instance(s) on ${result.nodes.join(', ') || 'no node'}${result.createdApps.length ? `; apps made from them: ${result.createdApps.join(', ')}` : ''}`);
      for (const skipped of result.skipped) print(`  skipped ${skipped.id}: ${skipped.reason}`);
    });
  clientCommand(node, 'forget', 'have a node remove the instances it runs that the server does not know')
    .argument('<name>', 'node name')
    .option('--instance <id>', 'only this instance (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { instance } = options<{ instance?: string[] }>(cmd);
      const { forgotten } = await clientFor(cmd).forget(name, instance);
      print(`node ${name} removes ${forgotten.length} instance(s): ${forgotten.join(', ') || '-'}`);
    });

  const pool = program.command('pool').description('node pools');
  clientCommand(pool, 'set', 'create or change a pool; with --team only that team\'s apps may use it')
    .argument('<name>', 'pool name')
    .option('--team <team>', 'the owning team')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { team } = options<{ team?: string }>(cmd);
      await clientFor(cmd).setPool(name, team);
      print(team ? `pool ${name} belongs to team ${team}` : `pool ${name} is open to every team`);
    });

  const token = program.command('token').description('API tokens: agent tokens for nodes, admin tokens for people and scripts');
  clientCommand(token, 'create', 'create a token and print it (shown only this once)')
    .argument('<name>', 'a name to know it by (e.g. the node it is for)')
    .option('--role <role>', 'agent (connects the agent of one node, and nothing else), join (lets a new node join once, within --ttl) or admin', 'agent')
    .option('--node <node>', 'agent: the node the token speaks for (default: the token\'s name)')
    .option('--ttl <duration>', 'join: how long the token may be used, e.g. 24h (default 24h, at most 30 days)')
    .addOption(outputOption())
    .action(async (name: string, _opts: unknown, cmd: Command) => {
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
    });
  clientCommand(token, 'ls', 'list tokens (names and roles; never the tokens)')
    .addOption(outputOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const { tokens } = await clientFor(cmd).tokens();
      if (options(cmd).output === 'json') return print(renderJson(tokens));
      const now = Date.now();
      const expires = (t: TokenInfo) => (t.expiresAt === undefined ? '-' : `${formatTime(t.expiresAt, now)}${t.expiresAt <= now ? ' (expired)' : ''}`);
      print(renderTable(['NAME', 'ROLE', 'NODE', 'EXPIRES', 'CREATED'], tokens.map((t) => [t.name, t.role, t.node ?? '-', expires(t), formatTime(t.createdAt, now)])));
    });
  clientCommand(token, 'rm', 'revoke a token: it stops working at once and agents using it are disconnected')
    .argument('<name>', 'token name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { revoked, closedConnections } = await clientFor(cmd).revokeToken(name);
      print(`${revoked.role} token "${name}" revoked${closedConnections ? `; ${closedConnections} agent connection(s) closed` : ''}`);
    });

  clientCommand(program, 'capacity', 'how many more instances of an entry fit, and where')
    .argument('<app>', 'app name')
    .argument('<entry>', 'entrypoint')
    .addOption(outputOption())
    .action(async (app: string, entry: string, _opts: unknown, cmd: Command) => {
      const result = await clientFor(cmd).capacity(app, entry);
      if (options(cmd).output === 'json') return print(renderJson(result));
      print(`${result.total} more instance${result.total === 1 ? '' : 's'} of ${app}/${entry} fit${result.blocked ? ` (${result.blocked})` : ''}`);
      if (result.nodes.length > 0) print(renderTable(['node', 'fits'], result.nodes.map((n) => [n.node, n.count])));
    });
}
