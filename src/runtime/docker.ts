// The Docker runtime: one container per instance, talking to the Docker Engine API through
// dockerode (never the docker CLI). Containers are named `${namePrefix}${instanceId}` and carry
// the gantry.* labels; the name prefix is the namespace, so several agents (or test runs) can
// share one engine without seeing each other's containers.
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { engineMessage, isRunning, parseDockerTime, statusOf } from './docker-common.js';
import { forceRemove, kill, waitNotRunning } from './docker-container.js';
import { createAndStart, createBody, cpusetCpus, ensureImage } from './docker-create.js';
import { removeInstanceFiles, rewriteInstanceFiles, writeInstanceFiles, type RunFile, type WrittenFile } from './instance-files.js';
import { execInContainer } from './docker-exec.js';
import { DockerImages } from './docker-images.js';
import { INIT_LABEL, runInitContainer } from './docker-init.js';
import { openLogStream } from './docker-logs.js';
import { checkVolumes, ensureVolumes, removeVolumes } from './docker-volumes.js';
import { AddressPicker, containerAddress, ensureNetwork, type ManagedNetwork } from './docker-network.js';
import {
  LABEL,
  type ExecResult,
  type InitStep,
  type LogOptions,
  type RunSpec,
  type Runtime,
  type RuntimeInstance,
  type StartResult,
  type Terminal,
  type TerminalOptions,
} from './runtime.js';
import { containerTerminal } from './docker-terminal.js';

import { DockerUsage } from './docker-usage.js';
import type { UsageCounters } from './usage-counters.js';

export { EXEC_TIMEOUT_EXIT_CODE } from './docker-exec.js';
export { volumeName } from './docker-volumes.js';

export { INIT_LABEL } from './docker-init.js';

export interface DockerRuntimeOptions {
  /** Docker Engine socket; default: DOCKER_HOST or /var/run/docker.sock (dockerode's default). */
  socketPath?: string;
  /** A ready client (tests, remote engines); wins over socketPath. */
  docker?: Dockerode;
  /** Container name prefix; default 'gantry-'. */
  namePrefix?: string;
  /** json-file log driver max-size per file; default '10m'. */
  logMaxSize?: string;
  /** json-file log driver max-file: files kept per container; default 3. */
  logMaxFiles?: number;
  /**
   * Run docker-init (tini) as PID 1: forwards signals to the command and reaps zombies.
   * Default true. If the engine cannot find its init binary the container is started again
   * without it and StartResult.warnings says so.
   */
  init?: boolean;
  /**
   * Attach instances to this Gantry-managed bridge network (created if missing) instead of the
   * default bridge; each instance keeps its address there across restarts and rebuilds.
   */
  network?: ManagedNetwork;
  /** Where instances' files (secret values) are kept on the host, one 0700 directory each; without it an entry with files does not start. */
  filesDir?: string;
  /** Where the host's cgroup filesystems are mounted, for usage sampling; default /sys/fs/cgroup. */
  cgroupRoot?: string;
}

/** How long stop() waits after SIGKILL before giving up. */
const KILL_WAIT_MS = 30_000;
const PING_TIMEOUT_MS = 5_000;

