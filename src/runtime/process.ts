// The `process` runtime: host processes as Gantry instances, no containers.
//
// Every instance lives in <stateDir>/<instanceId>/: record.json (pid, pgid, /proc start time, spec,
// env, cwd, cgroups), stdout.log / stderr.log, and `exit` once it ended. Each instance runs under a
// small sh wrapper (process-wrapper.ts) started detached (own session and process group, stdio to
// files, unref'd), so instances outlive the agent. Nothing is held in memory: a new ProcessRuntime
// over the same stateDir adopts running instances from their records, and reads exit codes from the
// `exit` files the wrappers write. A pid counts as the instance only while /proc/<pid>/stat field 22
// (start time) matches the record, which guards against pid reuse.
//
// Volumes are directories <stateDir>/_volumes/<instanceId>/<name>, outside the instance directory
// (which every start recreates) and never taken for an instance ("_" cannot begin an instance id);
// the command finds each in GANTRY_VOLUME_<NAME>. They stay until remove() without keepVolumes.
import { spawn } from 'node:child_process';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import {
  cpusetList, createCgroups, isAlive, joinCgroups, killCgroups, oomKills, pidsOfGroup, procStat, procsOf, removeCgroups,
  setCpuset, type InstanceCgroups,
} from './cgroups.js';
import {
  FORWARDED_SIGNALS, WRAPPER, capLogFile, commandPrefix, followFiles, killGroup, logFiles, pushExisting,
  resolveExecutable, runCaptured, signalName,
} from './process-wrapper.js';
import {
  gantryLabels, portEnv, type ExecResult, type InitStep, type LogOptions, type RunSpec, type Runtime, type RuntimeInstance,
  type StartResult, type VolumeSpec,
} from './runtime.js';

export interface ProcessRuntimeOptions {
  stateDir: string;
  /** Cap per log stream; past it the file is rotated to <file>.1. Default 10 MiB. */
  logMaxBytes?: number;
  /** How often the log sizes are checked, ms. Default 5000. */
  logCheckMs?: number;
  /** Where cgroup filesystems are mounted. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** The cgroup (per controller on v1) instances are created under. Default "gantry". */
  cgroupParent?: string;
}

