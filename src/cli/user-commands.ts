// People: signing in and out, what they may do (auth can-i), their teams, and the users an admin
// manages. Declarations only; user-actions.ts does the work.
import type { Command } from 'commander';
import { Option } from 'commander';
import { clientCommand, lazy, outputOption } from './cli-options.js';

type Actions = typeof import('./user-actions.js');
const run = <K extends keyof Actions>(name: K) => lazy(() => import('./user-actions.js'), name);

export function registerUserCommands(program: Command): void {
  clientCommand(program, 'login', 'sign in as a user: the session token is saved in the CLI config (it expires, see --ttl)')
    .requiredOption('-u, --user <name>', 'user name')
    .option('--password-stdin', 'read the password from stdin (else it is asked for on the terminal)')
    .option('--ttl <duration>', 'how long the session lasts, e.g. 8h (default 12h, at most 30 days)')
    .action(run('login'));
  clientCommand(program, 'logout', 'end the session the CLI config holds, and forget its token')
    .action(run('logout'));
  clientCommand(program, 'whoami', 'who the token the CLI uses belongs to')
    .action(run('whoami'));

  const auth = program.command('auth').description('what a token or user may do');
  clientCommand(auth, 'can-i', 'whether you (or --as another user) may do something, answered from the server\'s own policy table; exit 0 yes, 1 no')
    .argument('<verb>', 'read, write, delete, or a word for one: apply, scale, logs, rm, cordon, …')
    .argument('<resource>', '<kind>[/<name>], e.g. app/shop, nodes, node/n1')
    .option('--as <user>', 'ask about another user (admins only)')
    .action(run('canI'));

  clientCommand(program, 'audit', 'the audit log: who changed what, when, from where, and what came of it (admins); -o jsonl exports it')
    .option('--user <name>', 'only this user or token')
    .option('--team <name>', "only requests about this team's apps")
    .option('--since <duration>', 'only the last such time, e.g. 24h')
    .option('--limit <n>', 'the newest this many (at most 100000)', '1000')
    .addOption(new Option('-o, --output <format>', 'table, json, or jsonl (one JSON object per line)').choices(['table', 'json', 'jsonl']).default('table'))
    .action(run('audit'));

  const team = program.command('team').description('teams: who may do what to the apps whose spec names the team');
  clientCommand(team, 'create', 'create a team (admins)')
    .argument('<name>', 'team name')
    .option('--owner <user>', 'its first owner (who then manages its members)')
    .action(run('createTeam'));
  clientCommand(team, 'ls', 'list teams (yours; all of them for admins and operators)')
    .addOption(outputOption())
    .action(run('listTeams'));
  clientCommand(team, 'show', 'a team and its members')
    .argument('<name>', 'team name')
    .addOption(outputOption())
    .action(run('showTeam'));
  clientCommand(team, 'add', "add a member to a team, or change their role (the team's owners)")
    .argument('<name>', 'team name')
    .argument('<user>', 'user name')
    .addOption(new Option('--role <role>', 'owner (members and everything below), developer (apply, scale, rollouts, restart, logs), viewer (read)').choices(['owner', 'developer', 'viewer']).default('developer'))
    .action(run('addMember'));
  clientCommand(team, 'kick', "remove a member from a team (the team's owners)")
    .argument('<name>', 'team name')
    .argument('<user>', 'user name')
    .action(run('removeMember'));
  clientCommand(team, 'rm', 'remove a team that owns no apps (admins)')
    .argument('<name>', 'team name')
    .action(run('removeTeam'));
  clientCommand(team, 'set', "change a team's settings (the team's owners)")
    .argument('<name>', 'team name')
    .option('--require-approval <envs>', 'envs whose new releases wait for an owner\'s approval (gantry approve), comma-separated, e.g. prod,staging; "" for none')
    .action(lazy(() => import('./approval-actions.js'), 'setTeam'));

  const user = program.command('user').description('users who sign in (admins only)');
  clientCommand(user, 'create', 'create a user; the password is read from stdin or asked for')
    .argument('<name>', 'user name')
    .addOption(new Option('--role <role>', 'admin (everything), operator (nodes and pools; reads what runs) or member (their teams\' apps, once teams exist)').choices(['admin', 'operator', 'member']).default('member'))
    .option('--password-stdin', 'read the password from stdin')
    .action(run('createUser'));
  clientCommand(user, 'passwd', "set a user's password (every session of the user ends)")
    .argument('<name>', 'user name')
    .option('--password-stdin', 'read the password from stdin')
    .action(run('setPassword'));
  clientCommand(user, 'ls', 'list users (never their passwords)')
    .addOption(outputOption())
    .action(run('listUsers'));
  clientCommand(user, 'rm', 'remove a user: their sessions end at once')
    .argument('<name>', 'user name')
    .action(run('removeUser'));

  const invites = (name: keyof typeof import('./invite-actions.js')) => lazy(() => import('./invite-actions.js'), name);
  clientCommand(user, 'invite', 'make a one-time invitation code: whoever holds it becomes a user (admins: any role and team; team owners: members of their team)')
    .option('--team <team>', 'they join this team')
    .addOption(new Option('--role <role>', 'their role in --team (default developer)').choices(['owner', 'developer', 'viewer']))
    .addOption(new Option('--platform-role <role>', 'admin, operator or member (default; owners invite members only)').choices(['admin', 'operator', 'member']))
    .option('--expires <duration>', 'how long the code works, e.g. 48h (default 168h, at most 720h)')
    .action(invites('invite'));
  clientCommand(user, 'invitations', 'open invitations (never their codes): all for admins, their teams\' for owners')
    .addOption(outputOption())
    .action(invites('listInvitations'));
  clientCommand(user, 'revoke-invite', 'revoke an open invitation: its code stops working')
    .argument('<id>', 'invitation id (gantry user invitations)')
    .action(invites('revokeInvitation'));
  clientCommand(program, 'accept-invite', 'become a user with an invitation code, and sign in (the session is saved like gantry login\'s)')
    .argument('<code>', 'the invitation code (works once)')
    .requiredOption('--name <name>', 'your user name')
    .option('--password-stdin', 'read the password from stdin (else it is asked for on the terminal)')
    .action(invites('acceptInvite'));
}
