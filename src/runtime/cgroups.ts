// CPU and memory limits and CPU placement for process instances through Linux cgroups, v1 or v2.
//
// v1: one directory per controller, <root>/cpu/<parent>/<id>, <root>/memory/<parent>/<id> and
// <root>/cpuset/<parent>/<id>. A v1 cpuset cgroup only takes tasks once its cpuset.cpus and
// cpuset.mems are set, and a new one starts with both empty: so every level of <parent> gets its
// own parent's values when they are empty (the root's for the first level), and the instance's
// cgroup gets its cores and its parent's mems.
// v2: one directory, <root>/<parent>/<id>, with cpu, memory and cpuset enabled in the parents'
// subtree_control as needed; cpu.shares is converted to cpu.weight.
// v2 is detected by <root>/cgroup.controllers (a hybrid host with only a v2 "unified" mount beside the
// v1 hierarchies counts as v1). Nothing here throws for a limit that cannot be applied: the caller gets
// a warning that says which limit and why, and the instance starts without it.
// Also the /proc readers the runtime identifies its processes with (start time, state, children).
import { constants as fsc } from 'node:fs';
import { access, mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CPU_PERIOD_US = 100_000;

export interface CgroupLimits {
  /** CPUs, fractional; 0 or less: no CPU limit. */
  cpu: number;
  /** 0 or less: no memory limit. */
  memoryBytes: number;
  /** Cores the instance may run on; undefined or empty: any core. */
  cpuset?: number[];
  /** Relative weight as cgroup v1 cpu.shares (1024 = one core); undefined or 0: the default. */
  cpuShares?: number;
}

/** The cgroups one instance was put in; stored in its record so a later agent can clean up. */
export interface InstanceCgroups {
  version: 1 | 2;
  /** Every directory created for the instance (v1: one per controller; v2: one). */
  dirs: string[];
  /** The directory holding memory.oom_control (v1) / memory.events (v2), when memory is limited. */
  memoryDir: string | null;
  /** The directory whose cpuset.cpus holds the instance's cores, once a cpuset was applied
   *  (absent in records written before cpusets existed). */
  cpusetDir?: string | null;
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

async function readTrim(dir: string, file: string): Promise<string> {
  return (await readFile(join(dir, file), 'utf8')).trim();
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

/** cpu.shares within the kernel's range [2, 262144]. */
export function clampShares(shares: number): number {
  return Math.min(262_144, Math.max(2, Math.round(shares)));
}

/** cgroup v1 cpu.shares → v2 cpu.weight [1, 10000], the conversion systemd and Kubernetes use. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((clampShares(shares) - 2) * 9999) / 262_142);
}

/**
 * A cpuset in the kernel's list format: sorted, de-duplicated core numbers joined with ','
 * ("0,1"); "" for an empty list. Throws on anything but non-negative integers.
 */
export function cpusetList(cpuset: readonly number[]): string {
  const bad = cpuset.filter((core) => !Number.isSafeInteger(core) || core < 0);
  if (bad.length > 0) throw new Error(`invalid cpuset ${JSON.stringify(cpuset)}: core numbers must be non-negative integers`);
  return [...new Set(cpuset)].sort((a, b) => a - b).join(',');
}

const wantsCpuset = (limits: CgroupLimits) => (limits.cpuset?.length ?? 0) > 0;
const wantsShares = (limits: CgroupLimits) => (limits.cpuShares ?? 0) > 0;

function describe(limits: CgroupLimits): { cpu: string; memory: string; cpuset: string; shares: string } {
  return {
    cpu: `cpu limit (${limits.cpu} CPU)`,
    memory: `memory limit (${limits.memoryBytes} bytes)`,
    cpuset: `cpuset (cores ${(limits.cpuset ?? []).join(',')})`,
    shares: `cpu shares (${limits.cpuShares ?? 0})`,
  };
}

/** "a", "a and b", "a, b and c". */
function listOf(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Which cgroup version is usable under root, or why none is. */
export async function detectCgroups(root: string): Promise<{ version: 1 | 2 } | { version: null; reason: string }> {
  if (process.platform !== 'linux') return { version: null, reason: `cgroups need Linux (this is ${process.platform})` };
  if (await exists(join(root, 'cgroup.controllers'))) return { version: 2 };
  for (const controller of ['cpu', 'memory', 'cpuset']) {
    if (await exists(join(root, controller, 'cgroup.procs'))) return { version: 1 };
  }
  return {
    version: null,
    reason: `no cgroup filesystem at ${root} (neither v2 cgroup.controllers nor v1 cpu/memory/cpuset hierarchies)`,
  };
}

/**
 * Creates the instance's cgroups and writes the limits and cores. The caller then moves the (still
 * gated) wrapper into them with joinCgroups before the command starts, so every child inherits them.
 */
export async function createCgroups(root: string, parent: string, id: string, limits: CgroupLimits): Promise<CgroupSetup> {
  const what = describe(limits);
  const wanted = [
    limits.cpu > 0 ? what.cpu : '',
    limits.memoryBytes > 0 ? what.memory : '',
    wantsCpuset(limits) ? what.cpuset : '',
    wantsShares(limits) ? what.shares : '',
  ].filter(Boolean);
  if (wanted.length === 0) return { cgroups: null, warnings: [] };
  const warnings: string[] = [];
  if (wantsCpuset(limits)) {
    try {
      cpusetList(limits.cpuset ?? []);
    } catch (err) {
      warnings.push(`${what.cpuset} not applied: ${(err as Error).message}`);
      limits = { ...limits, cpuset: undefined };
      wanted.splice(wanted.indexOf(what.cpuset), 1);
      if (wanted.length === 0) return { cgroups: null, warnings };
    }
  }
  const detected = await detectCgroups(root);
  if (detected.version === null) return { cgroups: null, warnings: [...warnings, `${listOf(wanted)} not applied: ${detected.reason}`] };
  const setup = detected.version === 1 ? await createV1(root, parent, id, limits) : await createV2(root, parent, id, limits, listOf(wanted));
  return { cgroups: setup.cgroups, warnings: [...warnings, ...setup.warnings] };
}

/** The cores the parent of dir offers (its effective cpus), or undefined when unreadable. */
async function coresAvailable(dir: string): Promise<string | undefined> {
  const parentDir = join(dir, '..');
  for (const file of ['cpuset.cpus.effective', 'cpuset.effective_cpus', 'cpuset.cpus']) {
    try {
      const cpus = await readTrim(parentDir, file);
      if (cpus) return cpus;
    } catch {
      // try the next name
    }
  }
  return undefined;
}

/**
 * Writes dir/cpuset.cpus; the error names the file, and for cores the kernel refuses (ERANGE: no
 * such core, EINVAL: not within the parent's) the cores that are available.
 */
async function writeCpus(dir: string, cpus: string): Promise<void> {
  try {
    // An empty write would not reach the kernel: "\n" is the empty list.
    await write(dir, 'cpuset.cpus', cpus === '' ? '\n' : cpus);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ERANGE') {
      throw new Error((err as NodeJS.ErrnoException).path ? reasonOf(err) : `${reasonOf(err)} on ${join(dir, 'cpuset.cpus')}`);
    }
    const available = await coresAvailable(dir);
    throw new Error(`${code} on ${join(dir, 'cpuset.cpus')}: the kernel refused cores "${cpus}"${available ? ` (cores available: ${available})` : ''}`);
  }
}

/**
 * v1: creates <base>/<parent> level by level, giving each level whose cpuset.cpus / cpuset.mems is
 * empty its own parent's (the hierarchy root's for the first level), so its children can hold tasks.
 */
async function cpusetParentV1(base: string, parent: string): Promise<string> {
  let dir = base;
  for (const part of parent.split('/').filter(Boolean)) {
    const up = dir;
    dir = join(dir, part);
    await mkdir(dir, { recursive: true });
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if ((await readTrim(dir, file)) === '') await write(dir, file, await readTrim(up, file));
    }
  }
  return dir;
}

/** v1: an instance cpuset cgroup (parents prepared) with `cpus` ("" = all the parent's) and the parent's mems. */
async function cpusetDirV1(root: string, parent: string, id: string, cpus: string): Promise<string> {
  const base = join(root, 'cpuset');
  if (!(await exists(join(base, 'cgroup.procs')))) throw new Error(`no cgroup v1 cpuset controller mounted at ${base}`);
  const parentDir = await cpusetParentV1(base, parent);
  const dir = join(parentDir, id);
  await mkdir(dir, { recursive: true });
  try {
    await writeCpus(dir, cpus || (await readTrim(parentDir, 'cpuset.cpus')));
    await write(dir, 'cpuset.mems', await readTrim(parentDir, 'cpuset.mems'));
  } catch (err) {
    await rmdir(dir).catch(() => undefined);
    throw new Error(reasonOf(err));
  }
  return dir;
}

async function createV1(root: string, parent: string, id: string, limits: CgroupLimits): Promise<CgroupSetup> {
  const what = describe(limits);
  const warnings: string[] = [];
  const dirs: string[] = [];
  let memoryDir: string | null = null;
  let cpusetDir: string | null = null;
  /** The controller's instance directory, or null (and warnings for every label) when it cannot be made. */
  const controllerDir = async (name: 'cpu' | 'memory', labels: string[]): Promise<string | null> => {
    const base = join(root, name);
    if (!(await exists(join(base, 'cgroup.procs')))) {
      warnings.push(`${listOf(labels)} not applied: no cgroup v1 ${name} controller mounted at ${base}`);
      return null;
    }
    const dir = join(base, parent, id);
    try {
      await mkdir(dir, { recursive: true });
      return dir;
    } catch (err) {
      warnings.push(`${listOf(labels)} not applied: ${reasonOf(err)}`);
      return null;
    }
  };
  /** Runs each write; keeps the directory when at least one succeeded. */
  const applyAll = async (dir: string | null, writes: Array<[string, () => Promise<void>]>): Promise<boolean> => {
    if (!dir) return false;
    let applied = 0;
    for (const [label, apply] of writes) {
      try {
        await apply();
        applied++;
      } catch (err) {
        warnings.push(`${label} not applied: ${reasonOf(err)}`);
      }
    }
    if (applied === 0) {
      await rmdir(dir).catch(() => undefined);
      return false;
    }
    dirs.push(dir);
    return true;
  };
  const cpuWrites: Array<[string, () => Promise<void>]> = [];
  const cpuDir = limits.cpu > 0 || wantsShares(limits)
    ? await controllerDir('cpu', [limits.cpu > 0 ? what.cpu : '', wantsShares(limits) ? what.shares : ''].filter(Boolean))
    : null;
  if (cpuDir && limits.cpu > 0) {
    cpuWrites.push([what.cpu, async () => {
      await write(cpuDir, 'cpu.cfs_period_us', String(CPU_PERIOD_US));
      await write(cpuDir, 'cpu.cfs_quota_us', String(cpuQuotaUs(limits.cpu)));
    }]);
  }
  if (cpuDir && wantsShares(limits)) {
    cpuWrites.push([what.shares, () => write(cpuDir, 'cpu.shares', String(clampShares(limits.cpuShares ?? 0)))]);
  }
  await applyAll(cpuDir, cpuWrites);
  if (limits.memoryBytes > 0) {
    const dir = await controllerDir('memory', [what.memory]);
    const kept = await applyAll(dir, [[what.memory, async () => {
      if (!dir) return;
      await write(dir, 'memory.limit_in_bytes', String(limits.memoryBytes));
      // Memory + swap: without it the limit only pushes the process into swap.
      if (await exists(join(dir, 'memory.memsw.limit_in_bytes'))) {
        await write(dir, 'memory.memsw.limit_in_bytes', String(limits.memoryBytes));
      }
    }]]);
    if (kept) memoryDir = dir;
  }
  if (wantsCpuset(limits)) {
    try {
      cpusetDir = await cpusetDirV1(root, parent, id, cpusetList(limits.cpuset ?? []));
      dirs.push(cpusetDir);
    } catch (err) {
      warnings.push(`${what.cpuset} not applied: ${reasonOf(err)}`);
    }
  }
  return { cgroups: dirs.length > 0 ? { version: 1, dirs, memoryDir, cpusetDir } : null, warnings };
}

/** v2: enables the controllers in the root's and every <parent> level's subtree_control. */
async function enableV2(root: string, parent: string, controllers: string[]): Promise<void> {
  const enable = controllers.map((c) => `+${c}`).join(' ');
  let dir = root;
  await write(dir, 'cgroup.subtree_control', enable);
  for (const part of parent.split('/').filter(Boolean)) {
    dir = join(dir, part);
    await mkdir(dir, { recursive: true });
    await write(dir, 'cgroup.subtree_control', enable);
  }
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
  const has = (controller: string, label: string) => {
    const ok = available.includes(controller);
    if (!ok) warnings.push(`${label} not applied: cgroup v2 ${controller} controller not available at ${root}`);
    return ok;
  };
  const useQuota = limits.cpu > 0 && has('cpu', what.cpu);
  const useWeight = wantsShares(limits) && has('cpu', what.shares);
  const useMemory = limits.memoryBytes > 0 && has('memory', what.memory);
  const useCpuset = wantsCpuset(limits) && has('cpuset', what.cpuset);
  if (!useQuota && !useWeight && !useMemory && !useCpuset) return { cgroups: null, warnings };
  const controllers = [useQuota || useWeight ? 'cpu' : '', useMemory ? 'memory' : '', useCpuset ? 'cpuset' : ''].filter(Boolean);
  const dir = join(root, parent, id);
  try {
    await enableV2(root, parent, controllers);
    await mkdir(dir, { recursive: true });
  } catch (err) {
    await rmdir(dir).catch(() => undefined);
    return { cgroups: null, warnings: [...warnings, `${wanted} not applied: ${reasonOf(err)}`] };
  }
  let memoryDir: string | null = null;
  let cpusetDir: string | null = null;
  const attempt = async (label: string, apply: () => Promise<void>): Promise<boolean> => {
    try {
      await apply();
      return true;
    } catch (err) {
      warnings.push(`${label} not applied: ${reasonOf(err)}`);
      return false;
    }
  };
  if (useQuota) await attempt(what.cpu, () => write(dir, 'cpu.max', `${cpuQuotaUs(limits.cpu)} ${CPU_PERIOD_US}`));
  if (useWeight) await attempt(what.shares, () => write(dir, 'cpu.weight', String(sharesToWeight(limits.cpuShares ?? 0))));
  if (useMemory) {
    const ok = await attempt(what.memory, async () => {
      await write(dir, 'memory.max', String(limits.memoryBytes));
      if (await exists(join(dir, 'memory.swap.max'))) await write(dir, 'memory.swap.max', '0');
    });
    if (ok) memoryDir = dir;
  }
  if (useCpuset && (await attempt(what.cpuset, () => writeCpus(dir, cpusetList(limits.cpuset ?? []))))) cpusetDir = dir;
  return { cgroups: { version: 2, dirs: [dir], memoryDir, cpusetDir }, warnings };
}

/**
 * Sets the cores of a running instance (cpuset [] = any core): rewrites cpuset.cpus of its cpuset
 * cgroup, which the kernel applies to every task in it at once. An instance without one (started on
 * any core, or by a Gantry before cpusets) gets one now, and `tasks()` (every pid of the instance)
 * are moved into it. Returns the instance's cgroups as they are now; throws a readable Error when
 * the cores cannot be set.
 */
export async function setCpuset(
  root: string,
  parent: string,
  id: string,
  cgroups: InstanceCgroups | null,
  cpuset: number[],
  tasks: () => Promise<number[]>,
): Promise<InstanceCgroups | null> {
  const cpus = cpusetList(cpuset);
  const existing = cgroups?.cpusetDir;
  if (cgroups && existing && (await exists(existing))) {
    // v1 has no "inherit": any core is the parent's cores. v2: an empty cpuset.cpus inherits.
    const value = cpus || (cgroups.version === 1 ? await readTrim(join(existing, '..'), 'cpuset.cpus') : '');
    await writeCpus(existing, value);
    return cgroups;
  }
  if (cpus === '') return cgroups; // no cpuset cgroup: it already runs on any core
  const detected = await detectCgroups(root);
  if (detected.version === null) throw new Error(detected.reason);
  if (cgroups && cgroups.version !== detected.version) throw new Error(`the instance's cgroups are v${cgroups.version}, the host's v${detected.version}`);
  let dir: string;
  if (detected.version === 1) {
    dir = await cpusetDirV1(root, parent, id, cpus);
  } else {
    const available = (await readTrim(root, 'cgroup.controllers')).split(/\s+/);
    if (!available.includes('cpuset')) throw new Error(`cgroup v2 cpuset controller not available at ${root}`);
    dir = join(root, parent, id);
    try {
      await enableV2(root, parent, ['cpuset']);
      await mkdir(dir, { recursive: true });
      await writeCpus(dir, cpus);
    } catch (err) {
      throw new Error(reasonOf(err));
    }
  }
  const next: InstanceCgroups = cgroups
    ? { ...cgroups, dirs: cgroups.dirs.includes(dir) ? cgroups.dirs : [...cgroups.dirs, dir], cpusetDir: dir }
    : { version: detected.version, dirs: [dir], memoryDir: null, cpusetDir: dir };
  // Move every task; again while new ones show up (forked meanwhile by a task not yet moved).
  const moved = new Set<number>();
  for (let round = 0; round < 5; round++) {
    const pending = (await tasks()).filter((pid) => !moved.has(pid));
    if (pending.length === 0) break;
    for (const pid of pending) {
      try {
        await write(dir, 'cgroup.procs', String(pid));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new Error(`cannot move pid ${pid}: ${reasonOf(err)}`);
      }
      moved.add(pid);
    }
  }
  return next;
}

/** Moves pid (the gated wrapper, before it starts the command) into every cgroup of the instance. */
export async function joinCgroups(cgroups: InstanceCgroups, pid: number): Promise<void> {
  for (const dir of cgroups.dirs) await write(dir, 'cgroup.procs', String(pid));
}

export async function procsOf(dir: string): Promise<number[]> {
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

/** Every live process whose process group is pgid (a scan of /proc). */
export async function pidsOfGroup(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const st = await procStat(Number(name));
    if (st && st.pgid === pgid && st.state !== 'Z' && st.state !== 'X') pids.push(Number(name));
  }
  return pids;
}
