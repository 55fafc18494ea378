// The on-disk format of the process runtime's log files, as the log writer (process-log-writer.ts)
// writes them: one record per line, `<time> <text>` for a line of the command's output, with its
// time in RFC 3339 UTC with microseconds:
//
//   2026-11-30T22:35:53.123456Z listening on :8080
//   2026-11-30T22:35:54.000120Z+the first 16 KiB of a long line…
//   2026-11-30T22:35:54.000120Z …and the rest of it
//
// A `+` instead of the space marks a piece of a line that goes on in the next record: a line
// longer than 16 KiB, or one whose newline had not come after half a second (a prompt, a progress
// bar). Its pieces are joined again on reading, at the time of the first. A line without a time is
// from a file written before the writer existed (or on a host without it): its time is unknown.
import type { LogLine } from './runtime.js';

/** A line joined from pieces is kept up to this size; the rest is left out, and the line says so. */
export const MAX_JOINED_LINE = 1024 * 1024;

const RECORD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})Z([ +])/;
const STAMP_LENGTH = 28; // "2026-11-30T22:35:53.123456Z" and the separator

export interface LogRecord {
  /** ms since the epoch, with the microseconds as a fraction; null for a line without a time. */
  time: number | null;
  text: string;
  /** A piece: the line goes on in the next record. */
  continues: boolean;
}

export function parseRecord(line: string): LogRecord {
  const match = RECORD.exec(line);
  if (!match) return { time: null, text: line, continues: false };
  const seconds = Date.parse(`${match[1]}Z`);
  if (Number.isNaN(seconds)) return { time: null, text: line, continues: false };
  return { time: seconds + Number(match[2]) / 1000, text: line.slice(STAMP_LENGTH), continues: match[3] === '+' };
}

/** Joins pieces into lines, one stream's records in order. */
export class LineJoiner {
  private pieces: string[] = [];
  private size = 0;
  private cut = false;
  private time: number | null = null;

  constructor(private readonly stream: LogLine['stream']) {}

  /** The record's line, when it ends one. */
  push(record: LogRecord): LogLine | undefined {
    if (this.pieces.length === 0 && !this.cut) this.time = record.time;
    if (this.size + record.text.length <= MAX_JOINED_LINE) {
      this.pieces.push(record.text);
      this.size += record.text.length;
    } else {
      this.cut = true;
    }
    return record.continues ? undefined : this.take();
  }

  /** What is held of a line that has not ended (a plain read shows it as it is). */
  pending(): LogLine | undefined {
    return this.pieces.length > 0 || this.cut ? this.take() : undefined;
  }

  private take(): LogLine {
    const text = this.pieces.join('') + (this.cut ? ` [gantry: line cut at ${MAX_JOINED_LINE / 1024 / 1024} MiB]` : '');
    const line: LogLine = { stream: this.stream, time: this.time, text };
    this.pieces = [];
    this.size = 0;
    this.cut = false;
    this.time = null;
    return line;
  }
}

/**
 * Both streams' lines as one sequence in time order (each stream's own order kept). A line
 * without a time goes with the line before it in its stream; ties, and lines before any time,
 * go to `first` (the stream written less lately).
 */
export function mergeStreams(a: readonly LogLine[], b: readonly LogLine[]): LogLine[] {
  const out: LogLine[] = [];
  let i = 0;
  let j = 0;
  let timeA = -Infinity;
  let timeB = -Infinity;
  while (i < a.length || j < b.length) {
    const nextA = a[i];
    const nextB = b[j];
    if (nextA) timeA = nextA.time ?? timeA;
    if (nextB) timeB = nextB.time ?? timeB;
    if (nextA && (!nextB || timeA <= timeB)) {
      out.push(nextA);
      i++;
    } else if (nextB) {
      out.push(nextB);
      j++;
    }
  }
  return out;
}
