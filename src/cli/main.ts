#!/usr/bin/env node
// The gantry command: daemons (up, server, agent) and the client commands.
import { Command } from 'commander';
import { GANTRY_VERSION } from '../version.js';
import { registerDaemonCommands } from './daemon.js';
import { registerClientCommands, handleCliError } from './commands.js';
import { registerReleaseCommands } from './release-commands.js';
import { registerNodeCommands } from './node-commands.js';

const program = new Command()
  .name('gantry')
  .description('Gantry: deploy, scale and observe apps on a fleet of hosts')
  .version(GANTRY_VERSION)
  .showHelpAfterError()
  .exitOverride();

registerDaemonCommands(program);
registerClientCommands(program);
registerReleaseCommands(program);
registerNodeCommands(program);

program.parseAsync(process.argv).catch(handleCliError);
