// gantry node cordon|uncordon|drain|dedicate|unassigned|adopt|forget|inspect, gantry pool set, gantry
// token create|ls|rm, gantry capacity, as commander sees them: names, arguments, options and help
// only (cheap to define at every start); node-actions.ts does the work, imported when one runs.
import { Option, type Command } from 'commander';
import { clientCommand, lazy, outputOption } from './cli-options.js';

type NodeActions = typeof import('./node-actions.js');
const actions = (): Promise<NodeActions> => import('./node-actions.js');
const run = <K extends keyof NodeActions>(name: K) => lazy(actions, name);

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('operate on one node');
  for (const [action, description] of [
    ['cordon', 'take no new instances on a node (those running stay)'],
    ['uncordon', 'let a cordoned or drained node take instances again'],
    ['drain', 'take no new instances and move the running ones elsewhere (each replaced before it goes)'],
  ] as const) {
    clientCommand(node, action, description)
      .argument('<name>', 'node name')
      .action(async (name: string, _opts: unknown, cmd: Command) => (await actions()).nodeAction(action, name, cmd));
  }
  clientCommand(node, 'dedicate', 'let a node take instances of one app only (promotion days); --none to undo')
    .argument('<name>', 'node name')
    .argument('[app]', 'the app')
    .option('--none', 'open the node to every app again')
    .action(run('dedicate'));

  clientCommand(node, 'unassigned', 'instances a node runs that the server does not know (its store was emptied or replaced)')
    .argument('<name>', 'node name')
    .addOption(outputOption())
    .action(run('unassigned'));
  clientCommand(node, 'adopt', 'take over, as they run, the instances nodes run that the server does not know (apps missing from the store are made from them)')
    .argument('[names...]', 'nodes (default: every node that reports such instances)')
    .action(run('adopt'));
  clientCommand(node, 'forget', 'have a node remove the instances it runs that the server does not know')
    .argument('<name>', 'node name')
    .option('--instance <id>', 'only this instance (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .action(run('forget'));

  clientCommand(node, 'inspect', "have a node's agent check the host now (kernel, cgroups, Docker, disk, memory, clock, uptime, limits, sysctls) and print each check against the policy")
    .argument('[name]', 'node name')
    .option('--all', 'every ready node')
    .addOption(outputOption())
    .action(async (name: string | undefined, opts: unknown, cmd: Command) => (await import('./inspect-actions.js')).inspectNodes(name, opts, cmd));

  const pool = program.command('pool').description('node pools');
  clientCommand(pool, 'set', 'create or change a pool; with --team only that team\'s apps may use it')
    .argument('<name>', 'pool name')
    .option('--team <team>', 'the owning team')
    .action(run('setPool'));

  const token = program.command('token').description('API tokens: agent tokens for nodes, admin tokens; your personal tokens (--mine) and teams\' robot tokens for CI (--team)');
  const whose = (command: Command) =>
    command
      .option('--mine', 'your personal token: acts as you, narrowed by --scope (made from a gantry login session)')
      .option('--team <team>', "a team's robot token, for its CI: acts in that team only (its owners make them)");
  whose(clientCommand(token, 'create', 'create a token and print it (shown only this once)'))
    .argument('<name>', 'a name to know it by (e.g. the node it is for)')
    .option('--role <role>', 'agent (connects the agent of one node, and nothing else), join (lets a new node join once, within --ttl) or admin', 'agent')
    .option('--node <node>', 'agent: the node the token speaks for (default: the token\'s name)')
    .option('--ttl <duration>', 'join: how long the token may be used, e.g. 24h (default 24h, at most 30 days)')
    .option('--scope <items>', '--mine/--team: what it may do at most, comma-separated: read, write, all, or <kind>:<verb> such as app:write,log:read (default read)')
    .option('--expires <duration>', '--mine/--team: how long it works, e.g. 2160h for 90 days (default: until revoked)')
    .addOption(new Option('--team-role <role>', '--team: its role in the team').choices(['developer', 'viewer']))
    .addOption(outputOption())
    .action(run('createToken'));
  whose(clientCommand(token, 'ls', 'list tokens (names and roles; never the tokens)'))
    .addOption(outputOption())
    .action(run('listTokens'));
  whose(clientCommand(token, 'rm', 'revoke a token: it stops working at once and agents using it are disconnected'))
    .argument('<name>', 'token name')
    .action(run('revokeToken'));

  clientCommand(program, 'capacity', 'how many more instances of an entry fit, and where')
    .argument('<app>', 'app name')
    .argument('<entry>', 'entrypoint')
    .addOption(outputOption())
    .action(run('capacity'));
}
