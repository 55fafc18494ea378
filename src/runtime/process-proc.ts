// The /proc readers the process runtime identifies its processes with (start time, state, children).
// The listing every agent tick makes reads them synchronously (isAliveNow): a /proc file is made
// by the kernel on the read, never waits for a disk, and a synchronous read costs a few
// microseconds where the promise-based one costs several trips through libuv's thread pool.
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

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
  return parseStat(text);
}

/** procStat, read synchronously (see the top of this file). */
export function procStatNow(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

function parseStat(text: string): ProcStat {
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', pgid: Number(fields[2]), startTime: Number(fields[19]) };
}

function isThatProcess(st: ProcStat | undefined, startTime: number): boolean {
  return st !== undefined && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

/** Whether pid is still the very process that started at startTime (not a zombie, not a reused pid). */
export async function isAlive(pid: number, startTime: number): Promise<boolean> {
  return isThatProcess(await procStat(pid), startTime);
}

/** isAlive, read synchronously. */
export function isAliveNow(pid: number, startTime: number): boolean {
  return isThatProcess(procStatNow(pid), startTime);
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
