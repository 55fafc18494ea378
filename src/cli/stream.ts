// Incremental parsers for streamed response bodies: text lines (logs) and Server-Sent Events.
// Both take text chunks as they arrive; a line or message may be split across any chunk boundary.

/** Splits a text stream into lines ("\n" or "\r\n" terminated), keeping the unterminated rest. */
export class LineSplitter {
  private rest = '';

  /** Complete lines contained in what has arrived so far (without their terminator). */
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const parts = text.split('\n');
    this.rest = parts.pop()!;
    return parts.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  }

  /** The last line when the stream ended without a newline, else undefined. */
  flush(): string | undefined {
    const rest = this.rest;
    this.rest = '';
    if (rest === '') return undefined;
    return rest.endsWith('\r') ? rest.slice(0, -1) : rest;
  }
}

export interface SseMessage {
  /** The `event:` field, "message" when absent. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last `id:` seen on the stream so far (it carries over to later messages), if any. */
  id?: string;
}

/**
 * A Server-Sent Events parser (the text/event-stream format of the HTML standard): fields
 * `event`, `data`, `id`, `retry`, comments starting with ":", messages ended by a blank line;
 * lines end with LF, CRLF or CR.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  /** The id of the last message, to resume from with Last-Event-ID. */
  lastEventId: string | undefined;
  /** The reconnection delay the server asked for, in ms. */
  retry: number | undefined;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const messages: SseMessage[] = [];
    let start = 0;
    for (;;) {
      let end = start;
      while (end < this.buffer.length && this.buffer[end] !== '\n' && this.buffer[end] !== '\r') end++;
      if (end >= this.buffer.length) break;
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (this.buffer[end] === '\r' && end === this.buffer.length - 1) break;
      const line = this.buffer.slice(start, end);
      start = end + (this.buffer[end] === '\r' && this.buffer[end + 1] === '\n' ? 2 : 1);
      const message = this.line(line);
      if (message) messages.push(message);
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  /** At the end of the stream: a message not followed by a blank line is discarded (as browsers do). */
  end(): void {
    this.buffer = '';
    this.data = [];
    this.eventType = '';
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const data = this.data;
    const event = this.eventType || 'message';
    this.data = [];
    this.eventType = '';
    if (data.length === 0) return undefined;
    const message: SseMessage = { event, data: data.join('\n') };
    if (this.lastEventId !== undefined) message.id = this.lastEventId;
    return message;
  }
}

/** Reads a byte stream as text chunks (UTF-8, multi-byte characters safe across chunks). */
export async function* readText(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  // Leaving early (the caller stopped reading) returns the body's iterator, which ends the stream.
  for await (const chunk of body) {
    const text = decoder.decode(chunk, { stream: true });
    if (text) yield text;
  }
  const tail = decoder.decode();
  if (tail) yield tail;
}

/** Lines of a streamed text body, yielded as soon as each is complete. */
export async function* readLines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const splitter = new LineSplitter();
  for await (const chunk of readText(body)) yield* splitter.push(chunk);
  const last = splitter.flush();
  if (last !== undefined) yield last;
}
