// The Docker runtime: one container per instance, talking to the Docker Engine API through
// dockerode (never the docker CLI). Containers are named `${namePrefix}${instanceId}` and carry
// the gantry.* labels; the name prefix is the namespace, so several agents (or test runs) can
// share one engine without seeing each other's containers.
import { Readable, type Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import Dockerode from 'dockerode';
import type { AssignedPort } from '../model/types.js';
import {
  gantryLabels,
  LABEL,
  portEnv,
  type ExecResult,
  type LogLine,
  type LogOptions,
  type RunSpec,
  type Runtime,
  type RuntimeInstance,
  type StartResult,
} from './runtime.js';

export interface DockerRuntimeOptions {
  /** Docker Engine socket; default: DOCKER_HOST or /var/run/docker.sock (dockerode's default). */
  socketPath?: string;
  /** A ready client (tests, remote engines); wins over socketPath. */
  docker?: Dockerode;
  /** Container name prefix; default 'gantry-'. */
  namePrefix?: string;
  /** json-file log driver max-size per file (3 files are kept); default '10m'. */
  logMaxSize?: string;
  /**
   * Run docker-init (tini) as PID 1: forwards signals to the command and reaps zombies.
   * Default true. If the engine cannot find its init binary the container is started again
   * without it and StartResult.warnings says so.
   */
  init?: boolean;
}

/** Exit code exec() reports when the command outlived its timeout (as coreutils `timeout` does). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;
const EXEC_OUTPUT_CAP = 64 * 1024;
const CPU_PERIOD = 100_000;
const MIN_CPU_QUOTA = 1_000;
/** How long stop() waits after SIGKILL before giving up. */
const KILL_WAIT_MS = 30_000;
/** How often a following log stream checks whether an exited container was started again. */
const LOG_REATTACH_POLL_MS = 500;
const PING_TIMEOUT_MS = 5_000;

interface DockerError extends Error {
  statusCode?: number;
  json?: { message?: string } | null;
}

function statusOf(err: unknown): number | undefined {
  return (err as DockerError | undefined)?.statusCode;
}

/** The engine's own message ("No such image: x") rather than dockerode's "(HTTP code 404) ..." wrapper. */
function engineMessage(err: unknown): string {
  const e = err as DockerError;
  const fromJson = e?.json && typeof e.json === 'object' ? e.json.message : undefined;
  return (fromJson ?? e?.message ?? String(err)).trim();
}

/** Docker reports "never" as 0001-01-01T00:00:00Z. */
function parseDockerTime(value: string | undefined): number | null {
  if (!value || value.startsWith('0001-01-01')) return null;
  const ms = Date.parse(trimFraction(value));
  return Number.isNaN(ms) ? null : ms;
}

/** RFC3339 with nanoseconds → milliseconds precision, which Date.parse reliably understands. */
function trimFraction(value: string): string {
  return value.replace(/(\.\d{3})\d+/, '$1');
}

function portKey(port: AssignedPort): string {
  return `${port.container ?? port.host}/${port.protocol}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isRunning(info: Dockerode.ContainerInspectInfo): boolean {
  return info.State.Running || info.State.Restarting || info.State.Paused;
}

export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  private readonly docker: Dockerode;
  private readonly prefix: string;
  private readonly logMaxSize: string;
  private readonly init: boolean;
  private readonly where: string;
  /** inspect() results of running containers by container id: a running container's start time
   *  does not change until it exits, so list() only inspects a running container once. */
  private readonly runningCache = new Map<string, RuntimeInstance>();
  private readonly openLogs = new Set<Readable>();

  constructor(options: DockerRuntimeOptions = {}) {
    this.docker = options.docker ?? (options.socketPath ? new Dockerode({ socketPath: options.socketPath }) : new Dockerode());
    this.prefix = options.namePrefix ?? 'gantry-';
    this.logMaxSize = options.logMaxSize ?? '10m';
    this.init = options.init ?? true;
    const modem = this.docker.modem as { socketPath?: unknown; host?: string; port?: number };
    this.where =
      typeof modem.socketPath === 'string'
        ? modem.socketPath
        : modem.host
          ? `${modem.host}${modem.port ? `:${modem.port}` : ''}`
          : (options.socketPath ?? '/var/run/docker.sock');
  }

  private containerName(instanceId: string): string {
    return `${this.prefix}${instanceId}`;
  }

  private container(instanceId: string): Dockerode.Container {
    return this.docker.getContainer(this.containerName(instanceId));
  }

  private forget(instanceId: string): void {
    for (const [id, inst] of this.runningCache) if (inst.instanceId === instanceId) this.runningCache.delete(id);
  }

  async probe(): Promise<{ ok: boolean; reason?: string }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.docker.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS / 1000}s`)), PING_TIMEOUT_MS);
        }),
      ]);
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `cannot reach Docker Engine at ${this.where}: ${engineMessage(err)}` };
    } finally {
      clearTimeout(timer);
    }
  }

  private async rawInspect(instanceId: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
    try {
      return await this.container(instanceId).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private toInstance(info: Dockerode.ContainerInspectInfo): RuntimeInstance {
    const labels = info.Config?.Labels ?? {};
    const name = info.Name.replace(/^\//, '');
    const running = isRunning(info);
    const finishedAt = running ? null : parseDockerTime(info.State.FinishedAt);
    const startedAt = parseDockerTime(info.State.StartedAt);
    return {
      instanceId: name.startsWith(this.prefix) ? name.slice(this.prefix.length) : (labels[LABEL.instance] ?? name),
      runtimeId: info.Id,
      state: running ? 'running' : 'exited',
      // A created-but-never-started container has no exit code yet.
      exitCode: running || (startedAt === null && finishedAt === null) ? null : info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      startedAt,
      finishedAt,
      labels: { ...labels },
    };
  }

  async start(spec: RunSpec): Promise<StartResult> {
    const warnings: string[] = [];
    if (!spec.image) throw new Error(`instance ${spec.instanceId}: the docker runtime needs an image`);
    const name = this.containerName(spec.instanceId);

    const leftover = await this.rawInspect(spec.instanceId);
    if (leftover) {
      if (isRunning(leftover)) warnings.push(`removed a still running leftover container ${name}`);
      await this.remove(spec.instanceId);
    }

    // No registry pull: the image must already be on this node.
    try {
      await this.docker.getImage(spec.image).inspect();
    } catch (err) {
      if (statusOf(err) === 404) throw new Error(`image "${spec.image}" not found on this node (no registry pull is attempted)`);
      throw new Error(`cannot inspect image "${spec.image}": ${engineMessage(err)}`);
    }

    const env = { ...spec.env, ...portEnv(spec.ports, 'container') };
    const exposed: Record<string, Record<string, never>> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const port of spec.ports) {
      const key = portKey(port);
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: '0.0.0.0', HostPort: String(port.host) });
    }
    // command replaces the image's CMD (args appended); args alone become the CMD.
    const cmd = spec.command?.length ? [...spec.command, ...spec.args] : spec.args.length ? [...spec.args] : undefined;
    const hostConfig: Dockerode.HostConfig = {
      PortBindings: bindings,
      // The Gantry agent restarts instances, not dockerd.
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': this.logMaxSize, 'max-file': '3' } },
      Init: this.init,
    };
    if (spec.memoryBytes > 0) {
      hostConfig.Memory = spec.memoryBytes;
      hostConfig.MemorySwap = spec.memoryBytes; // memory + swap = memory: no swap beyond the limit
    }
    if (spec.cpu > 0) {
      hostConfig.CpuPeriod = CPU_PERIOD;
      hostConfig.CpuQuota = Math.max(MIN_CPU_QUOTA, Math.round(spec.cpu * CPU_PERIOD));
    }
    const body: Dockerode.ContainerCreateOptions = {
      Image: spec.image,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: gantryLabels(spec),
      ExposedPorts: exposed,
      HostConfig: hostConfig,
      Tty: false,
      AttachStdin: false,
      OpenStdin: false,
    };
    if (cmd) body.Cmd = cmd;
    if (spec.workdir) body.WorkingDir = spec.workdir;

    let id = await this.create(name, body, warnings);
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      const message = engineMessage(err);
      if (hostConfig.Init && /docker-init|init binary|init process/i.test(message)) {
        // The engine has no usable init binary: run without one rather than not at all.
        await this.forceRemove(this.docker.getContainer(id));
        warnings.push(`docker-init is not usable on this node (${message}); started without an init process: signals go straight to the command and zombies are not reaped`);
        hostConfig.Init = false;
        id = await this.create(name, body, warnings);
        try {
          await this.docker.getContainer(id).start();
        } catch (err2) {
          await this.forceRemove(this.docker.getContainer(id));
          throw new Error(`cannot start container ${name}: ${engineMessage(err2)}`);
        }
      } else {
        // Do not leave a never-started container behind (e.g. "port is already allocated").
        await this.forceRemove(this.docker.getContainer(id));
        throw new Error(`cannot start container ${name}: ${message}`);
      }
    }
    this.forget(spec.instanceId);
    const info = await this.docker.getContainer(id).inspect();
    return { instance: this.toInstance(info), warnings };
  }

  /** POST /containers/create directly so the engine's Warnings are not thrown away (dockerode drops them). */
  private create(name: string, body: Dockerode.ContainerCreateOptions, warnings: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          path: '/containers/create?',
          method: 'POST',
          options: { _query: { name }, _body: body },
          statusCodes: { 200: true, 201: true, 400: 'bad parameter', 404: 'no such image', 409: 'conflict', 500: 'server error' },
        },
        (err, data) => {
          if (err) {
            if (statusOf(err) === 404) {
              reject(new Error(`image "${body.Image}" not found on this node (no registry pull is attempted)`));
            } else {
              reject(new Error(`cannot create container ${name}: ${engineMessage(err)}`));
            }
            return;
          }
          const result = data as { Id: string; Warnings?: string[] | null };
          for (const w of result.Warnings ?? []) if (w) warnings.push(w);
          resolve(result.Id);
        },
      );
    });
  }

  async restart(instanceId: string): Promise<RuntimeInstance> {
    const container = this.container(instanceId);
    try {
      await container.start();
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) throw new Error(`no container for instance ${instanceId}`);
      if (status !== 304) throw new Error(`cannot restart container ${this.containerName(instanceId)}: ${engineMessage(err)}`);
      // 304: already running.
    }
    this.forget(instanceId);
    const info = await this.rawInspect(instanceId);
    if (!info) throw new Error(`container for instance ${instanceId} vanished while restarting`);
    return this.toInstance(info);
  }

  /** Resolves true once the container is not running (or gone), false after `ms`. */
  private async waitNotRunning(container: Dockerode.Container, ms: number): Promise<boolean> {
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        container.wait({ condition: 'not-running', abortSignal: abort.signal }).then(
          () => true,
          (err: unknown) => {
            if (statusOf(err) === 404) return true;
            if (abort.signal.aborted) return false;
            throw err;
          },
        ),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), Math.max(0, ms));
        }),
      ]);
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  private async kill(container: Dockerode.Container, signal: string): Promise<boolean> {
    try {
      await container.kill({ signal });
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 409) return false; // gone or not running
      throw new Error(`cannot send ${signal} to ${container.id}: ${engineMessage(err)}`);
    }
  }

  async stop(instanceId: string, signal: string, graceMs: number): Promise<void> {
    const info = await this.rawInspect(instanceId);
    if (!info || !isRunning(info)) return;
    const container = this.container(instanceId);
    this.forget(instanceId);
    if (!(await this.kill(container, signal || 'SIGTERM'))) return;
    if (await this.waitNotRunning(container, graceMs)) return;
    if (!(await this.kill(container, 'SIGKILL'))) return;
    if (!(await this.waitNotRunning(container, KILL_WAIT_MS))) {
      throw new Error(`container ${this.containerName(instanceId)} still running ${KILL_WAIT_MS / 1000}s after SIGKILL`);
    }
  }

  private async forceRemove(container: Dockerode.Container): Promise<void> {
    try {
      await container.remove({ force: true, v: true });
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return;
      if (status === 409 && /already in progress/i.test(engineMessage(err))) {
        // Someone else is removing it: wait for that to finish.
        for (let i = 0; i < 100; i++) {
          await sleep(100);
          try {
            await container.inspect();
          } catch (e) {
            if (statusOf(e) === 404) return;
          }
        }
      }
      throw new Error(`cannot remove container ${container.id}: ${engineMessage(err)}`);
    }
  }

  async remove(instanceId: string): Promise<void> {
    this.forget(instanceId);
    await this.forceRemove(this.container(instanceId));
  }

  async list(): Promise<RuntimeInstance[]> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.managed}=true`] },
    });
    const seenRunning = new Set<string>();
    const result: RuntimeInstance[] = [];
    for (const c of containers) {
      const name = (c.Names ?? []).map((n) => n.replace(/^\//, '')).find((n) => n.startsWith(this.prefix));
      if (!name) continue; // another agent's namespace
      const running = c.State === 'running' || c.State === 'restarting' || c.State === 'paused';
      if (running) {
        seenRunning.add(c.Id);
        const cached = this.runningCache.get(c.Id);
        if (cached) {
          result.push({ ...cached, labels: { ...c.Labels } });
          continue;
        }
      }
      // Exited ones are always inspected: the list has no OOMKilled, exact exit code or times.
      let info: Dockerode.ContainerInspectInfo;
      try {
        info = await this.docker.getContainer(c.Id).inspect();
      } catch (err) {
        if (statusOf(err) === 404) continue; // removed meanwhile
        throw err;
      }
      const inst = this.toInstance(info);
      if (inst.state === 'running') {
        seenRunning.add(c.Id);
        this.runningCache.set(c.Id, inst);
      }
      result.push(inst);
    }
    for (const id of this.runningCache.keys()) if (!seenRunning.has(id)) this.runningCache.delete(id);
    return result;
  }

  async inspect(instanceId: string): Promise<RuntimeInstance | undefined> {
    const info = await this.rawInspect(instanceId);
    return info ? this.toInstance(info) : undefined;
  }

  /**
   * docker exec with stdout and stderr interleaved (as 2>&1), capped at 64 KiB.
   * On timeout it does NOT reject: it resolves with exitCode 124 (like coreutils `timeout`) and
   * the output so far plus a note, so health checks treat it as an ordinary failure. Docker has
   * no API to kill an exec, so the command may keep running inside the container.
   * Rejects when the container is missing or not running.
   */
  async exec(instanceId: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    const container = this.container(instanceId);
    let exec: Dockerode.Exec;
    try {
      exec = await container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false });
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) throw new Error(`no container for instance ${instanceId}`);
      throw new Error(`cannot exec in ${this.containerName(instanceId)}: ${engineMessage(err)}`);
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
      throw new Error(`cannot exec in ${this.containerName(instanceId)}: ${engineMessage(err)}`);
    }
    stream.on('error', () => {}); // reported through the promise below; later ones do not matter
    this.docker.modem.demuxStream(stream, collect, collect);
    let timer: NodeJS.Timeout | undefined;
    const finished = await new Promise<boolean>((resolve, reject) => {
      const done = () => resolve(true);
      stream.once('end', done);
      stream.once('close', done);
      stream.once('error', (err: Error) => reject(new Error(`exec in ${this.containerName(instanceId)} failed: ${err.message}`)));
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

  /**
   * Log lines from the json-file driver, demultiplexed and split per stream. With follow the
   * Readable outlives the container's runs: when the engine ends the stream because the container
   * exited, it waits for the container to be started again (restart) and continues from the last
   * line seen; it ends when the container is removed, and destroying it closes the engine stream.
   */
  async logs(instanceId: string, options: LogOptions): Promise<Readable> {
    const container = this.container(instanceId);
    const initial = await this.rawInspect(instanceId);
    if (!initial) throw new Error(`no container for instance ${instanceId}`);
    // The run we last attached to; a different StartedAt means it was started again meanwhile
    // (even if that run already exited between two polls).
    let attachedStartedAt = initial.State.StartedAt;

    let current: NodeJS.ReadableStream & { destroy?: () => void } | undefined;
    let pollTimer: NodeJS.Timeout | undefined;
    let closed = false;
    let lastTs = ''; // RFC3339Nano (fixed width, UTC) of the last message seen
    const openLogs = this.openLogs;

    const out = new Readable({
      objectMode: true,
      read() {
        current?.resume();
      },
      destroy(err, callback) {
        closed = true;
        clearTimeout(pollTimer);
        current?.destroy?.();
        current = undefined;
        openLogs.delete(out);
        callback(err);
      },
    });
    openLogs.add(out);

    type StreamName = LogLine['stream'];
    const state: Record<StreamName, { text: string; time: number | null; decoder: StringDecoder }> = {
      stdout: { text: '', time: null, decoder: new StringDecoder('utf8') },
      stderr: { text: '', time: null, decoder: new StringDecoder('utf8') },
    };
    const emit = (line: LogLine) => {
      if (closed) return;
      if (!out.push(line)) current?.pause();
    };
    // demuxStream writes exactly one engine frame per write; with timestamps each frame is one
    // log message "<RFC3339Nano> <text>" (long lines come as several messages without "\n").
    const frameWriter = (stream: StreamName, skipUpTo: () => string) =>
      ({
        write(frame: Buffer): boolean {
          let body = frame;
          let time: number | null = null;
          const space = frame.indexOf(0x20);
          if (space > 0 && space <= 40) {
            const ts = frame.subarray(0, space).toString('latin1');
            if (/^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)$/.test(ts)) {
              if (ts <= skipUpTo()) return true; // already emitted before a re-attach
              if (ts > lastTs) lastTs = ts;
              time = parseDockerTime(ts);
              body = frame.subarray(space + 1);
            }
          }
          const s = state[stream];
          if (s.text === '') s.time = time;
          s.text += s.decoder.write(body);
          let nl: number;
          while ((nl = s.text.indexOf('\n')) >= 0) {
            emit({ stream, time: s.time, text: s.text.slice(0, nl).replace(/\r$/, '') });
            s.text = s.text.slice(nl + 1);
            s.time = time;
          }
          return true;
        },
      }) as unknown as NodeJS.WritableStream;
    const flush = () => {
      for (const stream of ['stdout', 'stderr'] as const) {
        const s = state[stream];
        s.text += s.decoder.end();
        if (s.text !== '') emit({ stream, time: s.time, text: s.text.replace(/\r$/, '') });
        s.text = '';
        s.time = null;
        s.decoder = new StringDecoder('utf8');
      }
    };
    const fail = (err: unknown) => {
      if (!closed) out.destroy(err instanceof Error ? err : new Error(String(err)));
    };

    const attach = async (first: boolean): Promise<void> => {
      const skipBefore = first ? '' : lastTs;
      const query: Dockerode.ContainerLogsOptions = { stdout: true, stderr: true, timestamps: true };
      if (first) {
        if (options.tail !== undefined) query.tail = Math.max(0, options.tail);
      } else if (lastTs) {
        query.since = toSince(lastTs);
      }
      let raw: Buffer | NodeJS.ReadableStream;
      try {
        raw = options.follow
          ? await container.logs({ ...query, follow: true })
          : await container.logs({ ...query, follow: false });
      } catch (err) {
        if (statusOf(err) === 404) {
          flush();
          if (!closed) out.push(null);
          return;
        }
        throw new Error(`cannot read logs of ${this.containerName(instanceId)}: ${engineMessage(err)}`);
      }
      const source: NodeJS.ReadableStream & { destroy?: () => void } = Buffer.isBuffer(raw) ? Readable.from([raw]) : raw;
      if (closed) {
        source.destroy?.();
        return;
      }
      current = source;
      this.docker.modem.demuxStream(source, frameWriter('stdout', () => skipBefore), frameWriter('stderr', () => skipBefore));
      let ended = false;
      const onEnd = () => {
        if (ended) return;
        ended = true;
        if (current === source) current = undefined;
        if (closed) return;
        flush();
        if (!options.follow) {
          out.push(null);
          return;
        }
        waitForRestart().catch(fail);
      };
      source.once('end', onEnd);
      source.once('close', onEnd);
      source.once('error', (err: Error) => {
        if (!closed) fail(err);
      });
    };

    // Following: the engine ended the stream, so the container exited or was removed.
    const waitForRestart = async (): Promise<void> => {
      if (closed) return;
      const info = await this.rawInspect(instanceId);
      if (closed) return;
      if (!info) {
        out.push(null); // removed: the end of this instance's logs
        return;
      }
      if (info.State.StartedAt !== attachedStartedAt) {
        attachedStartedAt = info.State.StartedAt;
        await attach(false);
        return;
      }
      if (isRunning(info)) {
        // Same run still "running": the engine has not recorded the exit yet, or it dropped the
        // stream; follow again shortly (from the last line seen).
        pollTimer = setTimeout(() => attach(false).catch(fail), 100);
        return;
      }
      pollTimer = setTimeout(() => waitForRestart().catch(fail), LOG_REATTACH_POLL_MS); // wait for a restart
    };

    await attach(true);
    return out;
  }

  async close(): Promise<void> {
    for (const stream of this.openLogs) stream.destroy();
    this.openLogs.clear();
    this.runningCache.clear();
  }
}

/** "2024-05-01T10:00:00.123456789Z" → "1714557600.123456789", the engine's `since` format. */
function toSince(ts: string): string {
  const ms = Date.parse(trimFraction(ts));
  const fraction = /\.(\d+)/.exec(ts)?.[1] ?? '';
  return `${Math.floor(ms / 1000)}.${fraction.padEnd(9, '0').slice(0, 9)}`;
}
