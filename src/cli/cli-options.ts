// What the command definitions share: the connection options every client command takes, the
// argument parsers, and lazy actions. Every command is defined at each start (for --help and for
// commander to find the one asked for), so this module and the definitions import nothing beyond
// commander and small pure helpers; what a command does is imported when it runs (see lazy()).
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDuration } from '../model/units.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';

export interface CommonOptions {
  server?: string;
  token?: string;
  ca?: string;
  output?: OutputFormat;
}

/** A whole number >= min, for commander's option and argument parsers. */
export function wholeNumber(what: string, min = 0): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min) throw new InvalidArgumentError(`${what} must be a whole number${min > 0 ? ` >= ${min}` : ''}.`);
    return Number(value);
  };
}

function durationOption(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as "30s", "2m", "1h".');
  return ms;
}

export function clientCommand(program: Command, nameAndArgs: string, description: string): Command {
  return program
    .command(nameAndArgs)
    .description(description)
    .option('--server <url>', 'Gantry server URL (default: $GANTRY_SERVER, the config file, http://127.0.0.1:7070)')
    .option('--token <token>', 'API token (default: $GANTRY_TOKEN, the config file)')
    .option('--ca <file>', 'PEM CA certificate(s) that verify an https:// server (default: $GANTRY_CA, the config file, the system CAs)')
    .exitOverride();
}

export const outputOption = () => new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table');
export const timeoutOption = () => new Option('--timeout <duration>', 'how long to wait for convergence').argParser(durationOption).default(120_000, '2m');

export function options<T>(cmd: Command): T & CommonOptions {
  return cmd.optsWithGlobals() as T & CommonOptions;
}

type Action = (...args: never[]) => unknown;

/**
 * An action whose module is imported only when the command runs: `gantry ps` then never loads
 * the spec schemas that `gantry apply` needs, nor anything of the other commands.
 */
export function lazy<M extends Record<K, Action>, K extends string>(load: () => Promise<M>, name: K): (...args: unknown[]) => Promise<void> {
  return async (...args) => {
    const action = (await load())[name] as unknown as (...a: unknown[]) => unknown;
    await action(...args);
  };
}
