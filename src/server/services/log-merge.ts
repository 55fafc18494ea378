// The merge of several instances' log lines into one stream ordered by time: a k-way merge over
// one queue per instance (k is an app's instances, so the smallest head is found by a scan).
//
// The guarantee. Each instance's lines keep their own order. Across instances, a line is written
// once it is the oldest head and every instance still open either has a line queued or (when
// following) the line is older than `windowMs`: so lines that reach the server up to `windowMs`
// after they were written are still put in their place; a line later than that is written when it
// comes, after newer lines of other instances. Without a window (a plain read) the merge waits for
// every instance's lines, so the order is exact, unless more than `maxBytes` are waiting: then the
// oldest heads are written to make room, which is the only other case of lines out of order.

export interface MergedLine {
  time: number;
  instance: string;
  text: string;
}

interface Source {
  queue: MergedLine[];
  /** Index of the next line to write: the queue is compacted only now and then. */
  head: number;
  ended: boolean;
}

export interface LogMergeOptions {
  /** Following: how long a line waits for an instance that sent nothing. Undefined: wait until every instance ended. */
  windowMs?: number;
  /** Bytes of text waiting across all queues before the oldest are written regardless. */
  maxBytes: number;
}

export class LogMerge {
  private readonly sources = new Map<string, Source>();
  private bytes = 0;

  constructor(
    private readonly write: (line: MergedLine) => void,
    private readonly options: LogMergeOptions,
    private readonly now: () => number = Date.now,
  ) {}

  has(instance: string): boolean {
    return this.sources.has(instance);
  }

  /** A new instance, or one that ended being read again (its queue and order kept). */
  add(instance: string): void {
    const source = this.sources.get(instance);
    if (source) source.ended = false;
    else this.sources.set(instance, { queue: [], head: 0, ended: false });
  }

  push(instance: string, lines: readonly string[], times: readonly number[] | undefined): void {
    const source = this.sources.get(instance);
    if (!source || source.ended) return;
    const arrived = this.now();
    lines.forEach((text, i) => {
      source.queue.push({ time: times?.[i] ?? arrived, instance, text });
      this.bytes += text.length;
    });
    this.flush();
  }

  end(instance: string): void {
    const source = this.sources.get(instance);
    if (!source) return;
    source.ended = true;
    this.flush();
  }

  /** True when every instance ended and every line was written. */
  get done(): boolean {
    for (const source of this.sources.values()) if (!source.ended || source.head < source.queue.length) return false;
    return true;
  }

  /** Writes every line the guarantee allows now; the route calls it on a timer when following. */
  flush(): void {
    const { windowMs, maxBytes } = this.options;
    for (;;) {
      let oldest: Source | undefined;
      let waiting = false;
      for (const source of this.sources.values()) {
        const line = source.queue[source.head];
        if (!line) {
          if (!source.ended) waiting = true;
          continue;
        }
        if (!oldest || line.time < oldest.queue[oldest.head]!.time) oldest = source;
      }
      if (!oldest) return;
      const line = oldest.queue[oldest.head]!;
      const waitedEnough = windowMs !== undefined && line.time <= this.now() - windowMs;
      if (waiting && !waitedEnough && this.bytes <= maxBytes) return;
      oldest.head++;
      this.bytes -= line.text.length;
      if (oldest.head > 1024 && oldest.head * 2 > oldest.queue.length) {
        oldest.queue = oldest.queue.slice(oldest.head);
        oldest.head = 0;
      }
      this.write(line);
    }
  }
}
