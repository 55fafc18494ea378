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
import { registerClientCommands, handleCliError } from './commands.js';
import { registerReleaseCommands } from './release-commands.js';
import { registerNodeCommands } from './node-commands.js';
import { registerBuildCommands } from './build-commands.js';
import { registerImageCommands } from './image-commands.js';
import { registerSecretCommands } from './secret-commands.js';
import { registerConfigCommands } from './config-commands.js';
import { registerUserCommands } from './user-commands.js';
import { registerApprovalCommands } from './approval-commands.js';

interface CommandModule {
  register: (program: Command) => void | Promise<void>;
  /** The top-level commands of a module loaded only for them; absent: always registered. */
  only?: string[];
}

// One line per module, in the order `gantry --help` lists their commands. A heavy one:
//   { only: ['name'], register: async (p) => (await import('./x-commands.js')).registerXCommands(p) },
const MODULES: CommandModule[] = [
  { only: ['up', 'server', 'agent'], register: async (p) => (await import('./daemon.js')).registerDaemonCommands(p) },
  { register: registerClientCommands },
  { register: registerReleaseCommands },
  { register: registerNodeCommands },
  { register: registerBuildCommands },
  { register: registerImageCommands },
  { register: registerSecretCommands },
  { register: registerConfigCommands },
  { register: registerUserCommands },
  { only: ['quota'], register: async (p) => (await import('./quota-commands.js')).registerQuotaCommands(p) },
  { register: registerApprovalCommands },
  { only: ['sim'], register: async (p) => (await import('./sim-commands.js')).registerSimCommands(p) },
];

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
