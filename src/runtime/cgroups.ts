// CPU and memory limits for process instances through Linux cgroups, v1 or v2.
//
// v1: one directory per controller, <root>/cpu/<parent>/<id> and <root>/memory/<parent>/<id>.
// v2: one directory, <root>/<parent>/<id>, with cpu and memory enabled in the parents' subtree_control.
// v2 is detected by <root>/cgroup.controllers (a hybrid host with only a v2 "unified" mount beside the
// v1 hierarchies counts as v1). Nothing here throws for a limit that cannot be applied: the caller gets
// a warning that says which limit and why, and the instance starts without it.
// Also the /proc readers the runtime identifies its processes with (start time, state, children).
import { constants as fsc } from 'node:fs';
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CPU_PERIOD_US = 100_000;

export interface CgroupLimits {
  /** CPUs, fractional; 0 or less: no CPU limit. */
  cpu: number;
  /** 0 or less: no memory limit. */
  memoryBytes: number;
}

/** The cgroups one instance was put in; stored in its record so a later agent can clean up. */
export interface InstanceCgroups {
  version: 1 | 2;
  /** Every directory created for the instance (v1: one per controller; v2: one). */
  dirs: string[];
  /** The directory holding memory.oom_control (v1) / memory.events (v2), when memory is limited. */
  memoryDir: string | null;
}

export interface CgroupSetup {
  cgroups: InstanceCgroups | null;
  warnings: string[];
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, fsc.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function write(dir: string, file: string, value: string): Promise<void> {
  await writeFile(join(dir, file), value);
}

function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const msg = e.code ? `${e.code}${e.path ? ` on ${e.path}` : ''}` : String(e.message ?? err);
  const uid = process.getuid?.();
  const denied = e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS';
  return denied && uid !== 0 ? `${msg} (not running as root, uid ${uid})` : msg;
}

export function cpuQuotaUs(cpu: number): number {
  return Math.max(1000, Math.round(cpu * CPU_PERIOD_US));
}

function describe(limits: CgroupLimits): { cpu: string; memory: string } {
  return {
    cpu: `cpu limit (${limits.cpu} CPU)`,
    memory: `memory limit (${limits.memoryBytes} bytes)`,
  };
}

/** Which cgroup version is usable under root, or why none is. */
export async function detectCgroups(root: string): Promise<{ version: 1 | 2 } | { version: null; reason: string }> {
  if (process.platform !== 'linux') return { version: null, reason: `cgroups need Linux (this is ${process.platform})` };
  if (await exists(join(root, 'cgroup.controllers'))) return { version: 2 };
  if ((await exists(join(root, 'cpu', 'cgroup.procs'))) || (await exists(join(root, 'memory', 'cgroup.procs')))) {
    return { version: 1 };
  }
  return {
    version: null,
    reason: `no cgroup filesystem at ${root} (neither v2 cgroup.controllers nor v1 cpu/memory hierarchies)`,
  };
}

/**
 * Creates the instance's cgroups and writes the limits. The caller then moves the (still gated)
 * wrapper into them with joinCgroups before the command starts, so every child inherits them.
 */
export async function createCgroups(root: string, parent: string, id: string, limits: CgroupLimits): Promise<CgroupSetup> {
  const wantCpu = limits.cpu > 0;
  const wantMemory = limits.memoryBytes > 0;
  if (!wantCpu && !wantMemory) return { cgroups: null, warnings: [] };
  const what = describe(limits);
  const wanted = [wantCpu ? what.cpu : '', wantMemory ? what.memory : ''].filter(Boolean).join(' and ');
  const detected = await detectCgroups(root);
  if (detected.version === null) return { cgroups: null, warnings: [`${wanted} not applied: ${detected.reason}`] };
  return detected.version === 1 ? createV1(root, parent, id, limits) : createV2(root, parent, id, limits, wanted);
}

async function createV1(root: string, parent: string, id: string, limits: CgroupLimits): Promise<CgroupSetup> {
  const what = describe(limits);
  const warnings: string[] = [];
  const dirs: string[] = [];
  let memoryDir: string | null = null;
  const controller = async (name: 'cpu' | 'memory', label: string, apply: (dir: string) => Promise<void>) => {
    const base = join(root, name);
    if (!(await exists(join(base, 'cgroup.procs')))) {
      warnings.push(`${label} not applied: no cgroup v1 ${name} controller mounted at ${base}`);
      return;
    }
    const dir = join(base, parent, id);
    try {
      await mkdir(dir, { recursive: true });
      await apply(dir);
      dirs.push(dir);
      if (name === 'memory') memoryDir = dir;
    } catch (err) {
      warnings.push(`${label} not applied: ${reasonOf(err)}`);
      await rmdir(dir).catch(() => undefined);
    }
  };
  if (limits.cpu > 0) {
    await controller('cpu', what.cpu, async (dir) => {
      await write(dir, 'cpu.cfs_period_us', String(CPU_PERIOD_US));
      await write(dir, 'cpu.cfs_quota_us', String(cpuQuotaUs(limits.cpu)));
    });
  }
  if (limits.memoryBytes > 0) {
    await controller('memory', what.memory, async (dir) => {
      await write(dir, 'memory.limit_in_bytes', String(limits.memoryBytes));
      // Memory + swap: without it the limit only pushes the process into swap.
      if (await exists(join(dir, 'memory.memsw.limit_in_bytes'))) {
        await write(dir, 'memory.memsw.limit_in_bytes', String(limits.memoryBytes));
      }
    });
  }
  return { cgroups: dirs.length > 0 ? { version: 1, dirs, memoryDir } : null, warnings };
}

