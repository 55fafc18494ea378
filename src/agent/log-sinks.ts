// Where shipped lines go: a syslog receiver (RFC 5424; TCP with octet counting, RFC 6587, or one
// UDP datagram per line) or an HTTP endpoint taking JSON lines. Each sink has a bounded queue:
// the agent's reading of instance output only ever appends to it, and when it is full the line is
// dropped and counted, so a sink that is slow, down or never reads costs neither memory nor the
// instance's output. Failed connections and requests are retried with a backoff (0.5 s doubling
// to 30 s). TLS for syslog over TCP is not done.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv6, type Socket } from 'node:net';
import { FACILITIES, parseAddress, type LogSinkSpec } from '../model/log-shipping.js';

/** One line of an instance, with what every sink says about it. */
export interface ShippedLine {
  time: number;
  stream: 'stdout' | 'stderr';
  text: string;
  node: string;
  app: string;
  env: string;
  team: string;
  entry: string;
  instance: string;
}

export interface Sink {
  /** Queues the line, or drops it (counted) when the queue is full. Never waits. */
  push(line: ShippedLine): void;
  /** Lines dropped so far. */
  readonly dropped: number;
  readonly describe: string;
  close(): void;
}

export const SINK_QUEUE_LINES = 10_000;
export const SINK_QUEUE_BYTES = 4 * 1024 * 1024;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** Longest UDP message: what fits one datagram without IP fragmentation on most paths is less, but 8 KiB is what receivers commonly take. */
const MAX_DATAGRAM = 8 * 1024;
const HTTP_BATCH_LINES = 500;
const HTTP_BATCH_WAIT_MS = 500;
const HTTP_TIMEOUT_MS = 10_000;

/** A bounded FIFO of encoded messages. */
class BoundedQueue<T extends { length: number }> {
  private items: T[] = [];
  private head = 0;
  private bytes = 0;
  dropped = 0;

  push(item: T): void {
    if (this.size >= SINK_QUEUE_LINES || this.bytes + item.length > SINK_QUEUE_BYTES) {
      this.dropped++;
      return;
    }
    this.items.push(item);
    this.bytes += item.length;
  }

  shift(): T | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.items[this.head++] = undefined as unknown as T;
    this.bytes -= item.length;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Puts back what could not be sent, ahead of the rest. */
  unshift(items: T[]): void {
    this.items = [...items, ...this.items.slice(this.head)];
    this.head = 0;
    for (const item of items) this.bytes += item.length;
  }

  get size(): number {
    return this.items.length - this.head;
  }
}

class Backoff {
  private delay = BACKOFF_MIN_MS;
  next(): number {
    const now = this.delay;
    this.delay = Math.min(BACKOFF_MAX_MS, this.delay * 2);
    return now;
  }
  reset(): void {
    this.delay = BACKOFF_MIN_MS;
  }
}

