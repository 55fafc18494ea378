// cgroup v1: one directory per controller, <root>/cpu/<parent>/<id>, <root>/memory/<parent>/<id> and
// <root>/cpuset/<parent>/<id>. A v1 cpuset cgroup only takes tasks once its cpuset.cpus and
// cpuset.mems are set, and a new one starts with both empty: so every level of <parent> gets its
// own parent's values when they are empty (the root's for the first level), and the instance's
// cgroup gets its cores and its parent's mems.
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CPU_PERIOD_US, clampShares, cpuQuotaUs, cpusetList, describe, exists, listOf, readTrim, reasonOf, wantsCpuset, wantsShares,
  write, writeCpus, type CgroupLimits, type CgroupSetup,
} from './cgroups-common.js';

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
export async function cpusetDirV1(root: string, parent: string, id: string, cpus: string): Promise<string> {
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

export async function createV1(root: string, parent: string, id: string, limits: CgroupLimits): Promise<CgroupSetup> {
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
