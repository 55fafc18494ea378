// Secrets a person types or pipes in (passwords): from stdin, bounded, or asked on the terminal
// without echo. Never from a command-line argument, which every user of the host sees in ps.
import { EXIT, fail } from './errors.js';

/**
 * The secret from stdin (`'stdin'`, one trailing newline dropped) or asked with this prompt on
 * the terminal. `maxBytes`: the most stdin may hold (passwords: 8 KiB).
 */
export async function readSecret(from: 'stdin' | string, maxBytes = 8192): Promise<string> {
  return from === 'stdin' ? (await readStdin(maxBytes)).replace(/\r?\n$/, '') : askHidden(from);
}

/** Everything on stdin, as it is (at most `maxBytes`). */
export async function readStdin(maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += bytes.length;
    if (size > maxBytes) fail(EXIT.usage, `the ${maxBytes > 8192 ? 'value' : 'password'} on stdin is longer than ${maxBytes / 1024} KiB`);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A password from the terminal, not echoed. */
async function askHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) fail(EXIT.usage, 'stdin is not a terminal: give the password with --password-stdin');
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  let typed = '';
  try {
    for await (const chunk of input) {
      for (const char of String(chunk)) {
        if (char === '\r' || char === '\n') return typed;
        if (char === '\u0003') fail(EXIT.usage, 'cancelled');
        if (char === '\u007f') typed = typed.slice(0, -1);
        else typed += char;
      }
    }
    return typed;
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}
