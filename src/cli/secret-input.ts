// Secrets a person types or pipes in (passwords): from stdin, bounded, or asked on the terminal
// without echo. Never from a command-line argument, which every user of the host sees in ps.
import { EXIT, fail } from './errors.js';

/** The secret from stdin (`'stdin'`, one trailing newline dropped) or asked with this prompt on the terminal. */
export async function readSecret(from: 'stdin' | string): Promise<string> {
  return from === 'stdin' ? (await readStdin()).replace(/\r?\n$/, '') : askHidden(from);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += bytes.length;
    if (size > 8192) fail(EXIT.usage, 'the password on stdin is longer than 8 KiB');
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
