// The init step of the Docker runtime: a one-off container run to completion before the
// instance starts, and the end of its output, read back from its log (stdout and stderr
// interleaved as written) before the container is removed.
import type Dockerode from 'dockerode';
import { forceRemove, kill, waitNotRunning } from './docker-container.js';
import { createAndStart, createBody, ensureImage, type CreateOptions } from './docker-create.js';
import { EXEC_TIMEOUT_EXIT_CODE } from './docker-exec.js';
import { checkVolumes, ensureVolumes } from './docker-volumes.js';
import type { ExecResult, InitStep, RunSpec } from './runtime.js';

/** Marks the one-off container of an init step; the runtime's list() and inspect() never return it. */
export const INIT_LABEL = 'gantry.init';
/** How long to wait after SIGKILL for a timed-out step to end. */
const KILL_WAIT_MS = 30_000;

/** How much of the init step's output is kept: its last 4 KiB. */
export const INIT_OUTPUT_CAP = 4 * 1024;
/** Lines asked of the engine: a 4 KiB tail never has more. */
const TAIL_LINES = INIT_OUTPUT_CAP;

/** The payloads of a multiplexed (Tty: false) engine log buffer, stdout and stderr in order. */
export function demuxFrames(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const type = buf[pos];
    const size = buf.readUInt32BE(pos + 4);
    if (type === undefined || type > 2 || buf[pos + 1] !== 0 || buf[pos + 2] !== 0 || buf[pos + 3] !== 0) {
      // Not multiplexed after all (a TTY container): the raw bytes are the output.
      return pos === 0 ? buf : Buffer.concat([...parts, buf.subarray(pos)]);
    }
    parts.push(buf.subarray(pos + 8, Math.min(buf.length, pos + 8 + size)));
    pos += 8 + size;
  }
  return Buffer.concat(parts);
}

/** The last `cap` bytes as text, starting at a character boundary, with a note when cut. */
export function lastBytes(buf: Buffer, cap = INIT_OUTPUT_CAP): string {
  if (buf.length <= cap) return buf.toString('utf8');
  let start = buf.length - cap;
  // Skip UTF-8 continuation bytes so the text does not begin with half a character.
  while (start < buf.length && ((buf[start] ?? 0) & 0xc0) === 0x80) start++;
  return `[gantry: output cut to its last ${cap / 1024} KiB]\n${buf.subarray(start).toString('utf8')}`;
}

/** The end of the container's output; '' when the engine has no log to give (e.g. log driver none). */
export async function containerOutputTail(container: Dockerode.Container): Promise<string> {
  let raw: unknown;
  try {
    raw = await container.logs({ follow: false, stdout: true, stderr: true, tail: TAIL_LINES });
  } catch {
    return '';
  }
  const buf = Buffer.isBuffer(raw) ? raw : typeof raw === 'string' ? Buffer.from(raw, 'latin1') : Buffer.alloc(0);
  return lastBytes(demuxFrames(buf));
}

/**
 * Runs an init step in a one-off container `name`: the step's image (or
 * the instance's), Cmd = step.command, the instance's env (with its port variables), volumes,
 * workdir, labels (plus gantry.init=true) and CPU / memory limits, but no published ports.
 * Waits for it to exit (past timeoutMs it is killed: 124), keeps the last 4 KiB of its output
 * (stdout and stderr interleaved) and removes it. A leftover init container of the instance (an
 * agent that died during the step) is removed first. Throws a readable Error when it cannot run
 * at all (no image, ...).
 */
export async function runInitContainer(docker: Dockerode, name: string, spec: RunSpec, step: InitStep, options: CreateOptions): Promise<ExecResult> {
  const image = step.image ?? spec.image;
  if (!image) throw new Error(`instance ${spec.instanceId}: the init step needs an image (the docker runtime runs it in a container)`);
  if (step.command.length === 0) throw new Error(`instance ${spec.instanceId}: the init step needs a command`);
  checkVolumes(spec);
  const container = docker.getContainer(name);
  await forceRemove(container);
  await ensureImage(docker, image);
  await ensureVolumes(docker, spec);

  const { body, hostConfig } = createBody({ ...spec, image, command: step.command, args: [] }, options);
  body.Labels = { ...body.Labels, [INIT_LABEL]: 'true' };
  body.ExposedPorts = {};
  hostConfig.PortBindings = {};
  const warnings: string[] = [];
  try {
    await createAndStart(docker, name, body, hostConfig, warnings);
  } catch (err) {
    const message = (err as Error).message;
    // As `docker run` (and the process runtime) report them: a command that is not there, or not executable.
    if (/executable file not found|no such file or directory/i.test(message)) return { exitCode: 127, output: `init step: ${message}` };
    if (/permission denied/i.test(message)) return { exitCode: 126, output: `init step: ${message}` };
    throw new Error(`instance ${spec.instanceId}: cannot run the init step: ${message}`);
  }
  try {
    const timeoutMs = Math.max(0, step.timeoutMs);
    if (!(await waitNotRunning(container, timeoutMs))) {
      await kill(container, 'SIGKILL');
      await waitNotRunning(container, KILL_WAIT_MS);
      const output = await containerOutputTail(container);
      const sep = output === '' || output.endsWith('\n') ? '' : '\n';
      return { exitCode: EXEC_TIMEOUT_EXIT_CODE, output: `${output}${sep}[gantry: init step timed out after ${timeoutMs} ms and was killed]` };
    }
    const info = await container.inspect();
    let output = await containerOutputTail(container);
    if (info.State.OOMKilled) {
      const sep = output === '' || output.endsWith('\n') ? '' : '\n';
      output += `${sep}[gantry: init step killed for exceeding its memory limit (${spec.memoryBytes} bytes)]`;
    }
    return { exitCode: info.State.ExitCode, output };
  } finally {
    await forceRemove(container);
  }
}