/** SD-PARAM values escape `"`, `\` and `]` (RFC 5424 §6.3.3). */
const sdValue = (value: string) => value.replace(/["\\\]]/g, (c) => `\\${c}`);
/** HOSTNAME, APP-NAME and PROCID are printable ASCII without spaces. */
const header = (value: string, max: number) => value.replace(/[^!-~]/g, '_').slice(0, max) || '-';

/** One RFC 5424 message: stdout at severity info (6), stderr at err (3). */
export function syslogMessage(line: ShippedLine, facility: number, appName: string | undefined): string {
  const pri = facility * 8 + (line.stream === 'stderr' ? 3 : 6);
  const sd = `[gantry@32473 entry="${sdValue(line.entry)}" env="${sdValue(line.env)}" team="${sdValue(line.team)}"]`;
  return `<${pri}>1 ${new Date(line.time).toISOString()} ${header(line.node, 255)} ${header(appName ?? line.app, 48)} ${header(line.instance, 128)} - ${sd} ${line.text}`;
}

export function openSink(spec: LogSinkSpec, log: (line: string) => void): Sink {
  if ('syslog' in spec) {
    const { host, port } = parseAddress(spec.syslog.address)!;
    const facility = FACILITIES[spec.syslog.facility]!;
    const format = (line: ShippedLine) => syslogMessage(line, facility, spec.syslog.appName);
    return spec.syslog.protocol === 'udp' ? new UdpSyslogSink(host, port, format) : new TcpSyslogSink(host, port, format);
  }
  return new HttpSink(spec.http.url, spec.http.headers, log);
}

class TcpSyslogSink implements Sink {
  private readonly queue = new BoundedQueue<Buffer>();
  private socket: Socket | undefined;
  private writable = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff();
  readonly describe: string;

  constructor(private readonly host: string, private readonly port: number, private readonly format: (line: ShippedLine) => string) {
    this.describe = `syslog tcp ${isIPv6(host) ? `[${host}]` : host}:${port}`;
    this.connect();
  }

  get dropped(): number {
    return this.queue.dropped;
  }

  push(line: ShippedLine): void {
    const message = Buffer.from(this.format(line), 'utf8');
    // Octet counting (RFC 6587 §3.4.1): the length, a space, the message.
    this.queue.push(Buffer.concat([Buffer.from(`${message.length} `), message]));
    this.pump();
  }

  private connect(): void {
    if (this.closed) return;
    const socket = connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setKeepAlive(true);
    socket.on('connect', () => {
      this.backoff.reset();
      this.writable = true;
      this.pump();
    });
    socket.on('drain', () => {
      this.writable = true;
      this.pump();
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      this.writable = false;
      this.socket = undefined;
      if (this.closed) return;
      const delay = this.backoff.next();
      this.retry = setTimeout(() => this.connect(), delay);
    });
    socket.on('data', () => undefined); // a receiver has nothing to say; never buffer it
  }

  /** Writes queued messages while the socket takes them; stops at its buffer's high-water mark. */
  private pump(): void {
    while (this.writable && this.socket) {
      const message = this.queue.shift();
      if (!message) return;
      this.writable = this.socket.write(message);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.socket?.destroy();
  }
}

class UdpSyslogSink implements Sink {
  private readonly queue = new BoundedQueue<Buffer>();
  private readonly socket: UdpSocket;
  private sending = false;
  readonly describe: string;

  constructor(private readonly host: string, private readonly port: number, private readonly format: (line: ShippedLine) => string) {
    this.describe = `syslog udp ${isIPv6(host) ? `[${host}]` : host}:${port}`;
    this.socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    this.socket.on('error', () => undefined); // a datagram lost is a datagram lost
  }

  get dropped(): number {
    return this.queue.dropped;
  }

  push(line: ShippedLine): void {
    const message = Buffer.from(this.format(line), 'utf8');
    this.queue.push(message.length > MAX_DATAGRAM ? message.subarray(0, MAX_DATAGRAM) : message);
    this.pump();
  }

  private pump(): void {
    if (this.sending) return;
    const message = this.queue.shift();
    if (!message) return;
    this.sending = true;
    this.socket.send(message, this.port, this.host, () => {
      this.sending = false;
      this.pump();
    });
  }

  close(): void {
    this.socket.close();
  }
}

class HttpSink implements Sink {
  private readonly queue = new BoundedQueue<string>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private closed = false;
  private readonly backoff = new Backoff();
  private readonly abort = new AbortController();
  readonly describe: string;

  constructor(private readonly url: string, private readonly headers: Record<string, string>, private readonly log: (line: string) => void) {
    this.describe = `http ${new URL(url).origin}`;
  }

  get dropped(): number {
    return this.queue.dropped;
  }

  push(line: ShippedLine): void {
    const { time, ...rest } = line;
    this.queue.push(JSON.stringify({ time: new Date(time).toISOString(), ...rest }));
    if (this.queue.size >= HTTP_BATCH_LINES) this.send();
    else this.timer ??= setTimeout(() => this.send(), HTTP_BATCH_WAIT_MS);
  }

  private send(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight || this.closed) return;
    const batch: string[] = [];
    for (let line = this.queue.shift(); line !== undefined; line = batch.length < HTTP_BATCH_LINES ? this.queue.shift() : undefined) batch.push(line);
    if (!batch.length) return;
    this.inFlight = true;
    fetch(this.url, {
      method: 'POST',
      headers: { ...this.headers, 'content-type': 'application/x-ndjson' },
      body: `${batch.join('\n')}\n`,
      signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]),
    }).then(
      async (res) => {
        await res.body?.cancel();
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        this.backoff.reset();
        this.inFlight = false;
        if (this.queue.size) this.send();
      },
).catch((err: unknown) => {
      this.inFlight = false;
      if (this.closed) return;
      // The batch goes back ahead of newer lines; what no longer fits is dropped and counted.
      this.queue.unshift(batch);
      const delay = this.backoff.next();
      this.log(`log sink ${this.describe}: ${err instanceof Error ? err.message : String(err)}; retrying in ${delay} ms`);
      this.timer = setTimeout(() => this.send(), delay);
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.abort.abort();
  }
}
