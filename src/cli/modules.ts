// The modules of gantry's commands, in the order `gantry --help` lists them: main.ts registers
// them (a heavy one only when the command line names one of its commands), and the CLI test
// holds `--help` to the same list.
import type { Command } from 'commander';
import { registerClientCommands } from './commands.js';
import { registerReleaseCommands } from './release-commands.js';
import { registerNodeCommands } from './node-commands.js';
import { registerBuildCommands } from './build-commands.js';
import { registerImageCommands } from './image-commands.js';
import { registerSecretCommands } from './secret-commands.js';
import { registerConfigCommands } from './config-commands.js';
import { registerUserCommands } from './user-commands.js';
import { registerApprovalCommands } from './approval-commands.js';

export interface CommandModule {
  register: (program: Command) => void | Promise<void>;
  /** The top-level commands of a module loaded only for them; absent: always registered. */
  only?: string[];
}

// One line per module, in the order `gantry --help` lists their commands. A heavy one:
//   { only: ['name'], register: async (p) => (await import('./x-commands.js')).registerXCommands(p) },
export const MODULES: CommandModule[] = [
  { only: ['up', 'server', 'agent'], register: async (p) => (await import('./daemon.js')).registerDaemonCommands(p) },
  { register: registerClientCommands },
  { register: registerReleaseCommands },
  { register: registerNodeCommands },
  { only: ['top'], register: async (p) => (await import('./usage-commands.js')).registerUsageCommands(p) },
  { only: ['alerts', 'alert'], register: async (p) => (await import('./alert-commands.js')).registerAlertCommands(p) },
  { register: registerBuildCommands },
  { register: registerImageCommands },
  { register: registerSecretCommands },
  { register: registerConfigCommands },
  { register: registerUserCommands },
  { only: ['quota'], register: async (p) => (await import('./quota-commands.js')).registerQuotaCommands(p) },
  { register: registerApprovalCommands },
  { only: ['sim'], register: async (p) => (await import('./sim-commands.js')).registerSimCommands(p) },
];

