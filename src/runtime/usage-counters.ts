// What an instance has used, read from the kernel: cumulative counters from its cgroups (v1 or v2)
// and, for what cgroups do not hold, from /proc. The agent turns two readings into rates.
//
// v1 keeps each controller in its own hierarchy (cpuacct for CPU time, cpu for throttling, memory,
// blkio); v2 one directory with cpu.stat, memory.*, io.stat. Every reader returns what it could
// read: a missing file is a missing field, never an error, so an instance that vanished between
// the listing and the read is just skipped by the caller.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UsageCounters } from '../model/usage.js';

export type { UsageCounters };

/** Where an instance's cgroup files are: per controller on v1, one directory on v2. */
export type CgroupFiles =
  | { version: 1; cpu?: string; cpuacct?: string; memory?: string; blkio?: string }
  | { version: 2; dir: string };

/** A limit this large means none (v1 writes the page-rounded maximum of a 64-bit count). */
const NO_LIMIT = 2 ** 60;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

/** "key value" lines (cpu.stat, memory.stat, memory.events) as a map. */
export function keyValues(text: string | undefined): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) map.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return map;
}

function numberIn(path: string): number | undefined {
  const text = read(path)?.trim();
  if (text === undefined || text === '') return undefined;
  if (text === 'max') return Infinity;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** The cgroup files of a process, from /proc/<pid>/cgroup under root (undefined: the process is gone). */
export function cgroupFilesOfPid(pid: number, root: string): CgroupFiles | undefined {
  const text = read(`/proc/${pid}/cgroup`);
  if (text === undefined) return undefined;
  const paths = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) for (const controller of (m[1] ?? '').split(',')) paths.set(controller, m[2] ?? '');
  }
  const only = paths.size === 1 ? paths.get('') : undefined;
  if (only !== undefined) return { version: 2, dir: join(root, only) };
  const at = (controller: string) => {
    const path = paths.get(controller);
    return path === undefined ? undefined : join(root, controller, path);
  };
  // Some hosts mount cpu and cpuacct together ("cpu,cpuacct"): either name finds the files.
  const cpu = at('cpu') ?? at('cpu,cpuacct');
  return { version: 1, cpu, cpuacct: at('cpuacct') ?? cpu, memory: at('memory'), blkio: at('blkio') };
}

/** What the cgroups hold; fields the files do not give are absent. */
export function readCgroupCounters(files: CgroupFiles): Partial<UsageCounters> {
  return files.version === 1 ? readV1(files) : readV2(files.dir);
}

function readV1(files: Extract<CgroupFiles, { version: 1 }>): Partial<UsageCounters> {
  const out: Partial<UsageCounters> = {};
  if (files.cpuacct) {
    const ns = numberIn(join(files.cpuacct, 'cpuacct.usage'));
    if (ns !== undefined) out.cpuSeconds = ns / 1e9;
  }
  if (files.cpu) {
    const stat = keyValues(read(join(files.cpu, 'cpu.stat')));
    out.periods = stat.get('nr_periods') ?? 0;
    out.throttledPeriods = stat.get('nr_throttled') ?? 0;
    out.throttledSeconds = (stat.get('throttled_time') ?? 0) / 1e9;
  }
  if (files.memory) {
    const usage = numberIn(join(files.memory, 'memory.usage_in_bytes'));
    if (usage !== undefined) {
      const stat = keyValues(read(join(files.memory, 'memory.stat')));
      out.memoryBytes = Math.max(0, usage - (stat.get('total_inactive_file') ?? 0));
    }
    const limit = numberIn(join(files.memory, 'memory.limit_in_bytes'));
    out.memoryLimitBytes = limit === undefined || limit >= NO_LIMIT ? null : limit;
    out.oomKills = keyValues(read(join(files.memory, 'memory.oom_control'))).get('oom_kill') ?? 0;
  }
  if (files.blkio) {
    const io = blkioBytes(read(join(files.blkio, 'blkio.throttle.io_service_bytes_recursive')) ?? read(join(files.blkio, 'blkio.throttle.io_service_bytes')));
    out.blockReadBytes = io.read;
    out.blockWriteBytes = io.write;
  }
  return out;
}

function readV2(dir: string): Partial<UsageCounters> {
  const out: Partial<UsageCounters> = {};
  const cpu = read(join(dir, 'cpu.stat'));
  if (cpu !== undefined) {
    const stat = keyValues(cpu);
    out.cpuSeconds = (stat.get('usage_usec') ?? 0) / 1e6;
    out.periods = stat.get('nr_periods') ?? 0;
    out.throttledPeriods = stat.get('nr_throttled') ?? 0;
    out.throttledSeconds = (stat.get('throttled_usec') ?? 0) / 1e6;
  }
  const current = numberIn(join(dir, 'memory.current'));
  if (current !== undefined) {
    out.memoryBytes = Math.max(0, current - (keyValues(read(join(dir, 'memory.stat'))).get('inactive_file') ?? 0));
    const limit = numberIn(join(dir, 'memory.max'));
    out.memoryLimitBytes = limit === undefined || limit >= NO_LIMIT ? null : limit;
    out.oomKills = keyValues(read(join(dir, 'memory.events'))).get('oom_kill') ?? 0;
  }
  const io = read(join(dir, 'io.stat'));
  if (io !== undefined) {
    let readBytes = 0;
    let writeBytes = 0;
    for (const m of io.matchAll(/\brbytes=(\d+)|\bwbytes=(\d+)/g)) {
      readBytes += Number(m[1] ?? 0);
      writeBytes += Number(m[2] ?? 0);
    }
    out.blockReadBytes = readBytes;
    out.blockWriteBytes = writeBytes;
  }
  return out;
}

/** v1 blkio "MAJ:MIN Read N" lines summed over devices (the "Total" lines are skipped). */
function blkioBytes(text: string | undefined): { read: number; write: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of (text ?? '').split('\n')) {
    const [device, op, value] = line.split(' ');
    if (!device?.includes(':')) continue;
    if (op === 'Read') readBytes += Number(value);
    else if (op === 'Write') writeBytes += Number(value);
  }
  return { read: readBytes, write: writeBytes };
}

/** Bytes received and sent on every interface but loopback of the network namespace pid is in. */
export function netDevBytes(pid: number): { rx: number; tx: number } | undefined {
  const text = read(`/proc/${pid}/net/dev`);
  if (text === undefined) return undefined;
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.slice(0, colon).trim() === 'lo') continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    rx += Number(fields[0] ?? 0);
    tx += Number(fields[8] ?? 0);
  }
  return { rx, tx };
}

/** A complete reading: what was not readable counts as zero (the memory limit as none). */
export function completeCounters(partial: Partial<UsageCounters>): UsageCounters {
  return {
    cpuSeconds: partial.cpuSeconds ?? 0,
    periods: partial.periods ?? 0,
    throttledPeriods: partial.throttledPeriods ?? 0,
    throttledSeconds: partial.throttledSeconds ?? 0,
    memoryBytes: partial.memoryBytes ?? 0,
    memoryLimitBytes: partial.memoryLimitBytes ?? null,
    oomKills: partial.oomKills ?? 0,
    netRxBytes: partial.netRxBytes ?? null,
    netTxBytes: partial.netTxBytes ?? null,
    blockReadBytes: partial.blockReadBytes ?? 0,
    blockWriteBytes: partial.blockWriteBytes ?? 0,
  };
}
