// Instance logs on the server's request: the server asks for an instance's lines (a tail, maybe
// followed), the agent reads them from the instance's runtime and sends them back in batches
// under the request's id, until the stream ends, fails or the server cancels it.
import type { Readable } from 'node:stream';
import { MAX_LOG_LINE, type AgentToServer, type LogFilter } from '../model/agent-protocol.js';
import { grepMatcher, grepProblem } from '../model/log-grep.js';
import type { LogLine, Runtime } from '../runtime/runtime.js';

/** Lines sent in one message at most; a batch otherwise goes out BATCH_WAIT_MS after its first line. */
const BATCH_LINES = 500;
const BATCH_WAIT_MS = 50;

export class LogRelay {
  private readonly streams = new Map<string, Readable>();

  constructor(
    private readonly send: (message: AgentToServer) => boolean,
    /** The runtime the instance runs on, if it is on this node. */
    private readonly runtimeOf: (instanceId: string) => Runtime | undefined,
    private readonly nodeName: () => string,
  ) {}

  async open(requestId: string, instanceId: string, tail: number | undefined, follow: boolean, filter: LogFilter = {}): Promise<void> {
    const runtime = this.runtimeOf(instanceId);
    if (!runtime) return void this.send({ type: 'log.end', requestId, error: `instance ${instanceId} is not on node ${this.nodeName()}` });
    // The server checked the pattern; an agent checks again what it is about to run.
    const problem = filter.grep === undefined ? undefined : grepProblem(filter.grep);
    if (problem) return void this.send({ type: 'log.end', requestId, error: `grep: ${problem}` });
    try {
      const stream = await runtime.logs(instanceId, { tail, follow });
      this.streams.set(requestId, stream);
      this.relay(requestId, stream, filter);
    } catch (err) {
      this.send({ type: 'log.end', requestId, error: err instanceof Error ? err.message : String(err) });
    }
  }

  cancel(requestId: string): void {
    this.streams.get(requestId)?.destroy();
    this.streams.delete(requestId);
  }

  close(): void {
    for (const stream of this.streams.values()) stream.destroy();
    this.streams.clear();
  }

  private relay(requestId: string, stream: Readable, filter: LogFilter): void {
    let batch: string[] = [];
    let times: number[] = [];
    let timer: NodeJS.Timeout | undefined;
    const matches = filter.grep === undefined ? () => true : grepMatcher(filter.grep);
    const sendBatch = () => {
      timer = undefined;
      if (batch.length) this.send({ type: 'log.lines', requestId, lines: batch, ...(filter.timestamps ? { times } : {}) });
      batch = [];
      times = [];
    };
    stream.on('data', (line: LogLine) => {
      // Lines without a time (process-runtime files written before its log writer, or on a host
      // without one) are dated when read.
      const time = line.time ?? Date.now();
      if (filter.since !== undefined && time < filter.since) return;
      if (!matches(line.text)) return;
      // The server refuses longer lines (and the connection with them).
      batch.push(line.text.length > MAX_LOG_LINE ? `${line.text.slice(0, MAX_LOG_LINE)}… [line cut at ${MAX_LOG_LINE} characters]` : line.text);
      times.push(Math.max(0, Math.floor(time)));
      if (batch.length >= BATCH_LINES) sendBatch();
      else timer ??= setTimeout(sendBatch, BATCH_WAIT_MS);
    });
    stream.on('close', () => {
      clearTimeout(timer);
      sendBatch();
      this.streams.delete(requestId);
      this.send({ type: 'log.end', requestId });
    });
    stream.on('error', (err) => this.send({ type: 'log.end', requestId, error: err.message }));
  }
}
