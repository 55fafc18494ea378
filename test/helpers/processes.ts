// Host processes as tests see them from the outside: the pid in a process instance's runtime
// id, and whether that process still runs (a zombie does not).
import { readFileSync } from 'node:fs';

export const pidOf = (runtimeId: string | null | undefined): number => Number(String(runtimeId).replace('pid:', ''));

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
}
