// cgroup v2: one directory, <root>/<parent>/<id>, with cpu, memory and cpuset enabled in the parents'
// subtree_control as needed; cpu.shares is converted to cpu.weight.
import { mkdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CPU_PERIOD_US, cpuQuotaUs, cpusetList, describe, exists, reasonOf, sharesToWeight, wantsCpuset, wantsShares, write, writeCpus,
  type CgroupLimits, type CgroupSetup,
} from './cgroups-common.js';

/** v2: enables the controllers in the root's and every <parent> level's subtree_control. */
export async function enableV2(root: string, parent: string, controllers: string[]): Promise<void> {
  const enable = controllers.map((c) => `+${c}`).join(' ');
  let dir = root;
  await write(dir, 'cgroup.subtree_control', enable);
  for (const part of parent.split('/').filter(Boolean)) {
    dir = join(dir, part);
    await mkdir(dir, { recursive: true });
    await write(dir, 'cgroup.subtree_control', enable);
  }
}

export async function createV2(root: string, parent: string, id: string, limits: CgroupLimits, wanted: string): Promise<CgroupSetup> {
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
