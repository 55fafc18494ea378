// Exit codes of the client commands and the top-level error handler.
import { CommanderError } from 'commander';
import { ApiRequestError, ServerUnreachableError } from './client.js';
import { ConfigError } from './config.js';

export const EXIT = {
  ok: 0,
  /** The server answered with an error (or something else went wrong). */
  api: 1,
  /** Bad usage: unknown option, bad argument, invalid spec, bad config file. */
  usage: 2,
  /** Timed out waiting for an app to converge (or to be removed). */
  timeout: 3,
  /** The server cannot be reached. */
  unreachable: 4,
} as const;

/** An error the CLI reports as `error: <message>` (if any) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Stops the command: handleCliError prints the message and exits with `code`. */
export function fail(code: number, message: string): never {
  throw new CliError(code, message);
}

/** The exit code and the stderr text for an error; pure, for handleCliError and tests. */
export function describeCliError(err: unknown): { exitCode: number; text: string } {
  if (err instanceof CliError) return { exitCode: err.exitCode, text: err.message ? `error: ${err.message}` : '' };
  if (err instanceof ApiRequestError) {
    const lines = [`error: ${err.message}`, ...err.problems.map((p) => `  ${p.path || '(root)'}: ${p.message}`)];
    return { exitCode: EXIT.api, text: lines.join('\n') };
  }
  if (err instanceof ServerUnreachableError) return { exitCode: EXIT.unreachable, text: `error: ${err.message}` };
  if (err instanceof ConfigError) return { exitCode: EXIT.usage, text: `error: ${err.message}` };
  if (err instanceof CommanderError) {
    // Commander has already printed its message (or the help / version).
    const ok = err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
    return { exitCode: ok ? EXIT.ok : EXIT.usage, text: '' };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { exitCode: EXIT.api, text: `error: ${message}` };
}

/** For main.ts: `program.parseAsync(argv).catch(handleCliError)`. Prints the error and exits. */
export function handleCliError(err: unknown): never {
  const { exitCode, text } = describeCliError(err);
  if (text) process.stderr.write(`${text}\n`);
  if (process.env.GANTRY_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(exitCode);
}
