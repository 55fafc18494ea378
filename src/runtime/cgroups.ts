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
// v1 lives in cgroups-v1.ts, v2 in cgroups-v2.ts, what both use in cgroups-common.ts. The /proc readers
// the runtime identifies its processes with (start time, state, children) are in process-proc.ts,
// re-exported here.
import { mkdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  cpusetList, describe, exists, listOf, readTrim, reasonOf, wantsCpuset, wantsShares, write, writeCpus,
  type CgroupLimits, type CgroupSetup, type InstanceCgroups,
} from './cgroups-common.js';
import { cpusetDirV1, createV1 } from './cgroups-v1.js';
import { createV2, enableV2 } from './cgroups-v2.js';

export {
  CPU_PERIOD_US, clampShares, cpuQuotaUs, cpusetList, sharesToWeight, type CgroupLimits, type CgroupSetup, type InstanceCgroups,
} from './cgroups-common.js';
export { childrenOf, isAlive, pidsOfGroup, procStat, type ProcStat } from './process-proc.js';

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
