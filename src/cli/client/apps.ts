// The CLI client's calls about apps: specs applied, releases and rollouts, instances and their
// logs, the events and watch streams, endpoints.
import type {
  AppDetailResponse,
  AppListResponse,
  ApplyResponse,
  ApprovalPendingResponse,
  EventListResponse,
  GantryEvent,
  InstanceListResponse,
  InstanceAction,
  InstanceView,
  LogsQuery,
  AppLogsQuery,
} from '../../model/api.js';
import type { Endpoint } from '../../model/registry.js';
import type { ReleaseRecord, RolloutRecord } from '../../model/types.js';
import type { Change } from '../../model/diff.js';
import { readLines, readText, SseParser, type SseMessage } from '../stream.js';
import { NotAnEventStreamError } from './errors.js';
import { ApiTransport, enc } from './transport.js';

export interface RolloutStatus {
  rollout: RolloutRecord | null;
  entries: { entry: string; strategy: string; replicas: number; updated: number; healthy: number; old: number }[];
}

/** One message of the watch stream: a full snapshot, or the changes of one store revision. */
export interface WatchMessage {
  kind: 'snapshot' | 'change';
  revision: number;
  data: { revision: number; items?: { key: string; value: unknown }[]; changes?: { type: 'put' | 'delete'; key: string; value?: unknown }[] };
}

export interface FollowEventsOptions {
  app?: string;
  instance?: string;
  /** Start after this event sequence number. */
  since?: number;
  /** Reconnections tried in a row on a dropped connection before giving up. */
  retries?: number;
  /** Delay before the first reconnection, growing with each failure. */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

export class AppCalls extends ApiTransport {
  /** POST /v1/apps with the spec text as written (YAML or JSON). */
  apply(specText: string, contentType = 'text/yaml'): Promise<ApplyResponse | ApprovalPendingResponse> {
    return this.json('POST', '/v1/apps', { body: specText, contentType });
  }

  listApps(): Promise<AppListResponse> {
    return this.json('GET', '/v1/apps');
  }

  getApp(app: string): Promise<AppDetailResponse> {
    return this.json('GET', `/v1/apps/${enc(app)}`);
  }

  removeApp(app: string): Promise<unknown> {
    return this.json('DELETE', `/v1/apps/${enc(app)}`);
  }

  stopApp(app: string): Promise<unknown> {
    return this.json('POST', `/v1/apps/${enc(app)}/stop`);
  }

  startApp(app: string): Promise<unknown> {
    return this.json('POST', `/v1/apps/${enc(app)}/start`);
  }

  scale(app: string, entry: string, replicas: number): Promise<unknown> {
    return this.json('POST', `/v1/apps/${enc(app)}/entries/${enc(entry)}/scale`, {
      body: JSON.stringify({ replicas }),
      contentType: 'application/json',
    });
  }

  releases(app: string): Promise<{ releases: ReleaseRecord[] }> {
    return this.json('GET', `/v1/apps/${enc(app)}/releases`);
  }

  diff(app: string, from: number, to: number): Promise<{ from: number; to: number; changes: Change[] }> {
    return this.json('GET', `/v1/apps/${enc(app)}/diff`, { query: { from, to } });
  }

  rollback(app: string, release?: number): Promise<{ from: number; to: number; release: number } | ApprovalPendingResponse> {
    return this.json('POST', `/v1/apps/${enc(app)}/rollback`, { body: JSON.stringify(release === undefined ? {} : { release }), contentType: 'application/json' });
  }

  rolloutStatus(app: string): Promise<RolloutStatus> {
    return this.json('GET', `/v1/apps/${enc(app)}/rollout`);
  }

  rolloutAction(app: string, action: 'pause' | 'resume' | 'promote' | 'abort'): Promise<{ rollout: RolloutRecord }> {
    return this.json('POST', `/v1/apps/${enc(app)}/rollout/${action}`);
  }

  prepull(app: string, timeout: string): Promise<{ nodes: Array<{ node: string; results?: Array<{ image: string; ms: number; error?: string }>; error?: string }> }> {
    return this.json('POST', `/v1/apps/${enc(app)}/prepull`, { body: JSON.stringify({ timeout }), contentType: 'application/json' });
  }

  capacity(app: string, entry: string): Promise<{ total: number; nodes: { node: string; count: number }[]; blocked?: string }> {
    return this.json('GET', '/v1/capacity', { query: { app, entry } });
  }

