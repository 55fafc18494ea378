// The process runtime's size-capped log files: where they are, and capping. Their format is in
// process-log-records.ts, reading them back in process-log-read.ts.
//
// Capping: the log writer (process-log-writer.ts), or on a host without one the command itself,
// appends to stdout.log / stderr.log (opened O_APPEND), so they need no reader and survive the
// agent. The runtime checks the sizes periodically (and only while an agent runs); a file past the
// cap, or (with a max age) whose lines may be older than that, has its last `max` bytes (from a line
// start) copied to <file>.1, the older copies shifted to .2 … .N-1 (N: the files kept, the live one
// included), and is then truncated to 0. The writer's O_APPEND descriptor simply continues at the
// new end (it appends whole records, so a copy starts at one). Lines written between the copy and
// the truncate are lost; a fast writer can overshoot the cap between two checks. Rotated files last
// written longer ago than the max age are removed. A copy's mtime is when it was made, so .1's says
// since when the live file fills.
//
// The logs may print secrets: they are 0600 (created so before the command opens them), like the
// rest of the instance dir.
import { statSync } from 'node:fs';
import { open, rename, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateFileAsync, writePrivateFileAtomicAsync } from '../host/private-files.js';
import type { LogLine } from './runtime.js';

export type StreamName = LogLine['stream'];

export interface LogRetention {
  /** Files kept per stream, the live one included. */
  maxFiles: number;
  maxAgeMs?: number;
}

/** Rotated copies looked at beyond maxFiles, so that lowering --log-max-files removes the extra ones. */
const EXTRA_COPIES_SWEPT = 16;

export async function capLogFile(path: string, max: number, retention: LogRetention = { maxFiles: 2 }, now = Date.now()): Promise<boolean> {
  // Synchronous: asked for every log of every instance every few seconds, and almost always
  // answered "small enough"; a stat of a cached dentry never waits for the disk.
  const live = statSync(path, { throwIfNoEntry: false });
  const { maxFiles, maxAgeMs } = retention;
  // Read before the sweep, which may remove .1 for its age.
  const filledSince = statSync(`${path}.1`, { throwIfNoEntry: false })?.mtimeMs ?? live?.birthtimeMs ?? 0;
  await sweepCopies(path, maxFiles, maxAgeMs, now);
  if (!live) return false;
  const size = live.size;
  const tooOld = maxAgeMs !== undefined && size > 0 && filledSince > 0 && filledSince <= now - maxAgeMs;
  if (size <= max && !tooOld) return false;
  if (maxFiles > 1) {
    for (let k = maxFiles - 2; k >= 1; k--) await rename(`${path}.${k}`, `${path}.${k + 1}`).catch(() => undefined);
    const keep = Math.min(max, size);
    const fh = await open(path, 'r');
    let buf: Buffer;
    try {
      buf = Buffer.alloc(keep);
      const { bytesRead } = await fh.read(buf, 0, keep, size - keep);
      buf = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
    const nl = buf.indexOf(10);
    if (keep < size && nl >= 0 && nl < buf.length - 1) buf = buf.subarray(nl + 1);
    await writePrivateFileAtomicAsync(`${path}.1`, buf);
  }
  await truncate(path, 0);
  return true;
}

/** Removes rotated copies past maxFiles, and those last written more than maxAgeMs ago. */
async function sweepCopies(path: string, maxFiles: number, maxAgeMs: number | undefined, now: number): Promise<void> {
  for (let k = 1; k < maxFiles + EXTRA_COPIES_SWEPT; k++) {
    const copy = statSync(`${path}.${k}`, { throwIfNoEntry: false });
    if (!copy) {
      if (k >= maxFiles) return;
      continue;
    }
    if (k >= maxFiles || (maxAgeMs !== undefined && copy.mtimeMs <= now - maxAgeMs)) await rm(`${path}.${k}`, { force: true });
  }
}

export function logFiles(dir: string): Record<StreamName, string> {
  return { stdout: join(dir, 'stdout.log'), stderr: join(dir, 'stderr.log') };
}

/** Creates the instance's log files 0600 (an existing one keeps its lines and becomes 0600). */
export async function preparePrivateLogFiles(dir: string): Promise<void> {
  const files = logFiles(dir);
  await ensurePrivateFileAsync(files.stdout);
  await ensurePrivateFileAsync(files.stderr);
}
