#!/usr/bin/env node
// The gantry command: daemons (up, server, agent), the client commands, the simulator.
//
// A CLI call should cost its start-up and one request, so not every module of commands is loaded
// at every start. The client command modules only define their commands (their work is imported
// when one runs) and are always registered; a module that imports much when loaded (the daemons
// load the server and the agent) lists its top-level commands and is registered only when the
// command line names one of them, or asks for help, or names a command no module registered (for
// commander's complete help and suggestions).
import { Command } from 'commander';
import { GANTRY_VERSION } from '../version.js';
import { handleCliError } from './commands.js';
import { MODULES, type CommandModule } from './modules.js';

async function buildProgram(wanted: (module: CommandModule) => boolean): Promise<Command> {
  const program = new Command()
    .name('gantry')
    .description('Gantry: deploy, scale and observe apps on a fleet of hosts')
    .version(GANTRY_VERSION)
    .showHelpAfterError()
    .exitOverride();
  for (const module of MODULES) if (wanted(module)) await module.register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const args = argv.slice(2);
  const name = args.find((arg) => !arg.startsWith('-'));
  const versionOnly = name === undefined && args.length > 0 && args.every((arg) => arg === '-V' || arg === '--version');
  const everything = (name === undefined && !versionOnly) || name === 'help';
  let program = await buildProgram((m) => everything || !m.only || m.only.includes(name!));
  if (name !== undefined && !program.commands.some((c) => c.name() === name || c.aliases().includes(name))) program = await buildProgram(() => true);
  await program.parseAsync(argv);
}

main(process.argv).catch(handleCliError);
