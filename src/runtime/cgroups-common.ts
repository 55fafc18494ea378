// What the cgroup code shares between v1 and v2: the limit types, the value conversions, the small
// file helpers, the warning texts, and writing cpuset.cpus with a readable error.
import { constants as fsc } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
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

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path, fsc.F_OK);
    return true;
  } catch {
    return false;
  }
}

export async function write(dir: string, file: string, value: string): Promise<void> {
  await writeFile(join(dir, file), value);
}

export async function readTrim(dir: string, file: string): Promise<string> {
  return (await readFile(join(dir, file), 'utf8')).trim();
}

export function reasonOf(err: unknown): string {
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

export const wantsCpuset = (limits: CgroupLimits) => (limits.cpuset?.length ?? 0) > 0;
export const wantsShares = (limits: CgroupLimits) => (limits.cpuShares ?? 0) > 0;

export function describe(limits: CgroupLimits): { cpu: string; memory: string; cpuset: string; shares: string } {
  return {
    cpu: `cpu limit (${limits.cpu} CPU)`,
    memory: `memory limit (${limits.memoryBytes} bytes)`,
    cpuset: `cpuset (cores ${(limits.cpuset ?? []).join(',')})`,
    shares: `cpu shares (${limits.cpuShares ?? 0})`,
  };
}

/** "a", "a and b", "a, b and c". */
export function listOf(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
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
export async function writeCpus(dir: string, cpus: string): Promise<void> {
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
