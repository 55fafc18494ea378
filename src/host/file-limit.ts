// The process's open-file limit, raised where allowed, and how many client sockets fit in it.
// Every socket is a file: a server that lets clients take all of them fails its own store, log
// and cache writes (EMFILE). The usual soft limit is 1,024 while the hard one is far higher, so
// Gantry raises the soft limit to the hard one at start (util-linux's prlimit on its own pid:
// Node has no setrlimit) and keeps a share of descriptors out of the clients' reach.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface FileLimit {
  soft: number;
  hard: number;
}

/** The limit as the kernel reports it; Infinity for "unlimited", undefined where /proc is not there. */
export function fileLimit(): FileLimit | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line?.slice('Max open files'.length).trim().split(/\s+/) ?? []).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
    return soft !== undefined && hard !== undefined && Number.isFinite(soft) ? { soft, hard } : undefined;
  } catch {
    return undefined;
  }
}

/** Raises the soft limit to the hard one; returns the limit in force after, and why not when it could not. */
export function raiseFileLimit(): { limit?: FileLimit; note?: string } {
  const before = fileLimit();
  if (!before) return { note: 'the open-file limit is unknown (no /proc/self/limits)' };
  if (before.soft >= before.hard) return { limit: before };
  const target = Number.isFinite(before.hard) ? String(before.hard) : 'unlimited';
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${target}`], { stdio: 'ignore', timeout: 5000 });
  } catch (err) {
    return { limit: before, note: `could not raise the open-file limit from ${before.soft} to ${target} with prlimit: ${(err as Error).message}` };
  }
  return { limit: fileLimit() ?? before };
}

/** Descriptors kept for the store, the agent's runtimes, logs and caches: a quarter, at least 128. */
export function clientSocketBudget(limit: FileLimit | undefined): number {
  const soft = limit?.soft ?? 1024;
  return Math.max(64, soft - Math.max(128, Math.floor(soft / 4)));
}