async function createV2(root: string, parent: string, id: string, limits: CgroupLimits, wanted: string): Promise<CgroupSetup> {
  const what = describe(limits);
  const warnings: string[] = [];
  let available: string[];
  try {
    available = (await readFile(join(root, 'cgroup.controllers'), 'utf8')).trim().split(/\s+/);
  } catch (err) {
    return { cgroups: null, warnings: [`${wanted} not applied: ${reasonOf(err)}`] };
  }
  const useCpu = limits.cpu > 0 && available.includes('cpu');
  const useMemory = limits.memoryBytes > 0 && available.includes('memory');
  if (limits.cpu > 0 && !useCpu) warnings.push(`${what.cpu} not applied: cgroup v2 cpu controller not available at ${root}`);
  if (limits.memoryBytes > 0 && !useMemory) {
    warnings.push(`${what.memory} not applied: cgroup v2 memory controller not available at ${root}`);
  }
  if (!useCpu && !useMemory) return { cgroups: null, warnings };
  const enable = [useCpu ? '+cpu' : '', useMemory ? '+memory' : ''].filter(Boolean).join(' ');
  const parentDir = join(root, parent);
  const dir = join(parentDir, id);
  try {
    await write(root, 'cgroup.subtree_control', enable);
    await mkdir(parentDir, { recursive: true });
    await write(parentDir, 'cgroup.subtree_control', enable);
    await mkdir(dir, { recursive: true });
  } catch (err) {
    await rmdir(dir).catch(() => undefined);
    return { cgroups: null, warnings: [...warnings, `${wanted} not applied: ${reasonOf(err)}`] };
  }
  let memoryDir: string | null = null;
  if (useCpu) {
    try {
      await write(dir, 'cpu.max', `${cpuQuotaUs(limits.cpu)} ${CPU_PERIOD_US}`);
    } catch (err) {
      warnings.push(`${what.cpu} not applied: ${reasonOf(err)}`);
    }
  }
  if (useMemory) {
    try {
      await write(dir, 'memory.max', String(limits.memoryBytes));
      if (await exists(join(dir, 'memory.swap.max'))) await write(dir, 'memory.swap.max', '0');
      memoryDir = dir;
    } catch (err) {
      warnings.push(`${what.memory} not applied: ${reasonOf(err)}`);
    }
  }
  return { cgroups: { version: 2, dirs: [dir], memoryDir }, warnings };
}

/** Moves pid (the gated wrapper, before it starts the command) into every cgroup of the instance. */
export async function joinCgroups(cgroups: InstanceCgroups, pid: number): Promise<void> {
  for (const dir of cgroups.dirs) await write(dir, 'cgroup.procs', String(pid));
}

async function procsOf(dir: string): Promise<number[]> {
  try {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8');
    return text.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGKILLs whatever is still in the instance's cgroups (e.g. daemons that left the process group). */
export async function killCgroups(cgroups: InstanceCgroups): Promise<void> {
  for (const dir of cgroups.dirs) {
    if (cgroups.version === 2 && (await exists(join(dir, 'cgroup.kill')))) {
      await write(dir, 'cgroup.kill', '1').catch(() => undefined);
      continue;
    }
    for (const pid of await procsOf(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Removes the instance's cgroups, killing stragglers; retries while the kernel still counts exiting tasks. */
export async function removeCgroups(cgroups: InstanceCgroups): Promise<string[]> {
  const failed: string[] = [];
  for (const dir of cgroups.dirs) {
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (attempt >= 50) {
          failed.push(`${dir}: ${code}`);
          break;
        }
        if (attempt % 10 === 0) await killCgroups({ ...cgroups, dirs: [dir] });
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  return failed;
}

/** How many times the kernel OOM-killed a task in the instance's memory cgroup (0 when unknown). */
export async function oomKills(cgroups: InstanceCgroups | null): Promise<number> {
  if (!cgroups?.memoryDir) return 0;
  const file = cgroups.version === 1 ? 'memory.oom_control' : 'memory.events';
  try {
    const text = await readFile(join(cgroups.memoryDir, file), 'utf8');
    const m = /^oom_kill (\d+)$/m.exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The cgroups of a process from /proc/<pid>/cgroup: controller ("cpu", "memory", "" for v2) → path. */
export async function cgroupsOfPid(pid: number): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  const text = await readFile(`/proc/${pid}/cgroup`, 'utf8');
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const controller of (m[1] ?? '').split(',')) map.set(controller, m[2] ?? '');
  }
  return map;
}

// ---- /proc -----------------------------------------------------------------------------------

export interface ProcStat {
  state: string;
  pgid: number;
  /** Field 22: start time in clock ticks since boot; with the pid it identifies one process. */
  startTime: number;
}

export async function procStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', pgid: Number(fields[2]), startTime: Number(fields[19]) };
}

/** Whether pid is still the very process that started at startTime (not a zombie, not a reused pid). */
export async function isAlive(pid: number, startTime: number): Promise<boolean> {
  const st = await procStat(pid);
  return st !== undefined && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

/** The direct children of pid (needs CONFIG_PROC_CHILDREN; [] otherwise). */
export async function childrenOf(pid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
