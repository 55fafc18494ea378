// A terminal in a container: docker exec with a TTY, its stdin, stdout and stderr on one
// hijacked connection (with a TTY the engine does not multiplex them), resized through the exec.
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type Dockerode from 'dockerode';
import { engineMessage, statusOf } from './docker-common.js';
import { TERMINAL_SHELL, type Terminal, type TerminalOptions } from './runtime.js';

/** After stdin closed, how long the shell has to end before the connection is cut (the engine then hangs it up). */
const HANGUP_GRACE_MS = 2000;

export async function containerTerminal(container: Dockerode.Container, instanceId: string, options: TerminalOptions): Promise<Terminal> {
  let exec: Dockerode.Exec;
  try {
    const info = await container.inspect();
    if (!info.State.Running) throw new Error(`the container of instance ${instanceId} is not running`);
    exec = await container.exec({ Cmd: options.command ?? TERMINAL_SHELL, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true, Env: ['TERM=xterm-256color'] });
  } catch (err) {
    if (statusOf(err) === 404) throw new Error(`no container for instance ${instanceId}`);
    throw err instanceof Error && !('statusCode' in err) ? err : new Error(`cannot exec in the container of ${instanceId}: ${engineMessage(err)}`);
  }
  const stream: Duplex = await exec.start({ hijack: true, stdin: true, Tty: true });
  const resize = (cols: number, rows: number) => void exec.resize({ w: cols, h: rows }).catch(() => undefined);
  resize(options.cols, options.rows);
  const decoder = new StringDecoder('utf8');
  const dataListeners: ((data: string) => void)[] = [];
  const exitListeners: ((code: number | null) => void)[] = [];
  let ended = false;
  let cutTimer: NodeJS.Timeout | undefined;
  stream.on('data', (chunk: Buffer) => {
    const text = decoder.write(chunk);
    if (text) for (const listener of dataListeners) listener(text);
  });
  stream.on('error', () => undefined); // the end below follows, with the exit code if the engine has one
  const end = async () => {
    if (ended) return;
    ended = true;
    clearTimeout(cutTimer);
    const code = await exec.inspect().then((info) => (info.Running ? null : (info.ExitCode ?? null)), () => null);
    for (const listener of exitListeners) listener(code);
  };
  stream.once('end', () => void end());
  stream.once('close', () => void end());
  return {
    write: (data) => {
      if (!ended && stream.writable) stream.write(data);
    },
    resize,
    onData: (listener) => void dataListeners.push(listener),
    onExit: (listener) => void exitListeners.push(listener),
    close: () => {
      if (ended || cutTimer) return;
      stream.end();
      cutTimer = setTimeout(() => stream.destroy(), HANGUP_GRACE_MS);
      cutTimer.unref();
    },
  };
}
