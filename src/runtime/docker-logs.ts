// The Docker runtime's log stream: engine frames demultiplexed, timestamps parsed, text split into
// lines per stream, and (with follow) re-attached across restarts of the container.
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type Dockerode from 'dockerode';
import { engineMessage, isRunning, parseDockerTime, statusOf, trimFraction } from './docker-common.js';
import type { LogLine, LogOptions } from './runtime.js';

/** How often a following log stream checks whether an exited container was started again. */
const LOG_REATTACH_POLL_MS = 500;

/** What the log stream needs of the runtime for one instance. */
export interface LogTarget {
  /** For modem.demuxStream. */
  docker: Dockerode;
  container: Dockerode.Container;
  instanceId: string;
  /** The container's name, for messages. */
  containerName: string;
  /** The container's inspect info, undefined once it is gone. */
  inspect(): Promise<Dockerode.ContainerInspectInfo | undefined>;
  /** Open streams, so the runtime can close them; the stream removes itself when destroyed. */
  openLogs: Set<Readable>;
}

/**
 * Log lines from the json-file driver, demultiplexed and split per stream. With follow the
 * Readable outlives the container's runs: when the engine ends the stream because the container
 * exited, it waits for the container to be started again (restart) and continues from the last
 * line seen; it ends when the container is removed, and destroying it closes the engine stream.
 */
export async function openLogStream(target: LogTarget, options: LogOptions): Promise<Readable> {
  const { docker, container, instanceId, containerName, openLogs } = target;
  const initial = await target.inspect();
  if (!initial) throw new Error(`no container for instance ${instanceId}`);
  // The run we last attached to; a different StartedAt means it was started again meanwhile
  // (even if that run already exited between two polls).
  let attachedStartedAt = initial.State.StartedAt;

  let current: NodeJS.ReadableStream & { destroy?: () => void } | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let lastTs = ''; // RFC3339Nano (fixed width, UTC) of the last message seen

  const out = new Readable({
    objectMode: true,
    read() {
      current?.resume();
    },
    destroy(err, callback) {
      closed = true;
      clearTimeout(pollTimer);
      current?.destroy?.();
      current = undefined;
      openLogs.delete(out);
      callback(err);
    },
  });
  openLogs.add(out);

  type StreamName = LogLine['stream'];
  const state: Record<StreamName, { text: string; time: number | null; decoder: StringDecoder }> = {
    stdout: { text: '', time: null, decoder: new StringDecoder('utf8') },
    stderr: { text: '', time: null, decoder: new StringDecoder('utf8') },
  };
  const emit = (line: LogLine) => {
    if (closed) return;
    if (!out.push(line)) current?.pause();
  };
  // demuxStream writes exactly one engine frame per write; with timestamps each frame is one
  // log message "<RFC3339Nano> <text>" (long lines come as several messages without "\n").
  const frameWriter = (stream: StreamName, skipUpTo: () => string) =>
    ({
      write(frame: Buffer): boolean {
        let body = frame;
        let time: number | null = null;
        const space = frame.indexOf(0x20);
        if (space > 0 && space <= 40) {
          const ts = frame.subarray(0, space).toString('latin1');
          if (/^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)$/.test(ts)) {
            if (ts <= skipUpTo()) return true; // already emitted before a re-attach
            if (ts > lastTs) lastTs = ts;
            time = parseDockerTime(ts);
            body = frame.subarray(space + 1);
          }
        }
        const s = state[stream];
        if (s.text === '') s.time = time;
        s.text += s.decoder.write(body);
        let nl: number;
        while ((nl = s.text.indexOf('\n')) >= 0) {
          emit({ stream, time: s.time, text: s.text.slice(0, nl).replace(/\r$/, '') });
          s.text = s.text.slice(nl + 1);
          s.time = time;
        }
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  const flush = () => {
    for (const stream of ['stdout', 'stderr'] as const) {
      const s = state[stream];
      s.text += s.decoder.end();
      if (s.text !== '') emit({ stream, time: s.time, text: s.text.replace(/\r$/, '') });
      s.text = '';
      s.time = null;
      s.decoder = new StringDecoder('utf8');
    }
  };
  const fail = (err: unknown) => {
    if (!closed) out.destroy(err instanceof Error ? err : new Error(String(err)));
  };

  const attach = async (first: boolean): Promise<void> => {
    const skipBefore = first ? '' : lastTs;
    const query: Dockerode.ContainerLogsOptions = { stdout: true, stderr: true, timestamps: true };
    if (first) {
      if (options.tail !== undefined) query.tail = Math.max(0, options.tail);
    } else if (lastTs) {
      query.since = toSince(lastTs);
    }
    let raw: Buffer | NodeJS.ReadableStream;
    try {
      raw = options.follow
        ? await container.logs({ ...query, follow: true })
        : await container.logs({ ...query, follow: false });
    } catch (err) {
      if (statusOf(err) === 404) {
        flush();
        if (!closed) out.push(null);
        return;
      }
      throw new Error(`cannot read logs of ${containerName}: ${engineMessage(err)}`);
    }
    const source: NodeJS.ReadableStream & { destroy?: () => void } = Buffer.isBuffer(raw) ? Readable.from([raw]) : raw;
    if (closed) {
      source.destroy?.();
      return;
    }
    current = source;
    docker.modem.demuxStream(source, frameWriter('stdout', () => skipBefore), frameWriter('stderr', () => skipBefore));
    let ended = false;
    const onEnd = () => {
      if (ended) return;
      ended = true;
      if (current === source) current = undefined;
      if (closed) return;
      flush();
      if (!options.follow) {
        out.push(null);
        return;
      }
      waitForRestart().catch(fail);
    };
    source.once('end', onEnd);
    source.once('close', onEnd);
    source.once('error', (err: Error) => {
      if (!closed) fail(err);
    });
  };

  // Following: the engine ended the stream, so the container exited or was removed.
  const waitForRestart = async (): Promise<void> => {
    if (closed) return;
    const info = await target.inspect();
    if (closed) return;
    if (!info) {
      out.push(null); // removed: the end of this instance's logs
      return;
    }
    if (info.State.StartedAt !== attachedStartedAt) {
      attachedStartedAt = info.State.StartedAt;
      await attach(false);
      return;
    }
    if (isRunning(info)) {
      // Same run still "running": the engine has not recorded the exit yet, or it dropped the
      // stream; follow again shortly (from the last line seen).
      pollTimer = setTimeout(() => attach(false).catch(fail), 100);
      return;
    }
    pollTimer = setTimeout(() => waitForRestart().catch(fail), LOG_REATTACH_POLL_MS); // wait for a restart
  };

  await attach(true);
  return out;
}

/** "2024-05-01T10:00:00.123456789Z" → "1714557600.123456789", the engine's `since` format. */
function toSince(ts: string): string {
  const ms = Date.parse(trimFraction(ts));
  const fraction = /\.(\d+)/.exec(ts)?.[1] ?? '';
  return `${Math.floor(ms / 1000)}.${fraction.padEnd(9, '0').slice(0, 9)}`;
}
