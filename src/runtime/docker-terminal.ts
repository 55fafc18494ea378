// A terminal in a container: docker exec with a TTY, its stdin, stdout and stderr on one
// hijacked connection (with a TTY the engine does not multiplex them), resized through the exec.
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type Dockerode from 'dockerode';
import { engineMessage, statusOf } from './docker-common.js';
import { TERMINAL_SHELL, type Terminal, type TerminalOptions } from './runtime.js';

/** After a hang-up, how long the shell has to end before it is killed and the connection cut. */
const HANGUP_GRACE_MS = 2000;

/** `localEngine`: the engine runs on this host, so the pids it reports are this host's to signal. */
export async function containerTerminal(container: Dockerode.Container, instanceId: string, options: TerminalOptions, localEngine: boolean): Promise<Terminal> {
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
  const hostPid = () => (localEngine ? exec.inspect().then((info) => (info.Running ? info.Pid : 0), () => 0) : Promise.resolve(0));
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
      // The engine has no way to end an exec, and closing the connection leaves the shell
      // running: hang it up by its pid (a local engine reports this host's), or, with a remote
      // engine, type ^C ^D as someone leaving would.
      cutTimer = setTimeout(() => {
        void hostPid().then((pid) => signal(pid, 'SIGKILL'));
        stream.destroy();
      }, HANGUP_GRACE_MS);
      cutTimer.unref();
      void hostPid().then((pid) => {
        if (!signal(pid, 'SIGHUP') && stream.writable) stream.write('\x03\x04');
      });
    },
  };
}

/** Signals a process of this host; false when there is none to signal (or it is not ours to). */
function signal(pid: number, name: NodeJS.Signals): boolean {
  if (!(pid > 1)) return false;
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}
