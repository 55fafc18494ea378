// docker exec for the Docker runtime: output capped, a timeout that resolves instead of rejecting.
import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { engineMessage, sleep, statusOf } from './docker-common.js';
import type { ExecResult } from './runtime.js';

/** Exit code exec() reports when the command outlived its timeout (as coreutils `timeout` does). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;
const EXEC_OUTPUT_CAP = 64 * 1024;

/**
 * docker exec with stdout and stderr interleaved (as 2>&1), capped at 64 KiB.
 * On timeout it does NOT reject: it resolves with exitCode 124 (like coreutils `timeout`) and
 * the output so far plus a note, so health checks treat it as an ordinary failure. Docker has
 * no API to kill an exec, so the command may keep running inside the container.
 * Rejects when the container is missing or not running.
 * `containerName` is `container`'s name, for messages.
 */
export async function execInContainer(
  docker: Dockerode,
  container: Dockerode.Container,
  instanceId: string,
  containerName: string,
  command: string[],
  timeoutMs: number,
): Promise<ExecResult> {
  let exec: Dockerode.Exec;
  try {
    exec = await container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false });
  } catch (err) {
    const status = statusOf(err);
    if (status === 404) throw new Error(`no container for instance ${instanceId}`);
    throw new Error(`cannot exec in ${containerName}: ${engineMessage(err)}`);
  }
  const deadline = Date.now() + timeoutMs;
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  const collect = {
    write(chunk: Buffer): boolean {
      const room = EXEC_OUTPUT_CAP - size;
      if (chunk.length > room) truncated = true;
      if (room > 0) {
        const part = Buffer.from(chunk.subarray(0, room));
        chunks.push(part);
        size += part.length;
      }
      return true;
    },
  } as unknown as NodeJS.WritableStream;

  let stream: Duplex;
  try {
    stream = await exec.start({ hijack: true, stdin: false });
  } catch (err) {
    throw new Error(`cannot exec in ${containerName}: ${engineMessage(err)}`);
  }
  stream.on('error', () => {}); // reported through the promise below; later ones do not matter
  docker.modem.demuxStream(stream, collect, collect);
  let timer: NodeJS.Timeout | undefined;
  const finished = await new Promise<boolean>((resolve, reject) => {
    const done = () => resolve(true);
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', (err: Error) => reject(new Error(`exec in ${containerName} failed: ${err.message}`)));
    timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
  }).finally(() => clearTimeout(timer));
  stream.destroy();

  const output = () => Buffer.concat(chunks).toString('utf8') + (truncated ? '\n[output truncated at 64 KiB]' : '');
  const timedOut = (): ExecResult => {
    const text = output();
    const sep = text === '' || text.endsWith('\n') ? '' : '\n';
    return {
      exitCode: EXEC_TIMEOUT_EXIT_CODE,
      output: `${text}${sep}[timed out after ${timeoutMs} ms; the command may still be running in the container]`,
    };
  };
  if (!finished) return timedOut();
  // The stream can end a moment before the engine records the exit code.
  for (;;) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return { exitCode: info.ExitCode, output: output() };
    if (Date.now() >= deadline) return timedOut();
    await sleep(20);
  }
}
