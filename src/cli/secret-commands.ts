// Team secrets: `gantry secret set|get|ls|rm|rotate-key`. Declarations only; secret-actions.ts
// does the work. A value never comes from the command line (every user of the host sees it in
// ps): from a file, stdin, or a prompt that does not echo.
import type { Command } from 'commander';
import { clientCommand, lazy, outputOption } from './cli-options.js';

type Actions = typeof import('./secret-actions.js');
const run = <K extends keyof Actions>(name: K) => lazy(() => import('./secret-actions.js'), name);

export function registerSecretCommands(program: Command): void {
  const secret = program.command('secret').description("a team's secrets: sealed by the server, given to the instances whose spec names them ({ secret: team/name })");
  clientCommand(secret, 'set', "store a secret (a new version; the team's owners and developers): from --from-file, stdin, or asked for; says which apps use it")
    .argument('<team/name>', 'e.g. shop/db-password')
    .option('--from-file <file>', 'the value is the content of this file (at most 64 KiB)')
    .option('--roll', 'roll every app that uses it, so its instances start again with the new value')
    .action(run('setSecret'));
  clientCommand(secret, 'get', "print a secret's value (the team's owners; every read is in the audit log)")
    .argument('<team/name>', 'e.g. shop/db-password')
    .action(run('getSecret'));
  clientCommand(secret, 'ls', "a team's secrets: names, versions, who changed them, which apps use them; never values")
    .argument('<team>', 'team name')
    .addOption(outputOption())
    .action(run('listSecrets'));
  clientCommand(secret, 'rm', 'remove a secret no app uses')
    .argument('<team/name>', 'e.g. shop/db-password')
    .action(run('removeSecret'));
  clientCommand(secret, 'rotate-key', 'seal every stored secret and registry password again with the current secret key (admins; see docs/operations.md)')
    .action(run('rotateKey'));
}
