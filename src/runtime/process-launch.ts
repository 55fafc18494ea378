// Starting things for the process runtime: an instance's gated sh wrapper (into its cgroups, record
// written, then "go"), and init steps run before an instance starts.
import { spawn } from 'node:child_process';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { createCgroups, joinCgroups, procStat, removeCgroups } from './cgroups.js';
import { startLogWriter, logWriterSupport } from './process-log-writer.js';
import { logFiles, type StreamName } from './process-logs.js';
import {
  buildEnv, checkVolumes, instanceDir, prepareVolumes, readRecord, writeJsonAtomic, type ProcessRecord,
} from './process-records.js';
import { FORWARDED_SIGNALS, WRAPPER, commandPrefix, resolveExecutable, runCaptured } from './process-wrapper.js';
import type { ExecResult, InitStep, RunSpec } from './runtime.js';

/** How much of an init step's output is kept: its last 4 KiB. */
const INIT_OUTPUT_CAP = 4 * 1024;

/** Where a runtime keeps its instances and puts their cgroups. */
export interface LaunchPlace {
  stateDir: string;
  cgroupRoot: string;
  cgroupParent: string;
}

/**
 * Runs the init step with the instance's environment (spec.env, port and volume variables, as
 * start() gives them) in the instance directory (created for it and removed again when there
 * was none), in its own process group; whatever is left of that group when the command exits
 * is killed. No cgroup limits. Resolves with the exit code and the last 4 KiB of stdout and
 * stderr as they came; past timeoutMs the group is killed: 124.
 */
export async function runInitStep(stateDir: string, spec: RunSpec, step: InitStep): Promise<ExecResult> {
  const id = spec.instanceId;
  const dir = instanceDir(stateDir, id);
  const [program, ...args] = step.command;
  if (!program) throw new Error(`instance ${id}: the init step needs a command`);
  checkVolumes(spec);
  const env = { ...buildEnv(spec), ...(await prepareVolumes(stateDir, spec)) };
  const existed = (await stat(dir).catch(() => undefined)) !== undefined;
  await mkdir(dir, { recursive: true });
  try {
    return await runCaptured(program, args, dir, env, Math.max(0, step.timeoutMs), {
      cap: INIT_OUTPUT_CAP, keep: 'tail', what: 'init step', killGroupOnExit: true,
    });
  } finally {
    // An instance dir made only for the step goes again (start() makes its own).
    if (!existed && !(await readRecord(stateDir, id))) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Starts the wrapper gated, puts it in the cgroups, writes the record, then lets the command run. */
export async function launchInstance(
  place: LaunchPlace,
  spec: RunSpec,
  command: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<ProcessRecord> {
  const id = spec.instanceId;
  const dir = instanceDir(place.stateDir, id);
  const program = command[0] as string;
  await resolveExecutable(program, env.PATH ?? '', cwd);
  for (const name of ['exit', 'exit.tmp', 'log-writer.pid', ...FORWARDED_SIGNALS.map((s) => `sent.${s}`)]) {
    await rm(join(dir, name), { force: true });
  }
  const limits = { cpu: spec.cpu, memoryBytes: spec.memoryBytes, cpuset: spec.cpuset, cpuShares: spec.cpuShares };
  const { cgroups, warnings } = await createCgroups(place.cgroupRoot, place.cgroupParent, id, limits);
  const { prefix, warning } = commandPrefix(program);
  if (warning) warnings.push(warning);
  const files = logFiles(dir);
  const output = await openOutput(dir, files, warnings);
  let child;
  try {
    child = spawn('/bin/sh', ['-c', WRAPPER, 'gantry-wrapper', dir, ...prefix, ...command], {
      cwd, env, detached: true, stdio: ['ignore', output.stdout, output.stderr, 'pipe'],
    });
  } finally {
    await output.release();
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

/**
 * Where the command's stdout and stderr go: the pipes of a log writer that stamps each line
 * (process-log-writer.ts), or, on a host without one (a warning says so), the files themselves.
 */
async function openOutput(dir: string, files: Record<StreamName, string>, warnings: string[]): Promise<{ stdout: number; stderr: number; release(): Promise<void> }> {
  const support = logWriterSupport();
  if (support.ok) {
    try {
      return await startLogWriter(dir, files);
    } catch (err) {
      warnings.push(`log lines carry no times: ${(err as Error).message}`);
    }
  } else if (support.why) {
    warnings.push(support.why);
  }
  const out = await open(files.stdout, 'a');
  const err = await open(files.stderr, 'a').catch(async (e: unknown) => {
    await out.close();
    throw e;
  });
  return {
    stdout: out.fd,
    stderr: err.fd,
    release: async () => {
      await out.close();
      await err.close();
    },
  };
}
