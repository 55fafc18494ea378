// Reading the process runtime's log files back: the existing lines (a tail, both streams merged by
// their times) and following the live files. The records' format is in process-log-records.ts.
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { LineJoiner, MAX_JOINED_LINE, mergeStreams, parseRecord } from './process-log-records.js';
import type { StreamName } from './process-logs.js';
import type { LogLine } from './runtime.js';

/** Read backwards for a tail in chunks from this size, doubling up to the last. */
const FIRST_CHUNK = 64 * 1024;
const LAST_CHUNK = 8 * 1024 * 1024;
/** At most this much of a live file is read per follow poll. */
const FOLLOW_READ = 1024 * 1024;

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

async function sizeOf(path: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const st = await stat(path);
    return { size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  }
}

/** The records (without their newlines) of buf and the byte offset after each; `rest`: where an unterminated one starts. */
function splitRecords(buf: Buffer): { records: string[]; ends: number[]; rest: number } {
  const records: string[] = [];
  const ends: number[] = [];
  let start = 0;
  for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
    records.push(buf.toString('utf8', start, nl));
    ends.push(nl + 1);
    start = nl + 1;
  }
  return { records, ends, rest: start };
}

/**
 * The lines of buf, the bytes [at, at + buf.length) of a stream's file. `fromStart`: buf starts at a
 * record's start (else the first, cut, record and the rest of its line are left out). With
 * `complete`, an unterminated record and a line not ended yet are left out, and `consumed` is the
 * file offset after the last line taken.
 */
function linesOf(stream: StreamName, buf: Buffer, at: number, fromStart: boolean, complete: boolean): { lines: LogLine[]; consumed: number } {
  const { records, ends, rest } = splitRecords(buf);
  const joiner = new LineJoiner(stream);
  const lines: LogLine[] = [];
  let consumed = at;
  let skipping = !fromStart;
  records.forEach((raw, i) => {
    const record = parseRecord(raw);
    if (skipping) {
      if (i > 0 && !record.continues) skipping = false; // the next record starts a line
      return;
    }
    const line = joiner.push(record);
    if (!line) return;
    lines.push(line);
    consumed = at + ends[i]!;
  });
  if (!complete) {
    if (rest < buf.length) {
      const line = joiner.push(parseRecord(buf.toString('utf8', rest)));
      if (line) lines.push(line);
    }
    const held = joiner.pending();
    if (held) lines.push(held);
    consumed = at + buf.length;
  }
  return { lines, consumed };
}

/** The lines of path[0, end), only the last `tail` when given (read backwards in chunks). */
async function readStreamLines(path: string, stream: StreamName, end: number, tail: number | undefined, complete: boolean): Promise<{ lines: LogLine[]; consumed: number }> {
  if (tail === undefined) return linesOf(stream, await readRange(path, 0, end), 0, true, complete);
  let pos = end;
  let buf = Buffer.alloc(0);
  let step = FIRST_CHUNK;
  for (;;) {
    const start = Math.max(0, pos - step);
    buf = Buffer.concat([await readRange(path, start, pos), buf]);
    pos = start;
    step = Math.min(step * 2, LAST_CHUNK);
    const result = linesOf(stream, buf, pos, pos === 0, complete);
    if (pos === 0 || result.lines.length > tail) return { lines: result.lines.slice(Math.max(0, result.lines.length - tail)), consumed: result.consumed };
  }
}

/**
 * Pushes the existing lines (rotated .1 then live file, per stream) into `out`, the two streams
 * merged by their times (lines without one, from files of before the log writer, keep the old
 * order: the stream written less lately first), `tail` the last N of that. Returns the live
 * offsets reached.
 */
export async function pushExisting(
  out: Readable,
  files: Record<StreamName, string>,
  tail: number | undefined,
  complete: boolean,
): Promise<Record<StreamName, number>> {
  const offsets: Record<StreamName, number> = { stdout: 0, stderr: 0 };
  const perStream: { mtime: number; lines: LogLine[] }[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const live = await sizeOf(files[stream]);
    const current = live ? await readStreamLines(files[stream], stream, live.size, tail, complete) : { lines: [], consumed: 0 };
    offsets[stream] = current.consumed;
    let lines = current.lines;
    if (tail === undefined || lines.length < tail) {
      const rotated = await sizeOf(`${files[stream]}.1`);
      if (rotated) {
        const need = tail === undefined ? undefined : tail - lines.length;
        lines = [...(await readStreamLines(`${files[stream]}.1`, stream, rotated.size, need, false)).lines, ...lines];
      }
    }
    perStream.push({ mtime: live?.mtimeMs ?? 0, lines });
  }
  perStream.sort((a, b) => a.mtime - b.mtime);
  let all = mergeStreams(perStream[0]!.lines, perStream[1]!.lines);
  if (tail !== undefined) all = all.slice(Math.max(0, all.length - tail));
  for (const line of all) out.push(line);
  return offsets;
}

/**
 * Polls the live files every `intervalMs` and pushes new complete lines (of both streams, merged by
 * time); a file that shrank was rotated and is read again from 0. Ends `out` once `aliveDir` is
 * gone (instance removed). Returns a function that stops polling.
 */
export function followFiles(
  out: Readable,
  files: Record<StreamName, string>,
  offsets: Record<StreamName, number>,
  aliveDir: string,
  intervalMs = 200,
): () => void {
  const held: Record<StreamName, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  const joiners = { stdout: new LineJoiner('stdout'), stderr: new LineJoiner('stderr') };
  let busy = false;
  let stopped = false;
  // A file that vanished between stat and read is tried again at the next poll.
  const readNew = (stream: StreamName): Promise<LogLine[]> => readNewOf(stream).catch(() => []);
  const readNewOf = async (stream: StreamName): Promise<LogLine[]> => {
    const info = await sizeOf(files[stream]);
    if (!info) return [];
    if (info.size < offsets[stream]) {
      offsets[stream] = 0;
      held[stream] = Buffer.alloc(0);
      joiners[stream] = new LineJoiner(stream);
    }
    if (info.size === offsets[stream]) return [];
    const buf = await readRange(files[stream], offsets[stream], Math.min(info.size, offsets[stream] + FOLLOW_READ));
    offsets[stream] += buf.length;
    const all = held[stream].length > 0 ? Buffer.concat([held[stream], buf]) : buf;
    const { records, rest } = splitRecords(all);
    held[stream] = Buffer.from(all.subarray(rest));
    const lines: LogLine[] = [];
    const push = (line: LogLine | undefined) => void (line && lines.push(line));
    for (const raw of records) push(joiners[stream].push(parseRecord(raw)));
    // An endless line of an old file (the writer never writes one): held as a piece, capped by the joiner.
    if (held[stream].length > MAX_JOINED_LINE) {
      push(joiners[stream].push({ ...parseRecord(held[stream].toString('utf8')), continues: true }));
      held[stream] = Buffer.alloc(0);
    }
    return lines;
  };
  const tick = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      if (!(await sizeOf(aliveDir))) {
        stop();
        out.push(null);
        return;
      }
      const lines = mergeStreams(await readNew('stdout'), await readNew('stderr'));
      for (const line of lines) if (!stopped) out.push(line);
    } finally {
      busy = false;
    }
  };
  // readNew() catches what a read can throw; anything else ends the stream with the error, for its reader.
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
