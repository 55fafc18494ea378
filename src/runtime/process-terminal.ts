// A terminal beside a process instance: a shell under a pseudo-terminal (node-pty), in the
// instance's working directory with its environment, as the user the instance runs as (the
// agent's: process instances run as the agent's user, docs/security.md).
import { spawn as spawnPty, type IPty } from 'node-pty';
import { TERMINAL_SHELL, type Terminal, type TerminalOptions } from './runtime.js';

/** After a hang-up, how long the shell has before it is killed. */
const HANGUP_GRACE_MS = 2000;

export function processTerminal(cwd: string, env: Record<string, string>, options: TerminalOptions): Terminal {
  const [program, ...args] = options.command ?? TERMINAL_SHELL;
  const pty: IPty = spawnPty(program!, args, { name: 'xterm-256color', cols: options.cols, rows: options.rows, cwd, env: { ...env, TERM: 'xterm-256color' } });
  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;
  pty.onExit(() => {
    exited = true;
    clearTimeout(killTimer);
  });
  return {
    write: (data) => {
      if (!exited) pty.write(data);
    },
    resize: (cols, rows) => {
      if (!exited) pty.resize(cols, rows);
    },
    onData: (listener) => void pty.onData(listener),
    // A shell ended by a signal has no code of its own: null, as for a container's.
    onExit: (listener) => void pty.onExit(({ exitCode, signal }) => listener(signal ? null : exitCode)),
    close: () => {
      if (exited || killTimer) return;
      pty.kill('SIGHUP');
      killTimer = setTimeout(() => {
        if (!exited) pty.kill('SIGKILL');
      }, HANGUP_GRACE_MS);
      killTimer.unref();
    },
  };
}
