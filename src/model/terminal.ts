// Terminals into instances (the console's and `gantry exec`'s): what a client says on
// GET /v1/instances/:id/exec, and the messages that carry a terminal session over the agent
// connection. Every size is bounded here, once, for the server, the agent and the client alike.
import { z } from 'zod';
import { instanceId } from './names.js';

/** Characters of one input or output message's data: a big paste arrives in several. */
export const MAX_TERMINAL_DATA = 64 * 1024;
/** Columns and rows a terminal may have (xterm.js and real screens stay far below). */
export const MAX_TERMINAL_SIZE = 1000;
/** Words of a command (`gantry exec <instance> -- cmd …`) and characters of each. */
export const MAX_COMMAND_WORDS = 256;
export const MAX_COMMAND_WORD = 4096;
/** Open terminals at once, per caller (server) and per node (server and agent). */
export const MAX_TERMINALS_PER_CALLER = 8;
export const MAX_TERMINALS_PER_NODE = 64;

const size = z.number().int().min(1, 'at least 1').max(MAX_TERMINAL_SIZE, `at most ${MAX_TERMINAL_SIZE}`);
const data = z.string().max(MAX_TERMINAL_DATA, `at most ${MAX_TERMINAL_DATA} characters a message`);
const sessionId = z.uuid();
const command = z.array(z.string().min(1).max(MAX_COMMAND_WORD)).min(1).max(MAX_COMMAND_WORDS);

/** The query of GET /v1/instances/:id/exec: the first size, and a command instead of `sh` (its words JSON-encoded in `command`). */
export const TerminalQuerySchema = z.strictObject({
  cols: z.coerce.number().pipe(size).default(80),
  rows: z.coerce.number().pipe(size).default(24),
  command: z
    .string()
    .max(MAX_COMMAND_WORDS * 64, 'command: too long')
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'command: a JSON array of strings' });
        return z.NEVER;
      }
    })
    .pipe(command)
    .optional(),
});

/** What a terminal's client sends, one JSON text frame each. */
export const TerminalClientMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('input'), data }),
  z.strictObject({ type: z.literal('resize'), cols: size, rows: size }),
]);
export type TerminalClientMessage = z.output<typeof TerminalClientMessageSchema>;

/** What the server sends a terminal's client. */
export type TerminalServerMessage = { type: 'output'; data: string } | { type: 'exit'; code: number | null } | { type: 'error'; message: string };

/** Server to agent: open, feed, resize and close a terminal session in one of the node's instances. */
export const ServerTerminalMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('terminal.open'), sessionId, instanceId: instanceId(), cols: size, rows: size, command: command.optional() }),
  z.object({ type: z.literal('terminal.input'), sessionId, data }),
  z.object({ type: z.literal('terminal.resize'), sessionId, cols: size, rows: size }),
  z.object({ type: z.literal('terminal.close'), sessionId }),
]);
export type ServerTerminalMessage = z.output<typeof ServerTerminalMessageSchema>;

/** Agent to server: what the terminal printed, and its end (the shell's exit code, or why it could not run). */
export const AgentTerminalMessageSchemas = [
  z.object({ type: z.literal('terminal.output'), sessionId, data }),
  z.object({ type: z.literal('terminal.exit'), sessionId, code: z.number().int().min(-(2 ** 31)).max(2 ** 32).nullable(), error: z.string().max(4096).optional() }),
] as const;
export type AgentTerminalMessage = { type: 'terminal.output'; sessionId: string; data: string } | { type: 'terminal.exit'; sessionId: string; code: number | null; error?: string };

/** Splits text into pieces of at most MAX_TERMINAL_DATA characters (never inside a surrogate pair). */
export function terminalChunks(text: string): string[] {
  const chunks: string[] = [];
  let at = 0;
  while (at < text.length) {
    let end = Math.min(text.length, at + MAX_TERMINAL_DATA);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    chunks.push(text.slice(at, end));
    at = end;
  }
  return chunks;
}
