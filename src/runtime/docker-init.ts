// The init step of the Docker runtime: the end of a finished container's output, read back from
// its log (stdout and stderr interleaved as written) before the container is removed.
import type Dockerode from 'dockerode';

/** How much of the init step's output is kept: its last 4 KiB. */
export const INIT_OUTPUT_CAP = 4 * 1024;
/** Lines asked of the engine: a 4 KiB tail never has more. */
const TAIL_LINES = INIT_OUTPUT_CAP;

/** The payloads of a multiplexed (Tty: false) engine log buffer, stdout and stderr in order. */
export function demuxFrames(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const type = buf[pos];
    const size = buf.readUInt32BE(pos + 4);
    if (type === undefined || type > 2 || buf[pos + 1] !== 0 || buf[pos + 2] !== 0 || buf[pos + 3] !== 0) {
      // Not multiplexed after all (a TTY container): the raw bytes are the output.
      return pos === 0 ? buf : Buffer.concat([...parts, buf.subarray(pos)]);
    }
    parts.push(buf.subarray(pos + 8, Math.min(buf.length, pos + 8 + size)));
    pos += 8 + size;
  }
  return Buffer.concat(parts);
}

/** The last `cap` bytes as text, starting at a character boundary, with a note when cut. */
export function lastBytes(buf: Buffer, cap = INIT_OUTPUT_CAP): string {
  if (buf.length <= cap) return buf.toString('utf8');
  let start = buf.length - cap;
  // Skip UTF-8 continuation bytes so the text does not begin with half a character.
  while (start < buf.length && ((buf[start] ?? 0) & 0xc0) === 0x80) start++;
  return `[gantry: output cut to its last ${cap / 1024} KiB]\n${buf.subarray(start).toString('utf8')}`;
}

/** The end of the container's output; '' when the engine has no log to give (e.g. log driver none). */
export async function containerOutputTail(container: Dockerode.Container): Promise<string> {
  let raw: unknown;
  try {
    raw = await container.logs({ follow: false, stdout: true, stderr: true, tail: TAIL_LINES });
  } catch {
    return '';
  }
  const buf = Buffer.isBuffer(raw) ? raw : typeof raw === 'string' ? Buffer.from(raw, 'latin1') : Buffer.alloc(0);
  return lastBytes(demuxFrames(buf));
}