/** What the runtime keeps about one instance, in <stateDir>/<id>/record.json. */
export interface ProcessRecord {
  instanceId: string;
  /** The wrapper: session and process-group leader (pgid === pid). */
  pid: number;
  pgid: number;
  /** /proc/<pid>/stat field 22 of the wrapper, clock ticks since boot. */
  startTime: number;
  startedAt: number;
  spec: RunSpec;
  command: string[];
  env: Record<string, string>;
  cwd: string;
  stdout: string;
  stderr: string;
  cgroups: InstanceCgroups | null;
  warnings: string[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The exit code reported when a wrapper left no exit file: it was SIGKILLed itself (or the host rebooted). */
export const KILLED_EXIT_CODE = 137;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function assertId(id: string): void {
  if (!ID.test(id)) throw new Error(`invalid instance id ${JSON.stringify(id)}`);
}

/** Under the state dir, beside the instance dirs; not a valid instance id, so never listed as one. */
const VOLUMES_DIR = '_volumes';
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** How much of an init step's output is kept: its last 4 KiB. */
const INIT_OUTPUT_CAP = 4 * 1024;

/** GANTRY_VOLUME_<NAME>: upper case, anything but letters, digits and '_' (i.e. '-', '.') as '_'. */
export function volumeEnvName(name: string): string {
  return `GANTRY_VOLUME_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** The spec's volumes, checked: valid names, none twice, no two with the same variable. Throws a readable Error. */
function checkVolumes(spec: RunSpec): VolumeSpec[] {
  const volumes = spec.volumes ?? [];
  const vars = new Map<string, string>();
  for (const volume of volumes) {
    if (!VOLUME_NAME.test(volume.name)) {
      throw new Error(`instance ${spec.instanceId}: invalid volume name ${JSON.stringify(volume.name)} (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)`);
    }
    const name = volumeEnvName(volume.name);
    const other = vars.get(name);
    if (other !== undefined) {
      throw new Error(`instance ${spec.instanceId}: volumes ${JSON.stringify(other)} and ${JSON.stringify(volume.name)} would both be ${name}`);
    }
    vars.set(name, volume.name);
  }
  return volumes;
}

/**
 * The instance's environment: a minimal base taken from the agent (PATH, HOME, locale, TZ; never the
 * agent's other variables, which may hold its credentials), then spec.env, then the assigned ports.
 */
function buildEnv(spec: RunSpec): Record<string, string> {
  const base: Record<string, string> = { PATH: process.env.PATH || DEFAULT_PATH };
  for (const key of ['HOME', 'LANG', 'LC_ALL', 'TZ']) {
    const value = process.env[key];
    if (value) base[key] = value;
  }
  return { ...base, ...spec.env, ...portEnv(spec.ports, 'host') };
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, JSON.stringify(value, null, 2));
  await rename(`${path}.tmp`, path);
}

export class ProcessRuntime implements Runtime {
  readonly name = 'process' as const;
  private readonly stateDir: string;
  private readonly logMaxBytes: number;
  private readonly cgroupRoot: string;
  private readonly cgroupParent: string;
  private readonly capTimer: NodeJS.Timeout;
  private readonly followers = new Set<Readable>();
  private capping = false;

  constructor(options: ProcessRuntimeOptions) {
    this.stateDir = resolve(options.stateDir);
    this.logMaxBytes = options.logMaxBytes ?? 10 * 1024 * 1024;
    this.cgroupRoot = options.cgroupRoot ?? '/sys/fs/cgroup';
    this.cgroupParent = options.cgroupParent ?? 'gantry';
    this.capTimer = setInterval(() => void this.capLogs(), options.logCheckMs ?? 5000);
    this.capTimer.unref();
  }

  async probe(): Promise<{ ok: boolean; reason?: string }> {
    if (process.platform !== 'linux') return { ok: false, reason: `process runtime needs Linux (this is ${process.platform})` };
    try {
      await stat('/bin/sh');
      await mkdir(this.stateDir, { recursive: true });
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `process runtime: ${(err as Error).message}` };
    }
  }

  private dirOf(id: string): string {
    assertId(id);
    return join(this.stateDir, id);
  }

  private async readRecord(id: string): Promise<ProcessRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dirOf(id), 'record.json'), 'utf8')) as ProcessRecord;
    } catch {
      return undefined;
    }
  }

  private async exitFile(id: string): Promise<{ code: number; at: number } | undefined> {
    const path = join(this.dirOf(id), 'exit');
    try {
      const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      const code = Number.parseInt(text.trim(), 10);
      return Number.isFinite(code) ? { code, at: Math.round(info.mtimeMs) } : undefined;
    } catch {
      return undefined;
    }
  }

  private async toInstance(rec: ProcessRecord): Promise<RuntimeInstance> {
    const running = await isAlive(rec.pid, rec.startTime);
    const exit = running ? undefined : await this.exitFile(rec.instanceId);
    return {
      instanceId: rec.instanceId,
      runtimeId: `pid:${rec.pid}`,
      state: running ? 'running' : 'exited',
      // No exit file although the wrapper is gone: the wrapper itself was SIGKILLed, reported as 137.
      exitCode: running ? null : (exit?.code ?? KILLED_EXIT_CODE),
      oomKilled: !running && (await oomKills(rec.cgroups)) > 0,
      startedAt: rec.startedAt,
      finishedAt: exit?.at ?? null,
      labels: gantryLabels(rec.spec),
    };
  }

  async start(spec: RunSpec): Promise<StartResult> {
    const id = spec.instanceId;
    const dir = this.dirOf(id);
    const old = await this.readRecord(id);
    if (old && (await isAlive(old.pid, old.startTime))) throw new Error(`instance ${id} is already running (pid ${old.pid})`);
    checkVolumes(spec);
    // A leftover of the same instance goes, its volumes (the instance's data) stay.
    await this.remove(id, { keepVolumes: true });
    const command = [...(spec.command ?? []), ...spec.args];
    if (command.length === 0) throw new Error(`instance ${id}: the process runtime needs a command`);
    await mkdir(dir, { recursive: true });
    const cwd = spec.workdir ? resolve(dir, spec.workdir) : dir;
    try {
      if (!(await stat(cwd).catch(() => undefined))?.isDirectory()) throw new Error(`working directory ${cwd} does not exist`);
      const env = { ...buildEnv(spec), ...(await this.prepareVolumes(spec)) };
      const rec = await this.launch(spec, command, env, cwd);
      return { instance: await this.toInstance(rec), warnings: rec.warnings };
    } catch (err) {
      await this.remove(id, { keepVolumes: true }).catch(() => undefined);
      throw new Error(`instance ${id}: ${(err as Error).message}`);
    }
  }

  private volumesOf(id: string): string {
    assertId(id);
    return join(this.stateDir, VOLUMES_DIR, id);
  }

  /** Creates the spec's volume directories that do not exist yet; their GANTRY_VOLUME_* variables. */
  private async prepareVolumes(spec: RunSpec): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const volume of checkVolumes(spec)) {
      const path = join(this.volumesOf(spec.instanceId), volume.name);
      try {
        await mkdir(path, { recursive: true });
      } catch (err) {
        throw new Error(`cannot create volume ${volume.name} at ${path}: ${(err as Error).message}`);
      }
      env[volumeEnvName(volume.name)] = path;
    }
    return env;
  }

  /**
   * Runs the init step with the instance's environment (spec.env, port and volume variables, as
   * start() gives them) in the instance directory (created for it and removed again when there
   * was none), in its own process group; whatever is left of that group when the command exits
   * is killed. No cgroup limits. Resolves with the exit code and the last 4 KiB of stdout and
   * stderr as they came; past timeoutMs the group is killed: 124.
   */
  async runInit(spec: RunSpec, step: InitStep): Promise<ExecResult> {
    const id = spec.instanceId;
    const dir = this.dirOf(id);
    const [program, ...args] = step.command;
    if (!program) throw new Error(`instance ${id}: the init step needs a command`);
    checkVolumes(spec);
    const env = { ...buildEnv(spec), ...(await this.prepareVolumes(spec)) };
    const existed = (await stat(dir).catch(() => undefined)) !== undefined;
    await mkdir(dir, { recursive: true });
    try {
      return await runCaptured(program, args, dir, env, Math.max(0, step.timeoutMs), {
        cap: INIT_OUTPUT_CAP, keep: 'tail', what: 'init step', killGroupOnExit: true,
      });
    } finally {
      // An instance dir made only for the step goes again (start() makes its own).
      if (!existed && !(await this.readRecord(id))) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Starts the wrapper gated, puts it in the cgroups, writes the record, then lets the command run. */
  private async launch(spec: RunSpec, command: string[], env: Record<string, string>, cwd: string): Promise<ProcessRecord> {
    const id = spec.instanceId;
    const dir = this.dirOf(id);
    const program = command[0] as string;
    await resolveExecutable(program, env.PATH ?? '', cwd);
    for (const name of ['exit', 'exit.tmp', ...FORWARDED_SIGNALS.map((s) => `sent.${s}`)]) {
      await rm(join(dir, name), { force: true });
    }
    const limits = { cpu: spec.cpu, memoryBytes: spec.memoryBytes, cpuset: spec.cpuset, cpuShares: spec.cpuShares };
    const { cgroups, warnings } = await createCgroups(this.cgroupRoot, this.cgroupParent, id, limits);
    const { prefix, warning } = commandPrefix(program);
    if (warning) warnings.push(warning);
    const files = logFiles(dir);
    const out = await open(files.stdout, 'a');
    const err = await open(files.stderr, 'a');
    let child;
    try {
      child = spawn('/bin/sh', ['-c', WRAPPER, 'gantry-wrapper', dir, ...prefix, ...command], {
        cwd, env, detached: true, stdio: ['ignore', out.fd, err.fd, 'pipe'],
      });
    } finally {
      await out.close();
      await err.close();
    }
    const gate = child.stdio[3] as Socket;
    gate.on('error', () => undefined);
    child.on('error', () => undefined);
    const pid = child.pid;
    const st = pid === undefined ? undefined : await procStat(pid);
    if (pid === undefined || !st) {
      gate.destroy();
      if (cgroups) await removeCgroups(cgroups);
      throw new Error(`cannot start the wrapper /bin/sh in ${cwd}`);
    }
    if (cgroups) {
      try {
        await joinCgroups(cgroups, pid);
      } catch (e) {
        warnings.push(`limits not applied: cannot move the process into its cgroups: ${(e as Error).message}`);
      }
    }
    const rec: ProcessRecord = {
      instanceId: id, pid, pgid: pid, startTime: st.startTime, startedAt: Date.now(), spec, command, env, cwd,
      stdout: files.stdout, stderr: files.stderr, cgroups, warnings,
    };
    try {
      await writeJsonAtomic(join(dir, 'record.json'), rec);
    } catch (e) {
      gate.destroy(); // EOF without "go": the wrapper exits without running anything
      throw e;
    }
    await new Promise<void>((done) => gate.end('go\n', () => done()));
    gate.destroy();
    child.unref();
    return rec;
  }

  async restart(instanceId: string): Promise<RuntimeInstance> {
    const rec = await this.readRecord(instanceId);
    if (!rec) throw new Error(`no process instance ${instanceId}`);
    if (await isAlive(rec.pid, rec.startTime)) throw new Error(`instance ${instanceId} is already running (pid ${rec.pid})`);
    if (rec.cgroups) await removeCgroups(rec.cgroups); // fresh cgroups: resets the OOM counter
    await this.prepareVolumes(rec.spec); // still there unless someone deleted them: then empty ones
    const next = await this.launch(rec.spec, rec.command, rec.env, rec.cwd);
    return this.toInstance(next);
  }

  /** Polls until the wrapper is gone (a zombie counts as gone); false when timeoutMs passed first. */
  private async waitGone(rec: ProcessRecord, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!(await isAlive(rec.pid, rec.startTime))) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(25, Math.max(1, deadline - Date.now())));
    }
  }

  async stop(instanceId: string, signal: string, graceMs: number): Promise<void> {
    const rec = await this.readRecord(instanceId);
    if (!rec) throw new Error(`no process instance ${instanceId}`);
    const sig = signalName(signal);
    if (!(await isAlive(rec.pid, rec.startTime))) return;
    const short = sig.slice(3);
    // Tell the wrapper the whole group got it, so it does not forward it to the command again.
    if ((FORWARDED_SIGNALS as readonly string[]).includes(short)) await writeFile(join(this.dirOf(instanceId), `sent.${short}`), '');
    killGroup(rec.pgid, sig);
    let killed = false;
    if (!(await this.waitGone(rec, Math.max(0, graceMs)))) {
      killGroup(rec.pgid, 'SIGKILL');
      killed = true;
      if (!(await this.waitGone(rec, 10_000))) throw new Error(`instance ${instanceId}: pid ${rec.pid} survived SIGKILL`);
    }
    // Whatever the command left behind: the rest of its process group, and anything in its cgroups.
    killGroup(rec.pgid, 'SIGKILL');
    if (rec.cgroups) await killCgroups(rec.cgroups);
    if (killed && !(await this.exitFile(instanceId))) {
      await writeFile(join(this.dirOf(instanceId), 'exit'), `${KILLED_EXIT_CODE}\n`).catch(() => undefined);
    }
  }

  /**
   * Moves the instance to other cores ([] = any core) by rewriting cpuset.cpus of its cpuset cgroup:
   * the kernel re-pins every task in it at once, nothing restarts (same pid). An instance that has
   * no cpuset cgroup yet gets one, and every process of it (those in its other cgroups and its
   * process group) is moved in. The record keeps the new cores, so a restart runs on them; for an
   * exited instance only the record changes. Throws a readable Error when the cores cannot be set
   * (no cpuset controller, not root, cores the host does not have).
   */
  async updateCpuset(instanceId: string, cpuset: number[]): Promise<void> {
    const rec = await this.readRecord(instanceId);
    if (!rec) throw new Error(`no process instance ${instanceId}`);
    const cpus = cpusetList(cpuset);
    let cgroups = rec.cgroups;
    if (await isAlive(rec.pid, rec.startTime)) {
      const tasks = async () => {
        const pids = new Set(await pidsOfGroup(rec.pgid));
        for (const dir of rec.cgroups?.dirs ?? []) for (const pid of await procsOf(dir)) pids.add(pid);
        return [...pids];
      };
      try {
        cgroups = await setCpuset(this.cgroupRoot, this.cgroupParent, instanceId, rec.cgroups, cpuset, tasks);
      } catch (err) {
        throw new Error(`instance ${instanceId}: cannot move to cores ${cpus || 'any'}: ${(err as Error).message}`);
      }
    }
    const spec: RunSpec = { ...rec.spec, cpuset: cpus === '' ? undefined : cpus.split(',').map(Number) };
    await writeJsonAtomic(join(this.dirOf(instanceId), 'record.json'), { ...rec, spec, cgroups } satisfies ProcessRecord);
  }

  /** Kills what is left, removes cgroups, the instance dir and (unless keepVolumes) its volume dirs. */
  async remove(instanceId: string, options: { keepVolumes?: boolean } = {}): Promise<void> {
    const dir = this.dirOf(instanceId);
    const rec = await this.readRecord(instanceId);
    if (rec) {
      if (await isAlive(rec.pid, rec.startTime)) {
        killGroup(rec.pgid, 'SIGKILL');
        if (!(await this.waitGone(rec, 10_000))) throw new Error(`instance ${instanceId}: pid ${rec.pid} survived SIGKILL`);
      }
      if (rec.cgroups) {
        const failed = await removeCgroups(rec.cgroups);
        if (failed.length > 0) throw new Error(`instance ${instanceId}: cannot remove cgroups ${failed.join(', ')}`);
      }
    }
    // Cgroups created by a start that died before writing the record.
    const root = this.cgroupRoot;
    for (const cg of [join(root, 'cpu'), join(root, 'memory'), join(root, 'cpuset'), root]) {
      await rmdir(join(cg, this.cgroupParent, instanceId)).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
    if (!options.keepVolumes) await rm(this.volumesOf(instanceId), { recursive: true, force: true });
  }

  async list(): Promise<RuntimeInstance[]> {
    let names: string[];
    try {
      names = await readdir(this.stateDir);
    } catch {
      return [];
    }
    const out: RuntimeInstance[] = [];
    for (const name of names.sort()) {
      if (!ID.test(name)) continue;
      const rec = await this.readRecord(name);
      if (rec) out.push(await this.toInstance(rec));
    }
    return out;
  }

  async inspect(instanceId: string): Promise<RuntimeInstance | undefined> {
    const rec = await this.readRecord(instanceId);
    return rec ? this.toInstance(rec) : undefined;
  }

  /** The stored record (pid, cgroups, env, ...) of an instance; undefined when there is none. */
  record(instanceId: string): Promise<ProcessRecord | undefined> {
    return this.readRecord(instanceId);
  }

  /** Runs beside the instance: same env and cwd, not in its cgroups. Output capped at 64 KiB; 124 on timeout. */
  async exec(instanceId: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    const rec = await this.readRecord(instanceId);
    if (!rec) throw new Error(`no process instance ${instanceId}`);
    const [program, ...args] = command;
    if (!program) throw new Error('exec needs a command');
    return runCaptured(program, args, rec.cwd, rec.env, timeoutMs);
  }

  async logs(instanceId: string, options: LogOptions): Promise<Readable> {
    const dir = this.dirOf(instanceId);
    if (!(await stat(dir).catch(() => undefined))) throw new Error(`no process instance ${instanceId}`);
    const files = logFiles(dir);
    const out = new Readable({ objectMode: true, read() {} });
    const offsets = await pushExisting(out, files, options.tail, options.follow);
    if (!options.follow) {
      out.push(null);
      return out;
    }
    const stop = followFiles(out, files, offsets, dir);
    this.followers.add(out);
    out.once('close', () => {
      stop();
      this.followers.delete(out);
    });
    return out;
  }

  /** Rotates every instance log past logMaxBytes (see process-wrapper.ts); run periodically. */
  async capLogs(): Promise<void> {
    if (this.capping) return;
    this.capping = true;
    try {
      for (const name of await readdir(this.stateDir).catch(() => [] as string[])) {
        for (const file of ['stdout.log', 'stderr.log']) {
          await capLogFile(join(this.stateDir, name, file), this.logMaxBytes).catch(() => undefined);
        }
      }
    } finally {
      this.capping = false;
    }
  }

  /** Stops the log checks and open follows; instances keep running. */
  async close(): Promise<void> {
    clearInterval(this.capTimer);
    for (const stream of this.followers) stream.destroy();
    this.followers.clear();
  }
}
