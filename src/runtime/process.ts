// The `process` runtime: host processes as Gantry instances, no containers.
//
// Every instance lives in <stateDir>/<instanceId>/: record.json (pid, pgid, /proc start time, spec,
// env, cwd, cgroups), stdout.log / stderr.log, and `exit` once it ended. Each instance runs under a
// small sh wrapper (process-wrapper.ts) started detached (own session and process group, stdio to
// files, unref'd), so instances outlive the agent. Everything is on disk (list() keeps copies of the
// records between calls, checked against their files: process-listing.ts): a new ProcessRuntime
// over the same stateDir adopts running instances from their records, and reads exit codes from the
// `exit` files the wrappers write. A pid counts as the instance only while /proc/<pid>/stat field 22
// (start time) matches the record, which guards against pid reuse.
//
// The state dir, records and volumes are in process-records.ts; listing in process-listing.ts;
// starting the wrapper and init steps in process-launch.ts; the wrapper itself, signals and exec in process-wrapper.ts; logs in
// process-logs.ts.
//
// Records hold the instances' env values (secrets): the state dir and instance dirs are 0700, the
// runtime's files 0600, and what an older version left readable is fixed on probe() / first start.
// The instances themselves run as before (their umask and working directory are untouched).
import { rewriteInstanceFiles, writeInstanceFiles, type RunFile } from './instance-files.js';
import { readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { PRIVATE_FILE_MODE, ensurePrivateDirAsync } from '../host/private-files.js';
import { cpusetList, isAlive, killCgroups, pidsOfGroup, procsOf, removeCgroups, setCpuset } from './cgroups.js';
import { launchInstance, runInitStep } from './process-launch.js';
import { ProcessListing } from './process-listing.js';
import { processUsage } from './process-usage.js';
import type { UsageCounters } from './usage-counters.js';
import { capLogFile, followFiles, logFiles, preparePrivateLogFiles, pushExisting } from './process-logs.js';
import {
  KILLED_EXIT_CODE, buildEnv, checkVolumes, fixPrivateModes, instanceDir, prepareVolumes, readExitFile, readRecord, toInstance,
  volumesDir, writeJsonAtomic, type ProcessRecord,
} from './process-records.js';
import { FORWARDED_SIGNALS, killGroup, runCaptured, signalName } from './process-wrapper.js';
import type { ExecResult, InitStep, LogOptions, RunSpec, Runtime, RuntimeInstance, StartResult, Terminal, TerminalOptions } from './runtime.js';
import { processTerminal } from './process-terminal.js';

export { KILLED_EXIT_CODE, volumeEnvName, type ProcessRecord } from './process-records.js';

export interface ProcessRuntimeOptions {
  stateDir: string;
  /** Cap per log stream; past it the file is rotated to <file>.1. Default 10 MiB. */
  logMaxBytes?: number;
  /** Files kept per stream, the live one included (rotated ones are <file>.1 … .N-1). Default 2. */
  logMaxFiles?: number;
  /** Rotated files last written longer ago are removed, and a live file is rotated once its oldest lines may be this old. Default: no age limit. */
  logMaxAgeMs?: number;
  /** How often the log sizes are checked, ms. Default 5000. */
  logCheckMs?: number;
  /** Where cgroup filesystems are mounted. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** The cgroup (per controller on v1) instances are created under. Default "gantry". */
  cgroupParent?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ProcessRuntime implements Runtime {
  readonly name = 'process' as const;
  private readonly stateDir: string;
  private readonly logMaxBytes: number;
  private readonly logRetention: { maxFiles: number; maxAgeMs?: number };
  private readonly cgroupRoot: string;
  private readonly cgroupParent: string;
  private readonly capTimer: NodeJS.Timeout;
  private readonly followers = new Set<Readable>();
  private readonly listing: ProcessListing;
  private capping = false;
  /** The state dir made (0700) and the modes an older version left fixed, once; retried after a failure. */
  private prepared: Promise<void> | undefined;

  constructor(options: ProcessRuntimeOptions) {
    this.stateDir = resolve(options.stateDir);
    this.logMaxBytes = options.logMaxBytes ?? 10 * 1024 * 1024;
    this.logRetention = { maxFiles: options.logMaxFiles ?? 2, ...(options.logMaxAgeMs !== undefined ? { maxAgeMs: options.logMaxAgeMs } : {}) };
    this.cgroupRoot = options.cgroupRoot ?? '/sys/fs/cgroup';
    this.cgroupParent = options.cgroupParent ?? 'gantry';
    this.listing = new ProcessListing(this.stateDir);
    // A round that fails (a file vanished, a full disk) is simply tried again at the next check.
    this.capTimer = setInterval(() => this.capLogs().catch(() => undefined), options.logCheckMs ?? 5000);
    this.capTimer.unref();
  }

  async probe(): Promise<{ ok: boolean; reason?: string }> {
    if (process.platform !== 'linux') return { ok: false, reason: `process runtime needs Linux (this is ${process.platform})` };
    try {
      await stat('/bin/sh');
      await this.prepareStateDir();
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `process runtime: ${(err as Error).message}` };
    }
  }

  private prepareStateDir(): Promise<void> {
    this.prepared ??= fixPrivateModes(this.stateDir).catch((err: unknown) => {
      this.prepared = undefined;
      throw err;
    });
    return this.prepared;
  }

  private dirOf(id: string): string {
    return instanceDir(this.stateDir, id);
  }

  private readRecord(id: string): Promise<ProcessRecord | undefined> {
    return readRecord(this.stateDir, id);
  }

  private exitFile(id: string): Promise<{ code: number; at: number } | undefined> {
    return readExitFile(this.stateDir, id);
  }

  private toInstance(rec: ProcessRecord): Promise<RuntimeInstance> {
    return toInstance(this.stateDir, rec);
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
    await this.prepareStateDir();
    await ensurePrivateDirAsync(dir);
    const cwd = spec.workdir ? resolve(dir, spec.workdir) : dir;
    try {
      if (!(await stat(cwd).catch(() => undefined))?.isDirectory()) throw new Error(`working directory ${cwd} does not exist`);
      const env = { ...buildEnv(spec), ...(await this.prepareVolumes(spec)), ...(await this.writeFiles(spec, dir)) };
      const rec = await this.launch(spec, command, env, cwd);
      return { instance: await this.toInstance(rec), warnings: rec.warnings };
    } catch (err) {
      await this.remove(id, { keepVolumes: true }).catch(() => undefined);
      throw new Error(`instance ${id}: ${(err as Error).message}`);
    }
  }

  /** The instance's files, 0700 directory and their own modes (0400 by default), in its directory (gone with it): GANTRY_FILES names where. */
  private async writeFiles(spec: RunSpec, dir: string): Promise<Record<string, string>> {
    if (!spec.files || spec.files.length === 0) return {};
    const root = join(dir, 'files');
    await writeInstanceFiles(root, spec.files, true);
    return { GANTRY_FILES: root };
  }

  private volumesOf(id: string): string {
    return volumesDir(this.stateDir, id);
  }

  /** Creates the spec's volume directories that do not exist yet; their GANTRY_VOLUME_* variables. */
  private prepareVolumes(spec: RunSpec): Promise<Record<string, string>> {
    return prepareVolumes(this.stateDir, spec);
  }

  /** Runs an init step beside where the instance will run (see runInitStep in process-launch.ts). */
  runInit(spec: RunSpec, step: InitStep): Promise<ExecResult> {
    return runInitStep(this.stateDir, spec, step);
  }

  /** Starts the wrapper gated, puts it in the cgroups, writes the record, then lets the command run. */
  private async launch(spec: RunSpec, command: string[], env: Record<string, string>, cwd: string): Promise<ProcessRecord> {
    const place = { stateDir: this.stateDir, cgroupRoot: this.cgroupRoot, cgroupParent: this.cgroupParent };
    await preparePrivateLogFiles(this.dirOf(spec.instanceId)); // 0600 before the wrapper opens them to append
    return launchInstance(place, spec, command, env, cwd);
  }

  async restart(instanceId: string): Promise<RuntimeInstance> {
    const rec = await this.readRecord(instanceId);
    if (!rec) throw new Error(`no process instance ${instanceId}`);
    if (await isAlive(rec.pid, rec.startTime)) throw new Error(`instance ${instanceId} is already running (pid ${rec.pid})`);
    await this.prepareStateDir();
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

  async signal(instanceId: string, signal: string): Promise<void> {
    const rec = await this.readRecord(instanceId);
    if (!rec || !(await isAlive(rec.pid, rec.startTime))) throw new Error(`instance ${instanceId} is not running`);
    const sig = signalName(signal);
    const short = sig.slice(3);
    // As for a stop: the wrapper must not forward what the whole group got already.
    if ((FORWARDED_SIGNALS as readonly string[]).includes(short)) await writeFile(join(this.dirOf(instanceId), `sent.${short}`), '', { mode: PRIVATE_FILE_MODE });
    killGroup(rec.pgid, sig);
  }

  async rewriteFiles(instanceId: string, files: RunFile[]): Promise<void> {
    if (files.length > 0) await rewriteInstanceFiles(join(this.dirOf(instanceId), 'files'), files, true);
  }

  async stop(instanceId: string, signal: string, graceMs: number): Promise<void> {
    const rec = await this.readRecord(instanceId);
    if (!rec) throw new Error(`no process instance ${instanceId}`);
    const sig = signalName(signal);
    if (!(await isAlive(rec.pid, rec.startTime))) return;
    const short = sig.slice(3);
    // Tell the wrapper the whole group got it, so it does not forward it to the command again.
    if ((FORWARDED_SIGNALS as readonly string[]).includes(short)) await writeFile(join(this.dirOf(instanceId), `sent.${short}`), '', { mode: PRIVATE_FILE_MODE });
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
      await writeFile(join(this.dirOf(instanceId), 'exit'), `${KILLED_EXIT_CODE}\n`, { mode: PRIVATE_FILE_MODE }).catch(() => undefined);
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

  /**
   * Every instance in the state dir, from records kept between calls (see process-listing.ts). An
   * instance that did not change is the same object as in the previous listing: not to be changed.
   */
  list(): Promise<RuntimeInstance[]> {
    return this.listing.list();
  }

  /** From the records of the last listing (the agent lists every tick): process-usage.ts. */
  async usage(instanceIds: readonly string[]): Promise<Map<string, UsageCounters>> {
    const wanted = new Set(instanceIds);
    return processUsage(this.listing.runningRecords().filter((record) => wanted.has(record.instanceId)), this.cgroupRoot);
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

  /** A shell under a pseudo-terminal in the instance's working directory, with its environment (process-terminal.ts). */
  async terminal(instanceId: string, options: TerminalOptions): Promise<Terminal> {
    const rec = await this.readRecord(instanceId);
    if (!rec || (await this.inspect(instanceId))?.state !== 'running') throw new Error(`process instance ${instanceId} is not running`);
    return processTerminal(rec.cwd, rec.env, options);
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

  /** Rotates every instance log past logMaxBytes or the age limit (see process-logs.ts); run periodically. */
  async capLogs(): Promise<void> {
    if (this.capping) return;
    this.capping = true;
    try {
      for (const name of await readdir(this.stateDir).catch(() => [] as string[])) {
        for (const file of ['stdout.log', 'stderr.log']) {
          await capLogFile(join(this.stateDir, name, file), this.logMaxBytes, this.logRetention).catch(() => undefined);
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
