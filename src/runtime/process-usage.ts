// What process instances use. A process instance is its wrapper's process group (the runtime starts
// each in its own session), so one scan of /proc per sample finds every process of every instance:
// CPU time (utime + stime of the live processes, plus cutime + cstime the wrapper collected from
// children that ended), resident memory and block I/O (/proc/<pid>/io) summed per group. Where
// the instance has cgroups of its own (it was given limits) their memory, throttling and OOM
// figures win: they count what a /proc scan cannot (page cache, processes that left the group).
// Process instances share the host's network namespace: no network figure is theirs, so none is
// reported (null).
import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import type { ProcessRecord } from './process-records.js';
import { completeCounters, readCgroupCounters, type CgroupFiles, type UsageCounters } from './usage-counters.js';

/** Clock ticks per second and page size of Linux on every architecture Gantry runs on. */
const CLOCK_TICKS = 100;
const PAGE_BYTES = 4096;

interface GroupTotals {
  cpuTicks: number;
  rssPages: number;
  readBytes: number;
  writeBytes: number;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

/** One pass over /proc: per process group wanted, CPU ticks, resident pages and I/O bytes. */
function scanGroups(wanted: ReadonlySet<number>): Map<number, GroupTotals> {
  const totals = new Map<number, GroupTotals>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return totals;
  }
  for (const name of names) {
    const code = name.charCodeAt(0);
    if (code < 48 || code > 57) continue;
    const stat = readText(`/proc/${name}/stat`);
    if (stat === undefined) continue;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number(fields[2]);
    if (!wanted.has(pgid)) continue;
    const pid = Number(name);
    // Fields 14-17 (utime stime cutime cstime) are at 11-14 here; children's time only for the
    // leader, whose finished children are the instance's.
    const ticks = Number(fields[11]) + Number(fields[12]) + (pid === pgid ? Number(fields[13]) + Number(fields[14]) : 0);
    const io = readText(`/proc/${name}/io`) ?? '';
    const group = totals.get(pgid) ?? { cpuTicks: 0, rssPages: 0, readBytes: 0, writeBytes: 0 };
    group.cpuTicks += ticks;
    group.rssPages += Number(fields[21]);
    group.readBytes += Number(/^read_bytes: (\d+)/m.exec(io)?.[1] ?? 0);
    group.writeBytes += Number(/^write_bytes: (\d+)/m.exec(io)?.[1] ?? 0);
    totals.set(pgid, group);
  }
  return totals;
}

/** The cgroup files of the dirs the runtime made for the instance (v1: <root>/<controller>/...). */
function cgroupFilesOf(record: ProcessRecord, root: string): CgroupFiles | undefined {
  const cgroups = record.cgroups;
  if (!cgroups || cgroups.dirs.length === 0) return undefined;
  if (cgroups.version === 2) return { version: 2, dir: cgroups.dirs[0]! };
  const under = (controller: string) => cgroups.dirs.find((dir) => dir.startsWith(join(root, controller) + sep));
  return { version: 1, cpu: under('cpu'), memory: under('memory') };
}

/** Counters of each running instance among `records`, by instance id. */
export function processUsage(records: readonly ProcessRecord[], cgroupRoot: string): Map<string, UsageCounters> {
  const groups = scanGroups(new Set(records.map((record) => record.pgid)));
  const out = new Map<string, UsageCounters>();
  for (const record of records) {
    const group = groups.get(record.pgid);
    if (!group) continue; // gone since the listing
    const files = cgroupFilesOf(record, cgroupRoot);
    const fromCgroups = files ? readCgroupCounters(files) : {};
    out.set(record.instanceId, completeCounters({
      cpuSeconds: group.cpuTicks / CLOCK_TICKS,
      memoryBytes: group.rssPages * PAGE_BYTES,
      blockReadBytes: group.readBytes,
      blockWriteBytes: group.writeBytes,
      ...fromCgroups,
      // v1 CPU time lives in cpuacct, which the runtime does not make: the scan's figure stays.
      ...(fromCgroups.cpuSeconds === undefined ? { cpuSeconds: group.cpuTicks / CLOCK_TICKS } : {}),
      netRxBytes: null,
      netTxBytes: null,
    }));
  }
  return out;
}
