// gantry node cordon|uncordon|drain|dedicate, gantry pool set, gantry capacity, gantry token.
import type { Command } from 'commander';
import { clientCommand, clientFor, options, outputOption } from './commands.js';
import { formatTime, print, renderJson, renderTable } from './output.js';
import { EXIT, fail } from './errors.js';

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
    .option('--role <role>', 'agent (may only connect a node agent) or admin', 'agent')
    .addOption(outputOption())
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { role, output } = options<{ role: string; output?: string }>(cmd);
      if (role !== 'agent' && role !== 'admin') fail(EXIT.usage, `--role ${role}: expected agent or admin`);
      const created = await clientFor(cmd).createToken(name, role);
      if (output === 'json') return print(renderJson(created));
      print(`${created.role} token "${created.name}" (shown only this once; the server keeps its hash):\n\n    ${created.token}\n`);
      if (role === 'agent') print(`Start a node with: gantry agent --server <url> --token ${created.token}`);
    });
  clientCommand(token, 'ls', 'list tokens (names and roles; never the tokens)')
    .addOption(outputOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const { tokens } = await clientFor(cmd).tokens();
      if (options(cmd).output === 'json') return print(renderJson(tokens));
      print(renderTable(['NAME', 'ROLE', 'CREATED'], tokens.map((t) => [t.name, t.role, formatTime(t.createdAt)])));
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