  /** Every instance matching the filter, page after page. */
  async listInstances(filter: { app?: string; node?: string } = {}): Promise<InstanceListResponse> {
    const page = (after?: string): Promise<InstanceListResponse> => this.json('GET', '/v1/instances', { query: { app: filter.app, node: filter.node, after } });
    let last = await page();
    const instances = [...last.instances];
    while (last.next) {
      last = await page(last.next);
      instances.push(...last.instances);
    }
    const { next: _next, ...rest } = last;
    return { ...rest, instances };
  }

  /** rebuild, restart, stop (keeping its place) or start one instance. */
  instanceAction(id: string, action: InstanceAction): Promise<{ instance: InstanceView }> {
    return this.json('POST', `/v1/instances/${enc(id)}/${action}`);
  }

  events(filter: { app?: string; instance?: string; since?: number; limit?: number } = {}): Promise<EventListResponse> {
    return this.json('GET', '/v1/events', { query: { ...filter } });
  }

  /** The log lines of an instance; with follow, keeps yielding as the server streams them. */
  async *logs(id: string, query: LogsQuery & { signal?: AbortSignal } = {}): AsyncGenerator<string> {
    const res = await this.send('GET', `/v1/instances/${enc(id)}/logs`, {
      query: { tail: query.tail, follow: query.follow ? 1 : undefined },
      accept: 'text/plain',
      signal: query.signal,
    });
    yield* readLines(res.body);
  }

  /** Every instance's lines of an app, merged by time and prefixed by the server; with follow, new instances join. */
  async *appLogs(app: string, query: AppLogsQuery & { signal?: AbortSignal } = {}): AsyncGenerator<string> {
    const res = await this.send('GET', `/v1/apps/${enc(app)}/logs`, {
      query: { entry: query.entry, tail: query.tail, since: query.since, grep: query.grep, follow: query.follow ? 1 : undefined },
      accept: 'text/plain',
      signal: query.signal,
    });
    yield* readLines(res.body);
  }

  /**
   * The events stream (GET /v1/events?follow=1, Server-Sent Events). A dropped connection is
   * reopened from the last event id received, a few times in a row before giving up.
   */
  async *followEvents(options: FollowEventsOptions = {}): AsyncGenerator<GantryEvent> {
    let lastSeq = -Infinity;
    const stream = this.sse('/v1/events', { app: options.app, instance: options.instance, follow: 1 }, options);
    for await (const message of stream) {
      if (message.event !== 'gantry' && message.event !== 'message') continue;
      const event = JSON.parse(message.data) as GantryEvent;
      if (event.seq === undefined && message.id !== undefined && /^\d+$/.test(message.id)) event.seq = Number(message.id);
      // After a reconnection a server may resend the event it resumed from: skip repeats.
      if (event.seq !== undefined) {
        if (event.seq <= lastSeq) continue;
        lastSeq = event.seq;
      }
      yield event;
    }
  }

  /**
   * The watch stream (GET /v1/watch): a `snapshot` unless resuming, then one `change` per store
   * revision. Reconnects from the last revision seen, so no change is lost or repeated.
   */
  async *watch(options: { prefix?: string; since?: number; signal?: AbortSignal; retries?: number; retryDelayMs?: number } = {}): AsyncGenerator<WatchMessage> {
    for await (const message of this.sse('/v1/watch', { prefix: options.prefix }, options)) {
      if (message.event === 'snapshot' || message.event === 'change') yield { kind: message.event, revision: Number(message.id), data: JSON.parse(message.data) };
    }
  }

  /**
   * One connection of the watch stream, for a caller that reconnects by itself (wait.ts): the
   * messages as they come, until the server ends the stream. An answer that is not an event
   * stream (an older server, a proxy's page) throws NotAnEventStreamError.
   */
  async *watchConnection(prefix: string, options: { since?: string; signal?: AbortSignal } = {}): AsyncGenerator<SseMessage> {
    const res = await this.send('GET', '/v1/watch', {
      query: { prefix, since: options.since },
      accept: 'text/event-stream',
      headers: options.since !== undefined ? { 'Last-Event-ID': options.since } : {},
      signal: options.signal,
    });
    const type = res.header('content-type') ?? '';
    if (!type.startsWith('text/event-stream')) {
      res.discard();
      throw new NotAnEventStreamError(`the server answered GET /v1/watch with ${type || 'no content type'}, not an event stream`);
    }
    const parser = new SseParser();
    for await (const chunk of readText(res.body)) yield* parser.push(chunk);
  }

  listEndpoints(filter: { app?: string; env?: string; entry?: string } = {}): Promise<{ revision: number; endpoints: Endpoint[] }> {
    return this.json('GET', '/v1/registry', { query: { ...filter } });
  }
}