/** `work`, or a rejection after `ms`: a hung engine must not hold up the agent's start or heartbeats. */
async function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000}s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  readonly images: DockerImages;
  private readonly docker: Dockerode;
  private readonly prefix: string;
  private readonly logMaxSize: string;
  private readonly logMaxFiles: number;
  private readonly init: boolean;
  private readonly where: string;
  /** inspect() results of running containers by container id: a running container's start time
   *  does not change until it exits, so list() only inspects a running container once. */
  private readonly runningCache = new Map<string, RuntimeInstance>();
  private readonly openLogs = new Set<Readable>();
  private readonly filesDir: string | undefined;
  private readonly network: ManagedNetwork | undefined;
  private readonly addresses: AddressPicker | undefined;
  private readonly usageReader: DockerUsage;

  constructor(options: DockerRuntimeOptions = {}) {
    this.docker = options.docker ?? (options.socketPath ? new Dockerode({ socketPath: options.socketPath }) : new Dockerode());
    this.images = new DockerImages(this.docker);
    this.prefix = options.namePrefix ?? 'gantry-';
    this.logMaxSize = options.logMaxSize ?? '10m';
    this.logMaxFiles = options.logMaxFiles ?? 3;
    this.init = options.init ?? true;
    this.network = options.network;
    this.filesDir = options.filesDir;
    this.addresses = options.network ? new AddressPicker(this.docker, options.network) : undefined;
    const modem = this.docker.modem as { socketPath?: unknown; host?: string; port?: number };
    this.where =
      typeof modem.socketPath === 'string'
        ? modem.socketPath
        : modem.host
          ? `${modem.host}${modem.port ? `:${modem.port}` : ''}`
          : (options.socketPath ?? '/var/run/docker.sock');
    this.usageReader = new DockerUsage(this.docker, (id) => this.containerName(id), options.cgroupRoot ?? '/sys/fs/cgroup', !modem.host);
  }

  private containerName(instanceId: string): string {
    return `${this.prefix}${instanceId}`;
  }

  private container(instanceId: string): Dockerode.Container {
    return this.docker.getContainer(this.containerName(instanceId));
  }

  /** The init step's container of an instance: `${prefix}${instanceId}-init`. */
  private initContainerName(instanceId: string): string {
    return `${this.containerName(instanceId)}-init`;
  }

  private forget(instanceId: string): void {
    for (const [id, inst] of this.runningCache) if (inst.instanceId === instanceId) this.runningCache.delete(id);
  }

  /**
   * The engine answers, and it can publish ports on the network instances are put on: its
   * default `bridge`, or the managed network (created here when missing, as a start would). An
   * engine without a bridge (dockerd --bridge none) ignores published ports without a word: every
   * instance would then fail its health checks and restart forever with no reason given, so the
   * runtime is unavailable instead, with what to do.
   */
  async probe(): Promise<{ ok: boolean; reason?: string }> {
    try {
      await within(this.docker.ping(), PING_TIMEOUT_MS);
    } catch (err) {
      return { ok: false, reason: `cannot reach Docker Engine at ${this.where}: ${engineMessage(err)}` };
    }
    if (this.network) {
      try {
        await within(ensureNetwork(this.docker, this.network), PING_TIMEOUT_MS);
        return { ok: true };
      } catch (err) {
        return { ok: false, reason: `--docker-network ${this.network.name}, where instances publish their ports, is unusable on the engine at ${this.where}: ${engineMessage(err)}` };
      }
    }
    try {
      await within(this.docker.getNetwork('bridge').inspect(), PING_TIMEOUT_MS);
      return { ok: true };
    } catch (err) {
      if (statusOf(err) !== 404) return { ok: false, reason: `cannot inspect the default bridge network of the engine at ${this.where}: ${engineMessage(err)}` };
      return {
        ok: false,
        reason: `the engine at ${this.where} has no default bridge network (dockerd --bridge none?), so published ports would be ignored: start the agent with --docker-network NAME (Gantry creates the bridge) or the engine with a bridge`,
      };
    }
  }

  private async rawInspect(instanceId: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
    try {
      const info = await this.container(instanceId).inspect();
      // The init container of instance "x" is named like an instance "x-init" would be: not an instance.
      return info.Config?.Labels?.[INIT_LABEL] === 'true' ? undefined : info;
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
      ...(this.network ? { ip: containerAddress(info, this.network.name) } : {}),
    };
  }

  async start(spec: RunSpec): Promise<StartResult> {
    const warnings: string[] = [];
    if (!spec.image) throw new Error(`instance ${spec.instanceId}: the docker runtime needs an image`);
    checkVolumes(spec);
    const name = this.containerName(spec.instanceId);

    const leftover = await this.rawInspect(spec.instanceId);
    if (leftover) {
      if (isRunning(leftover)) warnings.push(`removed a still running leftover container ${name}`);
      // Its volumes are the instance's data: the new container mounts them again.
      await this.remove(spec.instanceId, { keepVolumes: true });
    }

    await ensureImage(this.docker, spec.image);
    await ensureVolumes(this.docker, spec);
    const files = await this.writeFiles(spec);
    const address = await this.addresses?.pick(spec.ip, warnings);
    let id: string;
    try {
      const network = this.network ? { name: this.network.name, address } : undefined;
      const { body, hostConfig } = createBody(spec, { logMaxSize: this.logMaxSize, logMaxFiles: this.logMaxFiles, init: this.init, network, files });
      id = await createAndStart(this.docker, name, body, hostConfig, warnings);
    } finally {
      if (address) this.addresses?.created(address);
    }
    this.forget(spec.instanceId);
    const info = await this.docker.getContainer(id).inspect();
    return { instance: this.toInstance(info), warnings };
  }

  /**
   * Runs the init step in a one-off container `${prefix}${instanceId}-init` (see docker-init.ts);
   * a leftover one of the instance (an agent that died during the step) is removed first.
   */
  runInit(spec: RunSpec, step: InitStep): Promise<ExecResult> {
    return runInitContainer(this.docker, this.initContainerName(spec.instanceId), spec, step, { logMaxSize: this.logMaxSize, logMaxFiles: this.logMaxFiles, init: this.init });
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

  async stop(instanceId: string, signal: string, graceMs: number): Promise<void> {
    const info = await this.rawInspect(instanceId);
    if (!info || !isRunning(info)) return;
    const container = this.container(instanceId);
    this.forget(instanceId);
    if (!(await kill(container, signal || 'SIGTERM'))) return;
    if (await waitNotRunning(container, graceMs)) return;
    if (!(await kill(container, 'SIGKILL'))) return;
    if (!(await waitNotRunning(container, KILL_WAIT_MS))) {
      throw new Error(`container ${this.containerName(instanceId)} still running ${KILL_WAIT_MS / 1000}s after SIGKILL`);
    }
  }

  /**
   * Moves the container to other cores with POST /containers/{id}/update (CpusetCpus): the engine
   * rewrites the cgroup's cpuset.cpus of a running container, which keeps running (same process,
   * same StartedAt). An exited container is updated too (the engine allows it) so that a restart
   * runs on the new cores. An empty cpuset means any core: the engine ignores an empty CpusetCpus
   * in an update, so every core it reports (0..NCPU-1) is set instead. Cores the host does not
   * have are refused by the engine ("Requested CPUs are not available ..."), passed on as is.
   */
  async updateCpuset(instanceId: string, cpuset: number[]): Promise<void> {
    const name = this.containerName(instanceId);
    let cpus = cpusetCpus(cpuset);
    if (cpus === '') {
      const { NCPU } = (await this.docker.info()) as { NCPU?: number };
      const n = Math.max(1, NCPU ?? 1);
      cpus = n > 1 ? `0-${n - 1}` : '0';
    }
    try {
      await this.container(instanceId).update({ CpusetCpus: cpus });
    } catch (err) {
      if (statusOf(err) === 404) throw new Error(`no container for instance ${instanceId}`);
      throw new Error(`cannot move container ${name} to cores ${cpus}: ${engineMessage(err)}`);
    }
  }

  /**
   * Removes the container, a leftover init container, and (unless keepVolumes) the instance's
   * named volumes, found by their gantry.instance label.
   */
  async remove(instanceId: string, options: { keepVolumes?: boolean } = {}): Promise<void> {
    this.forget(instanceId);
    await forceRemove(this.container(instanceId));
    await forceRemove(this.docker.getContainer(this.initContainerName(instanceId)));
    if (!options.keepVolumes) await removeVolumes(this.docker, instanceId);
    if (this.filesDir) await removeInstanceFiles(this.filesOf(instanceId));
  }

  async signal(instanceId: string, signal: string): Promise<void> {
    if (!(await kill(this.container(instanceId), signal))) throw new Error(`instance ${instanceId} is not running`);
  }

  async rewriteFiles(instanceId: string, files: RunFile[]): Promise<void> {
    if (files.length > 0) await rewriteInstanceFiles(this.filesOf(instanceId), files, false);
  }

  private filesOf(instanceId: string): string {
    if (!this.filesDir || !/^[a-z0-9][a-z0-9-]*$/.test(instanceId)) throw new Error(`instance ${instanceId}: no place for its files`);
    return join(this.filesDir, instanceId);
  }

  /** The instance's files on the host, for bind mounts. */
  private async writeFiles(spec: RunSpec): Promise<WrittenFile[]> {
    if (!spec.files || spec.files.length === 0) return [];
    if (!this.filesDir) throw new Error(`instance ${spec.instanceId} has files, but this docker runtime has no directory to keep them in`);
    return writeInstanceFiles(this.filesOf(spec.instanceId), spec.files, false);
  }

  async list(): Promise<RuntimeInstance[]> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.managed}=true`] },
    });
    const seenRunning = new Set<string>();
    const result: RuntimeInstance[] = [];
    for (const c of containers) {
      if (c.Labels?.[INIT_LABEL] === 'true') continue; // an init step's container, not an instance
      const name = (c.Names ?? []).map((n) => n.replace(/^\//, '')).find((n) => n.startsWith(this.prefix));
      if (!name) continue; // another agent's namespace
      // Being removed (`docker rm -f` marks it before killing it): gone, not an instance that
      // exited with the kill's 137, which would be restarted as a crash and then found missing.
      if (c.State === 'removing') continue;
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
      if (info.State.Status === 'removing') continue;
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

  /** From the containers' cgroups and network namespaces on this host (docker-usage.ts). */
  usage(instanceIds: readonly string[]): Promise<Map<string, UsageCounters>> {
    return this.usageReader.usage(instanceIds);
  }

  async inspect(instanceId: string): Promise<RuntimeInstance | undefined> {
    const info = await this.rawInspect(instanceId);
    return info ? this.toInstance(info) : undefined;
  }

  /** See execInContainer: output capped at 64 KiB; a timeout resolves with exit code 124. */
  async exec(instanceId: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    return execInContainer(this.docker, this.container(instanceId), instanceId, this.containerName(instanceId), command, timeoutMs);
  }

  /** A shell in the container with a TTY (docker-terminal.ts). */
  terminal(instanceId: string, options: TerminalOptions): Promise<Terminal> {
    // A pid the engine reports is this host's only when the engine is on this host (a socket).
    const local = !(this.docker.modem as { host?: string }).host;
    return containerTerminal(this.container(instanceId), instanceId, options, local);
  }

  /** See openLogStream: with follow the stream continues across restarts until the container is removed. */
  async logs(instanceId: string, options: LogOptions): Promise<Readable> {
    return openLogStream(
      {
        docker: this.docker,
        container: this.container(instanceId),
        instanceId,
        containerName: this.containerName(instanceId),
        inspect: () => this.rawInspect(instanceId),
        openLogs: this.openLogs,
      },
      options,
    );
  }

  async close(): Promise<void> {
    for (const stream of this.openLogs) stream.destroy();
    this.openLogs.clear();
    this.runningCache.clear();
  }
}
