// Log requests relayed to agents: the lines a node's agent sends go to whoever asked, until the
// agent ends the request, the asker cancels it, or the agent disconnects.
import { randomUUID } from 'node:crypto';
import type { AgentConnections } from './connections.js';
import type { LogFilter } from '../../model/agent-protocol.js';

export interface LogRequest {
  node: string;
  /** `times`: one per line, when the request asked for timestamps (and the agent knows them). */
  onLines: (lines: string[], times?: number[]) => void;
  onEnd: (error?: string) => void;
}

export class LogRelays {
  private readonly logRequests = new Map<string, LogRequest>();

  constructor(private readonly connections: AgentConnections) {}

  /** Asks the node's agent for an instance's logs; returns a function that cancels the request. */
  request(node: string, instanceId: string, options: { tail?: number; follow: boolean } & LogFilter, onLines: LogRequest['onLines'], onEnd: LogRequest['onEnd']): () => void {
    const requestId = randomUUID();
    if (!this.connections.send(node, { type: 'logs', requestId, instanceId, ...options })) {
      onEnd(`the agent of node ${node} is not connected`);
      return () => {};
    }
    this.logRequests.set(requestId, { node, onLines, onEnd });
    return () => {
      if (this.logRequests.delete(requestId)) this.connections.send(node, { type: 'logs.cancel', requestId });
    };
  }

  lines(node: string, requestId: string, lines: string[], times?: number[]): void {
    this.logRequestOf(node, requestId)?.onLines(lines, times);
  }

  end(node: string, requestId: string, error: string | undefined): void {
    const request = this.logRequestOf(node, requestId);
    if (!request) return;
    this.logRequests.delete(requestId);
    request.onEnd(error);
  }

  /** The node's agent disconnected: its requests end. */
  disconnected(node: string): void {
    for (const [id, request] of this.logRequests) {
      if (request.node !== node) continue;
      request.onEnd(`agent of node ${node} disconnected`);
      this.logRequests.delete(id);
    }
  }

  private logRequestOf(node: string, requestId: string): LogRequest | undefined {
    const request = this.logRequests.get(requestId);
    return request?.node === node ? request : undefined;
  }
}
