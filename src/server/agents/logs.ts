// Log requests relayed to agents: the lines a node's agent sends go to whoever asked, until the
// agent ends the request, the asker cancels it, or the agent disconnects.
//
// A followed request outlives a disconnection of its agent (restarted, or its connection broke):
// it waits for the agent to connect again, at most RESUME_WITHIN_MS, and is then asked again from
// the time of the last line it got (the agent's `since`, to the ms), the lines of that very ms
// already passed on skipped, so nothing is repeated and nothing written meanwhile is lost. An agent
// that sends no times (older than its server) is asked again for new lines only.
import { randomUUID } from 'node:crypto';
import type { AgentConnections, Session } from './connections.js';
import type { LogFilter } from '../../model/agent-protocol.js';

/** How long a followed request waits for its agent to come back before it ends. */
export const RESUME_WITHIN_MS = 120_000;

export type LogRequestOptions = { tail?: number; follow: boolean } & LogFilter;

export interface LogRequest {
  node: string;
  /** `times`: one per line, when the request asked for timestamps (and the agent knows them). */
  onLines: (lines: string[], times?: number[]) => void;
  onEnd: (error?: string) => void;
}

interface Relayed extends LogRequest {
  id: string;
  instanceId: string;
  options: LogRequestOptions;
  /** The connection it was sent on: only that one's closing interrupts it. */
  session: Session | undefined;
  /** The last line's time and how many lines of that ms were passed on. */
  last?: { time: number; count: number };
  /** Lines of this ms still to skip: those passed on before a resume. */
  skip?: { time: number; count: number };
  /** Its agent sent lines without times. */
  timeless?: boolean;
  /** Waiting for its agent to come back; ends the request when it fires. */
  waiting?: NodeJS.Timeout;
}

export class LogRelays {
  private readonly logRequests = new Map<string, Relayed>();
  private readonly interrupted = new Set<Relayed>();

  constructor(private readonly connections: AgentConnections) {}

  /** Asks the node's agent for an instance's logs; returns a function that cancels the request. */
  request(node: string, instanceId: string, options: LogRequestOptions, onLines: LogRequest['onLines'], onEnd: LogRequest['onEnd']): () => void {
    const request: Relayed = { id: randomUUID(), node, instanceId, options, session: undefined, onLines, onEnd };
    if (!this.send(request, options)) {
      onEnd(`the agent of node ${node} is not connected`);
      return () => {};
    }
    return () => {
      clearTimeout(request.waiting);
      this.interrupted.delete(request);
      if (this.logRequests.delete(request.id)) this.connections.send(node, { type: 'logs.cancel', requestId: request.id });
    };
  }

  lines(node: string, requestId: string, lines: string[], times?: number[]): void {
    const request = this.logRequestOf(node, requestId);
    if (!request) return;
    if (!times) {
      request.timeless = true;
      request.onLines(lines, undefined);
      return;
    }
    let from = 0;
    const skip = request.skip;
    if (skip) {
      while (from < lines.length && skip.count > 0 && times[from] === skip.time) {
        from++;
        skip.count--;
      }
      if (from < lines.length) request.skip = undefined;
    }
    for (let i = from; i < times.length; i++) {
      const time = times[i]!;
      if (request.last?.time === time) request.last.count++;
      else request.last = { time, count: 1 };
    }
    if (from === lines.length) return;
    const kept = from === 0 ? lines : lines.slice(from);
    request.onLines(kept, request.options.timestamps ? (from === 0 ? times : times.slice(from)) : undefined);
  }

  end(node: string, requestId: string, error: string | undefined): void {
    const request = this.logRequestOf(node, requestId);
    if (!request) return;
    this.logRequests.delete(requestId);
    request.onEnd(error);
  }

  /** A connection of the node's agent closed: what was sent on it ends, or, followed, waits for the agent to come back. */
  disconnected(node: string, session: Session): void {
    for (const [id, request] of this.logRequests) {
      if (request.node !== node || request.session !== session) continue;
      this.logRequests.delete(id);
      if (!request.options.follow) {
        request.onEnd(`agent of node ${node} disconnected`);
        continue;
      }
      this.interrupted.add(request);
      request.waiting = setTimeout(() => {
        this.interrupted.delete(request);
        request.onEnd(`agent of node ${node} disconnected`);
      }, RESUME_WITHIN_MS);
      request.waiting.unref();
    }
    // A newer connection of the node may be there already (it replaced this one).
    const current = this.connections.byNode.get(node);
    if (current && current !== session) this.connected(node);
  }

  /** The node's agent is connected (again): interrupted follows are asked for again. */
  connected(node: string): void {
    for (const request of this.interrupted) {
      if (request.node !== node) continue;
      const { tail: _tail, ...rest } = request.options;
      const again: LogRequestOptions = request.last
        ? { ...rest, timestamps: true, since: Math.max(rest.since ?? 0, request.last.time) }
        : request.timeless ? { ...rest, tail: 0 } : request.options;
      request.id = randomUUID();
      if (!this.send(request, again)) continue; // gone again: still waiting
      clearTimeout(request.waiting);
      this.interrupted.delete(request);
      if (request.last) request.skip = { ...request.last };
    }
  }

  /** Sends the request on the node's current connection (timestamps always asked when following: a resume needs them). */
  private send(request: Relayed, options: LogRequestOptions): boolean {
    const session = this.connections.byNode.get(request.node);
    const timestamps = options.timestamps || options.follow;
    if (!session || !this.connections.send(request.node, { type: 'logs', requestId: request.id, instanceId: request.instanceId, ...options, ...(timestamps ? { timestamps } : {}) })) return false;
    request.session = session;
    this.logRequests.set(request.id, request);
    return true;
  }

  private logRequestOf(node: string, requestId: string): Relayed | undefined {
    const request = this.logRequests.get(requestId);
    return request?.node === node ? request : undefined;
  }
}
