// The process runtime's size-capped log files: capping, tail, follow.
//
// Capping: the command writes straight to stdout.log / stderr.log (opened O_APPEND) so it needs no
// reader and survives the agent. The runtime checks the sizes periodically (and only while an agent
// runs); a file past the cap, or (with a max age) whose lines may be older than that, has its last
// `max` bytes (from a line start) copied to <file>.1, the older copies shifted to .2 … .N-1 (N: the
// files kept, the live one included), and is then truncated to 0. The command's O_APPEND descriptor
// simply continues at the new end. Lines written between the copy and the truncate are lost; a fast
// writer can overshoot the cap between two checks. Rotated files last written longer ago than the max
// age are removed. A copy's mtime is when it was made, so .1's says since when the live file fills.
//
// The logs may print secrets: they are 0600 (created so before the command opens them), like the
// rest of the instance dir.
import { statSync } from 'node:fs';
import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
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

async function readRange(path: string, start: number, end: number): Promise<Buffer> {
  if (end <= start) return Buffer.alloc(0);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * The lines of path[0, end), the last `tail` only when given (read backwards in chunks). With
 * `complete`, a trailing line without its newline is left out and `consumed` stops before it.
 */
async function readLines(path: string, end: number, tail: number | undefined, complete: boolean): Promise<{ lines: string[]; consumed: number }> {
  const chunks: Buffer[] = [];
  let pos = end;
  let newlines = 0;
  const step = tail === undefined ? Math.max(end, 1) : 64 * 1024;
  while (pos > 0 && (tail === undefined || newlines <= tail)) {
    const start = Math.max(0, pos - step);
    const chunk = await readRange(path, start, pos);
    chunks.unshift(chunk);
    for (const byte of chunk) if (byte === 10) newlines++;
    pos = start;
  }
  let consumed = end;
  const parts = Buffer.concat(chunks).toString('utf8').split('\n');
  const last = parts.pop() ?? '';
  if (last !== '') {
    if (complete) consumed -= Buffer.byteLength(last);
    else parts.push(last);
  }
  if (pos > 0) parts.shift(); // the first piece is the end of a line that started before what we read
  return { lines: tail === undefined ? parts : parts.slice(Math.max(0, parts.length - tail)), consumed };
}

async function sizeOf(path: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const st = await stat(path);
    return { size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  }
}

/**
 * Pushes the existing lines (rotated .1 then live file, per stream) into `out`. Streams are ordered by
 * the live file's mtime, the most recently written last, and `tail` takes the last N of that sequence:
 * without timestamps the two streams cannot be interleaved exactly. Returns the live offsets reached.
 */
export async function pushExisting(
  out: Readable,
  files: Record<StreamName, string>,
  tail: number | undefined,
  complete: boolean,
): Promise<Record<StreamName, number>> {
  const offsets: Record<StreamName, number> = { stdout: 0, stderr: 0 };
  const perStream: { stream: StreamName; mtime: number; lines: string[] }[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const live = await sizeOf(files[stream]);
    const current = live ? await readLines(files[stream], live.size, tail, complete) : { lines: [], consumed: 0 };
    offsets[stream] = current.consumed;
    let lines = current.lines;
    if (tail === undefined || lines.length < tail) {
      const rotated = await sizeOf(`${files[stream]}.1`);
      if (rotated) {
        const need = tail === undefined ? undefined : tail - lines.length;
        lines = [...(await readLines(`${files[stream]}.1`, rotated.size, need, false)).lines, ...lines];
      }
    }
    perStream.push({ stream, mtime: live?.mtimeMs ?? 0, lines });
  }
  perStream.sort((a, b) => a.mtime - b.mtime);
  let all: LogLine[] = perStream.flatMap(({ stream, lines }) => lines.map((text) => ({ stream, time: null, text })));
  if (tail !== undefined) all = all.slice(Math.max(0, all.length - tail));
  for (const line of all) out.push(line);
  return offsets;
}

/**
 * Polls the live files every `intervalMs` and pushes new complete lines; a file that shrank was
 * rotated and is read again from 0. Ends `out` once `aliveDir` is gone (instance removed). Returns
 * a function that stops polling.
 */
export function followFiles(
  out: Readable,
  files: Record<StreamName, string>,
  offsets: Record<StreamName, number>,
  aliveDir: string,
  intervalMs = 200,
): () => void {
  const partial: Record<StreamName, string> = { stdout: '', stderr: '' };
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  let busy = false;
  let stopped = false;
  const tick = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      if (!(await sizeOf(aliveDir))) {
        stop();
        out.push(null);
        return;
      }
      for (const stream of ['stdout', 'stderr'] as const) {
        const info = await sizeOf(files[stream]);
        if (!info) continue;
        if (info.size < offsets[stream]) {
          offsets[stream] = 0;
          partial[stream] = '';
          decoders[stream] = new StringDecoder('utf8');
        }
        if (info.size === offsets[stream]) continue;
        const end = Math.min(info.size, offsets[stream] + 1024 * 1024);
        const buf = await readRange(files[stream], offsets[stream], end);
        offsets[stream] += buf.length;
        const parts = (partial[stream] + decoders[stream].write(buf)).split('\n');
        partial[stream] = parts.pop() ?? '';
        for (const text of parts) if (!stopped) out.push({ stream, time: null, text } satisfies LogLine);
      }
    } catch {
      // a file vanished between stat and read: try again next tick
    } finally {
      busy = false;
    }
  };
  // tick() catches what a read can throw; anything else ends the stream with the error, for its reader.
  const poll = () => {
    tick().catch((err: unknown) => {
      stop();
      out.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  };
  const timer = setInterval(poll, intervalMs);
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  poll();
  return stop;
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
