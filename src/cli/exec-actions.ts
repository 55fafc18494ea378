// `gantry exec <instance> [-- command …]`: a terminal in an instance over the server's
// WebSocket (GET /v1/instances/:id/exec), as the console opens one. On a terminal it is
// interactive (raw keys in, the screen's size followed); otherwise stdin is sent as typed input
// followed by an end of input (^D), and what is printed comes out with plain newlines, so that
// `gantry exec web-main-1a2b3c4d -- cat /etc/os-release | head -2` works in a script. Exits with
// the command's exit code.
import type { Command } from 'commander';
import WebSocket from 'ws';
import type { IncomingMessage } from 'node:http';
import { connectionFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { unreachableError, ApiRequestError } from './client.js';
import { terminalChunks, type TerminalClientMessage, type TerminalServerMessage } from '../model/terminal.js';

/** ^D: the terminal's end of input, which ends a shell reading it. */
const END_OF_INPUT = '\x04';

export async function exec(instance: string, command: string[], _opts: unknown, cmd: Command): Promise<void> {
  const { server, token, ca } = connectionFor(cmd);
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const query = new URLSearchParams({ cols: String(process.stdout.columns || 80), rows: String(process.stdout.rows || 24) });
  if (command.length > 0) query.set('command', JSON.stringify(command));
  const url = `${server.replace(/^http/, 'ws')}/v1/instances/${encodeURIComponent(instance)}/exec?${query}`;
  const socket = new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, ...(ca ? { ca } : {}) });
  const send = (message: TerminalClientMessage) => socket.send(JSON.stringify(message));

  const code = await new Promise<number>((resolve, reject) => {
    let result: number | undefined;
    socket.on('unexpected-response', (_request, response) => void refusal(response).then(reject, reject));
    socket.on('error', (err) => reject(err.message.includes('Unexpected server response') ? err : unreachableError(server, err)));
    socket.on('open', () => (interactive ? typeAlong(send) : sendAllInput(send)));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as TerminalServerMessage;
      if (message.type === 'output') process.stdout.write(interactive ? message.data : message.data.replace(/\r\n/g, '\n'));
      else if (message.type === 'exit') result = message.code ?? EXIT.api;
      else {
        process.stderr.write(`${interactive ? '\r\n' : ''}error: ${message.message}\n`);
        result = EXIT.api;
      }
    });
    socket.on('close', () => resolve(result ?? EXIT.api));
  }).finally(() => {
    if (interactive) process.stdin.setRawMode(false);
    process.stdin.destroy();
  });
  process.exitCode = code;
}

/** Keys as they are pressed, and the window's size as it changes. */
function typeAlong(send: (message: TerminalClientMessage) => void): void {
  process.stdin.setRawMode(true);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (keys: string) => {
    for (const data of terminalChunks(keys)) send({ type: 'input', data });
  });
  process.stdout.on('resize', () => send({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows }));
}

/** All of stdin as typed input, then the end of input. */
function sendAllInput(send: (message: TerminalClientMessage) => void): void {
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text: string) => {
    for (const data of terminalChunks(text)) send({ type: 'input', data });
  });
  process.stdin.on('end', () => send({ type: 'input', data: END_OF_INPUT }));
}

/** The server's HTTP answer instead of the upgrade (401, 403, 404, 429 …) as the CLI's API error. */
async function refusal(response: IncomingMessage): Promise<never> {
  let text = '';
  for await (const chunk of response) text += String(chunk);
  let error = text.trim() || `HTTP ${response.statusCode}`;
  try {
    error = (JSON.parse(text) as { error?: string }).error ?? error;
  } catch {
    // not JSON: the text itself
  }
  if (!response.statusCode) fail(EXIT.api, error);
  throw new ApiRequestError(response.statusCode, { error });
}
