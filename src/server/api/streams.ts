// Long-lived responses (the events and watch streams, followed logs): how many may be open,
// and what happens to a reader that stops reading.
//
// Each stream holds a socket and a store watcher for as long as its client stays, so their number
// is capped per token and overall (429 past either, before anything is started). A reader that
// stops reading must not make the server buffer for it without end: past a bound the stream is
// dropped. Event streams carry store revisions as ids, so a dropped client resumes exactly where
// it was with Last-Event-ID; log streams simply end with a line saying why.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';

/** Open streams at once, for all callers and for one token. */
export const MAX_STREAMS = 1024;
export const MAX_STREAMS_PER_TOKEN = 128;
/**
 * Bytes a stream may have waiting for a slow reader before it is dropped (or twice its largest
 * message, so that a big snapshot followed by a change does not drop a reader that is keeping up).
 */
export const MAX_BUFFERED_BYTES = 1024 * 1024;

export class TooManyStreamsError extends Error {
  readonly statusCode = 429;
}

/** Open streams of one server; every streaming route draws from it. */
export class StreamCounter {
  private total = 0;
  private readonly perToken = new Map<string, number>();

  /** Counts a new stream for `token`, or throws when a cap is reached; returns the release. */
  take(token: string): () => void {
    const mine = this.perToken.get(token) ?? 0;
    if (this.total >= MAX_STREAMS) throw new TooManyStreamsError(`too many open streams on this server (${MAX_STREAMS}); try again later`);
    if (mine >= MAX_STREAMS_PER_TOKEN) throw new TooManyStreamsError(`token "${token}" has ${mine} streams open, the most one token may; close some first`);
    this.total++;
    this.perToken.set(token, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perToken.get(token) ?? 1) - 1;
      if (left > 0) this.perToken.set(token, left);
      else this.perToken.delete(token);
    };
  }

  get open(): number {
    return this.total;
  }
}

export interface RawStream {
  raw: ServerResponse;
  /** Writes unless the reader is too far behind; false once the stream is gone. */
  write(chunk: string): boolean;
  /** Called once, when the client goes away or the stream is dropped. */
  onClose(cleanup: () => void): void;
  end(last?: string): void;
}

/**
 * Takes the response over for a long-lived stream: counts it (429 when over a cap, thrown before
 * the response is touched), and drops it when its reader falls MAX_BUFFERED_BYTES behind.
 */
export function openStream(streams: StreamCounter, request: FastifyRequest, reply: FastifyReply, headers: Record<string, string>, onDrop: () => void): RawStream {
  const release = streams.take(request.caller?.name ?? 'anonymous');
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, headers);
  const cleanups: (() => void)[] = [release];
  let closed = false;
  let largest = 0;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const cleanup of cleanups) cleanup();
  };
  request.raw.on('close', close);
  raw.on('close', close);
  return {
    raw,
    write(chunk) {
      if (closed || raw.destroyed) return false;
      largest = Math.max(largest, chunk.length);
      if (raw.writableLength > Math.max(MAX_BUFFERED_BYTES, 2 * largest)) {
        onDrop();
        raw.destroy();
        close();
        return false;
      }
      raw.write(chunk);
      return true;
    },
    onClose: (cleanup) => (closed ? cleanup() : cleanups.push(cleanup)),
    end(last) {
      if (!closed && !raw.destroyed) raw.end(last);
    },
  };
}

export interface EventStream {
  send(event: string, id: number, data: unknown): void;
  /** `json` is already JSON text (a store value): sent as is, without parsing and printing it again. */
  sendJson(event: string, id: number, json: string): void;
  /** Called once, when the client goes away (or was dropped for not reading). */
  onClose(cleanup: () => void): void;
}

/**
 * Server-Sent Events: messages with an id (a store revision), a comment now and then so idle
 * proxies keep the stream, and the client's Last-Event-ID to resume after a drop.
 */
export function openEventStream(streams: StreamCounter, request: FastifyRequest, reply: FastifyReply, comment?: string): EventStream {
  const stream = openStream(streams, request, reply, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' }, () => {
    request.log.warn('an event stream reader fell behind and was dropped; it resumes with Last-Event-ID');
  });
  if (comment) stream.write(`: ${comment}\n\n`);
  const keepAlive = setInterval(() => stream.write(': keep-alive\n\n'), 15_000);
  stream.onClose(() => clearInterval(keepAlive));
  return {
    send: (event, id, data) => void stream.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    // JSON text holds no raw newline (they are escaped in strings), so it fits one data line.
    sendJson: (event, id, json) => void stream.write(`id: ${id}\nevent: ${event}\ndata: ${json}\n\n`),
    onClose: stream.onClose,
  };
}
