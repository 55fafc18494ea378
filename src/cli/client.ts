// The REST client of the Gantry API (src/model/api.ts), used by the CLI: requests, the errors
// they end in, and the streams (logs, events, watch). Requests go through http.ts (node:http, and
// node:https with the CA that verifies the server when one is given).
import type {
  ApiError,
  AppDetailResponse,
  AppListResponse,
  ApplyResponse,
  EventListResponse,
  GantryEvent,
  InstanceListResponse,
  LogsQuery,
  NodeListResponse,
  NodeView,
  InstanceView,
} from '../model/api.js';
import type { Endpoint } from '../model/registry.js';
import type { AdoptionResult, LoginResponse, RegistryLoginInfo, UserInfo } from '../model/api.js';
import type { AuditRecord, ReleaseRecord, RolloutRecord, TeamRecord, TeamRole } from '../model/types.js';
import type { ScopedTokenInfo, TokenInfo } from '../model/api.js';
import type { QuotaView } from '../model/types.js';
import type { ApprovalPendingResponse, InvitationView } from '../model/api.js';
import type { ApprovalRequest } from '../model/types.js';
import type { ConfigInfo, SecretInfo } from '../model/api.js';
import type { ConfigRecord } from '../model/types.js';

export interface RolloutStatus {
  rollout: RolloutRecord | null;
  entries: { entry: string; strategy: string; replicas: number; updated: number; healthy: number; old: number }[];
}
import type { Change } from '../model/diff.js';
import { exchange, type HttpAnswer } from './http.js';
import { readLines, readText, SseParser, type SseMessage } from './stream.js';

/** One message of the watch stream: a full snapshot, or the changes of one store revision. */
export interface WatchMessage {
  kind: 'snapshot' | 'change';
  revision: number;
  data: { revision: number; items?: { key: string; value: unknown }[]; changes?: { type: 'put' | 'delete'; key: string; value?: unknown }[] };
}

/** A non-2xx answer of the API. */
export class ApiRequestError extends Error {
  readonly problems: NonNullable<ApiError['problems']>;
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(body.error);
    this.name = 'ApiRequestError';
    this.problems = body.problems ?? [];
  }
}

/** The server did not answer at all (connection refused, unknown host, reset...). */
export class ServerUnreachableError extends Error {
  constructor(
    readonly server: string,
    readonly code: string,
    hint = 'Is it running? (gantry up)',
  ) {
    super(`cannot reach the Gantry server at ${server}: ${code}. ${hint}`);
    this.name = 'ServerUnreachableError';
  }
}

/** The TLS handshake failed on this side: the server's certificate could not be verified. */
export class TlsVerificationError extends ServerUnreachableError {
  constructor(server: string, code: string, reason: string) {
    super(server, code, '');
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? 'The certificate does not name the host of the server URL: use a --server URL with a name (or IP) the certificate lists, or --ca if it is signed by another CA'
      : 'If the server\'s certificate is self-signed or signed by a private CA, pass that CA\'s certificate with --ca FILE (or GANTRY_CA, or "ca" in the config file)';
    this.message = `cannot verify the TLS certificate of the Gantry server at ${server}: ${reason} (${code}). ${hint}`;
    this.name = 'TlsVerificationError';
  }
}

/** A stream was asked for and something else came back: waiting for it to change is pointless. */
export class NotAnEventStreamError extends Error {
  override name = 'NotAnEventStreamError';
}

export interface ClientOptions {
  server: string;
  token?: string;
  /** PEM CA certificate(s) that verify an https:// server; without it Node's default CAs apply. */
  ca?: string | Buffer;
}

type Query = Record<string, string | number | boolean | undefined>;

interface SendOptions {
  query?: Query;
  body?: string;
  contentType?: string;
  accept?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type NetworkError = { code?: unknown; errors?: { code?: unknown }[]; message?: unknown; cause?: unknown };

/**
 * Where a failed request says why: node:http's error itself (or the first of an AggregateError
 * when every address failed); an error of fetch carries it on `cause`.
 */
function networkError(err: unknown): NetworkError {
  const e = (err ?? {}) as NetworkError;
  return e.code === undefined && e.errors === undefined && e.cause !== undefined ? (e.cause as NetworkError) : e;
}

/** The error code of a failed request. */
function networkCode(err: unknown): string {
  const cause = networkError(err);
  const code = cause.code ?? cause.errors?.find((e) => e.code)?.code;
  if (typeof code === 'string') return code;
  if (typeof cause.message === 'string' && cause.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** OpenSSL's certificate verification codes (and Node's host name check), as Node reports them. */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/;

/** What a failed request means: a certificate not trusted, a scheme that does not match the server, or no server. */
export function unreachableError(server: string, err: unknown): ServerUnreachableError {
  const code = networkCode(err);
  const { message } = networkError(err);
  const reason = typeof message === 'string' && message ? message : code;
  if (CERT_ERROR.test(code)) return new TlsVerificationError(server, code, reason);
  const https = server.startsWith('https:');
  if (https && code === 'EPROTO' && /wrong version number|packet length too long/i.test(reason)) return new ServerUnreachableError(server, `TLS handshake failed (${reason})`, 'Does the server use TLS? If not, use an http:// URL');
  if (!https && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET')) return new ServerUnreachableError(server, code, 'Is it running? If it uses TLS (--tls-cert), use an https:// URL');
  return new ServerUnreachableError(server, code);
}

async function apiErrorFrom(res: HttpAnswer): Promise<ApiRequestError> {
  const text = await res.text().catch(() => '');
  let body: ApiError | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<ApiError>;
    if (parsed && typeof parsed.error === 'string') body = parsed as ApiError;
  } catch {
    // not JSON: use the text itself
  }
  body ??= { error: text.trim() || `${res.status} ${res.statusText}`.trim() };
  return new ApiRequestError(res.status, body);
}

export class GantryClient {
  readonly server: string;
  private readonly token: string | undefined;
  private readonly ca: string | Buffer | undefined;

  constructor(options: ClientOptions) {
    this.server = options.server.replace(/\/+$/, '');
    this.token = options.token;
    this.ca = options.ca;
  }

  /** Whether it verifies the server with a CA of its own (--ca, GANTRY_CA, the config file). */
  get verifiesWithCa(): boolean {
    return this.ca !== undefined;
  }

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

  listNodes(): Promise<NodeListResponse> {
    return this.json('GET', '/v1/nodes');
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

  /** Server-Sent Events with reconnection from the last event id. */
  private async *sse(path: string, query: Record<string, string | number | undefined>, options: { since?: number; signal?: AbortSignal; retries?: number; retryDelayMs?: number }): AsyncGenerator<SseMessage> {
    const retries = options.retries ?? 5;
    const retryDelayMs = options.retryDelayMs ?? 500;
    let lastId = options.since !== undefined ? String(options.since) : undefined;
    let failures = 0;
    for (;;) {
      const connectedAt = Date.now();
      let received = false;
      const abort = new AbortController();
      const onAbort = () => abort.abort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const res = await this.send('GET', path, {
          query: { ...query, since: lastId },
          accept: 'text/event-stream',
          headers: lastId !== undefined ? { 'Last-Event-ID': lastId } : {},
          signal: abort.signal,
        });
        const parser = new SseParser();
        for await (const chunk of readText(res.body)) {
          for (const message of parser.push(chunk)) {
            if (message.id !== undefined) lastId = message.id;
            received = true;
            yield message;
          }
          if (parser.lastEventId !== undefined) lastId = parser.lastEventId;
        }
      } catch (err) {
        if (options.signal?.aborted) return;
        if (err instanceof ApiRequestError && err.status < 500) throw err;
        if (err instanceof SyntaxError) throw new Error(`bad event from the server: ${err.message}`);
        if (received || Date.now() - connectedAt > 10_000) failures = 0;
        if (++failures > retries) throw err;
        await sleep(retryDelayMs * failures);
        continue;
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
        abort.abort();
      }
      // The server closed the stream: reconnect (it may be restarting).
      if (options.signal?.aborted) return;
      if (received || Date.now() - connectedAt > 10_000) failures = 0;
      if (++failures > retries) throw new Error(`the stream ${path} from ${this.server} keeps closing`);
      await sleep(retryDelayMs * failures);
    }
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

  nodeAction(name: string, action: 'cordon' | 'uncordon' | 'drain'): Promise<{ node: NodeView }> {
    return this.json('POST', `/v1/nodes/${enc(name)}/${action}`);
  }

  dedicate(name: string, app: string | null): Promise<{ node: NodeView }> {
    return this.json('PUT', `/v1/nodes/${enc(name)}/dedication`, { body: JSON.stringify({ app }), contentType: 'application/json' });
  }

  unassigned(node: string): Promise<{ unassigned: { id: string; app: string; env: string; entry: string; release?: number; adoptable: boolean }[] }> {
    return this.json('GET', `/v1/nodes/${enc(node)}/unassigned`);
  }

  /** `nodes` empty: every node that reports instances this server does not know. */
  adopt(nodes: string[]): Promise<AdoptionResult & { nodes: string[] }> {
    return this.json('POST', '/v1/nodes/adopt', { body: JSON.stringify({ nodes }), contentType: 'application/json' });
  }

  forget(node: string, ids?: string[]): Promise<{ forgotten: string[] }> {
    return this.json('POST', `/v1/nodes/${enc(node)}/forget`, { body: JSON.stringify(ids ? { ids } : {}), contentType: 'application/json' });
  }

  setPool(name: string, team?: string): Promise<{ pool: { name: string; team?: string } }> {
    return this.json('PUT', `/v1/pools/${enc(name)}`, { body: JSON.stringify(team ? { team } : {}), contentType: 'application/json' });
  }

  tokens(): Promise<{ tokens: TokenInfo[] }> {
    return this.json('GET', '/v1/tokens');
  }

  /** node: the node an agent token speaks for (default: its name); ttl: how long a join token works ("24h"). */
  createToken(name: string, role: TokenInfo['role'], options: { node?: string; ttl?: string } = {}): Promise<TokenInfo & { token: string }> {
    return this.json('POST', '/v1/tokens', { body: JSON.stringify({ name, role, ...options }), contentType: 'application/json' });
  }

  /** Personal tokens (no team) or a team's robot tokens. */
  scopedTokens(team?: string): Promise<{ tokens: ScopedTokenInfo[] }> {
    return this.json('GET', scopedTokensPath(team));
  }

  createScopedToken(team: string | undefined, body: { name: string; scope?: string[]; expiresIn?: string; role?: string }): Promise<ScopedTokenInfo & { token: string }> {
    return this.json('POST', scopedTokensPath(team), { body: JSON.stringify(body), contentType: 'application/json' });
  }

  revokeScopedToken(team: string | undefined, name: string): Promise<{ revoked: ScopedTokenInfo }> {
    return this.json('DELETE', `${scopedTokensPath(team)}/${enc(name)}`);
  }

  revokeToken(name: string): Promise<{ revoked: TokenInfo; closedConnections: number }> {
    return this.json('DELETE', `/v1/tokens/${enc(name)}`);
  }

  login(user: string, password: string, ttl?: string): Promise<LoginResponse> {
    return this.json('POST', '/v1/login', { body: JSON.stringify({ user, password, ...(ttl ? { ttl } : {}) }), contentType: 'application/json' });
  }

  logout(): Promise<{ ended: boolean }> {
    return this.json('POST', '/v1/logout');
  }

  whoami(): Promise<{ name: string; role: string; user?: string }> {
    return this.json('GET', '/v1/whoami');
  }

  canI(verb: string, resource: string, as?: string): Promise<{ as: string; role: string; allowed: boolean; why?: string }> {
    return this.json('GET', '/v1/auth/can-i', { query: { verb, resource, ...(as ? { as } : {}) } });
  }

  audit(filter: { user?: string; team?: string; since?: string; limit?: string }): Promise<{ entries: AuditRecord[] }> {
    const query: Record<string, string> = {};
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query[key] = value;
    return this.json('GET', '/v1/audit', { query });
  }

  teams(): Promise<{ teams: TeamRecord[] }> {
    return this.json('GET', '/v1/teams');
  }

  team(name: string): Promise<{ team: TeamRecord }> {
    return this.json('GET', `/v1/teams/${enc(name)}`);
  }

  createTeam(name: string, owner?: string): Promise<{ team: TeamRecord }> {
    return this.json('POST', '/v1/teams', { body: JSON.stringify({ name, ...(owner ? { owner } : {}) }), contentType: 'application/json' });
  }

  setMember(team: string, user: string, role: TeamRole): Promise<{ team: TeamRecord }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/members/${enc(user)}`, { body: JSON.stringify({ role }), contentType: 'application/json' });
  }

  removeMember(team: string, user: string): Promise<{ team: TeamRecord }> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/members/${enc(user)}`);
  }

  removeTeam(name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/teams/${enc(name)}`);
  }

  quotas(): Promise<{ quotas: QuotaView[] }> {
    return this.json('GET', '/v1/quotas');
  }

  quota(team: string): Promise<QuotaView> {
    return this.json('GET', `/v1/teams/${enc(team)}/quota`);
  }

  setQuota(team: string, limits: { env?: string; cpu?: number; memory?: string; instances?: number }): Promise<QuotaView> {
    return this.json('PUT', `/v1/teams/${enc(team)}/quota`, { body: JSON.stringify(limits), contentType: 'application/json' });
  }

  removeQuota(team: string, scope: { env?: string; total?: 'true' }): Promise<QuotaView> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/quota`, { query: scope });
  }

  secrets(team: string): Promise<{ secrets: SecretInfo[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/secrets`);
  }

  secret(team: string, name: string): Promise<{ secret: SecretInfo; value: string }> {
    return this.json('GET', `/v1/teams/${enc(team)}/secrets/${enc(name)}`);
  }

  setSecret(team: string, name: string, value: string, roll: boolean): Promise<{ secret: SecretInfo; rolled?: { app: string; release: number }[]; failed?: { app: string; error: string }[] }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/secrets/${enc(name)}`, { body: JSON.stringify({ value, roll }), contentType: 'application/json' });
  }

  removeSecret(team: string, name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/secrets/${enc(name)}`);
  }

  rotateSecretKey(): Promise<{ key: string; secrets: number; registryLogins: number }> {
    return this.json('POST', '/v1/secrets/rotate-key', { body: '{}', contentType: 'application/json' });
  }

  configs(team: string): Promise<{ configs: ConfigInfo[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs`);
  }

  config(team: string, name: string, version?: number): Promise<{ config: ConfigRecord }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs/${enc(name)}`, version === undefined ? {} : { query: { version: String(version) } });
  }

  configHistory(team: string, name: string): Promise<{ versions: ConfigRecord[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs/${enc(name)}/history`);
  }

  configDiff(team: string, name: string, from: number, to?: number): Promise<{ from: number; to: number; changes: Change[] }> {
    return this.json('GET', `/v1/teams/${enc(team)}/configs/${enc(name)}/diff`, { query: { from: String(from), ...(to === undefined ? {} : { to: String(to) }) } });
  }

  setConfig(team: string, name: string, content: { text: string } | { values: Record<string, string> }, note?: string): Promise<{ config: ConfigInfo; rolled: { app: string; release: number }[]; failed: { app: string; error: string }[] }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/configs/${enc(name)}`, { body: JSON.stringify({ ...content, ...(note ? { note } : {}) }), contentType: 'application/json' });
  }

  rollbackConfig(team: string, name: string, version: number): Promise<{ config: ConfigInfo; rolled: { app: string; release: number }[]; failed: { app: string; error: string }[] }> {
    return this.json('POST', `/v1/teams/${enc(team)}/configs/${enc(name)}/rollback`, { body: JSON.stringify({ version }), contentType: 'application/json' });
  }

  removeConfig(team: string, name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/configs/${enc(name)}`);
  }

  users(): Promise<{ users: UserInfo[] }> {
    return this.json('GET', '/v1/users');
  }

  createUser(name: string, password: string, role: 'admin' | 'operator' | 'member'): Promise<{ user: UserInfo }> {
    return this.json('POST', '/v1/users', { body: JSON.stringify({ name, password, role }), contentType: 'application/json' });
  }

  updateUser(name: string, change: { password?: string; role?: 'admin' | 'operator' | 'member' }): Promise<{ user: UserInfo }> {
    return this.json('PATCH', `/v1/users/${enc(name)}`, { body: JSON.stringify(change), contentType: 'application/json' });
  }

  removeUser(name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/users/${enc(name)}`);
  }

  registries(): Promise<{ registries: RegistryLoginInfo[] }> {
    return this.json('GET', '/v1/registries');
  }

  registryLogin(host: string, username: string, password: string): Promise<{ registry: RegistryLoginInfo }> {
    return this.json('PUT', `/v1/registries/${enc(host)}`, { body: JSON.stringify({ username, password }), contentType: 'application/json' });
  }

  prepull(app: string, timeout: string): Promise<{ nodes: Array<{ node: string; results?: Array<{ image: string; ms: number; error?: string }>; error?: string }> }> {
    return this.json('POST', `/v1/apps/${enc(app)}/prepull`, { body: JSON.stringify({ timeout }), contentType: 'application/json' });
  }

  registryLogout(host: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/registries/${enc(host)}`);
  }

  capacity(app: string, entry: string): Promise<{ total: number; nodes: { node: string; count: number }[]; blocked?: string }> {
    return this.json('GET', '/v1/capacity', { query: { app, entry } });
  }

  instanceAction(id: string, action: 'rebuild' | 'restart'): Promise<{ instance: InstanceView }> {
    return this.json('POST', `/v1/instances/${enc(id)}/${action}`);
  }

  rolloutStatus(app: string): Promise<RolloutStatus> {
    return this.json('GET', `/v1/apps/${enc(app)}/rollout`);
  }

  rolloutAction(app: string, action: 'pause' | 'resume' | 'promote' | 'abort'): Promise<{ rollout: RolloutRecord }> {
    return this.json('POST', `/v1/apps/${enc(app)}/rollout/${action}`);
  }

  listEndpoints(filter: { app?: string; env?: string; entry?: string } = {}): Promise<{ revision: number; endpoints: Endpoint[] }> {
    return this.json('GET', '/v1/registry', { query: { ...filter } });
  }

  approvals(team?: string): Promise<{ approvals: Omit<ApprovalRequest, 'spec'>[] }> {
    return this.json('GET', '/v1/approvals', { query: { team } });
  }

  approve(app: string): Promise<{ app: { release: number }; approval: Omit<ApprovalRequest, 'spec'> }> {
    return this.json('POST', `/v1/approvals/${enc(app)}/approve`);
  }

  reject(app: string, reason?: string): Promise<{ rejected: Omit<ApprovalRequest, 'spec'> }> {
    return this.json('POST', `/v1/approvals/${enc(app)}/reject`, { body: JSON.stringify(reason === undefined ? {} : { reason }), contentType: 'application/json' });
  }

  requireApproval(team: string, envs: string[]): Promise<{ team: string; requireApproval: string[] }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/require-approval`, { body: JSON.stringify({ envs }), contentType: 'application/json' });
  }

  createInvitation(request: { team?: string; role?: TeamRole; platformRole?: 'admin' | 'operator' | 'member'; expiresIn?: string }): Promise<{ invitation: InvitationView; code: string }> {
    const body = Object.fromEntries(Object.entries(request).filter(([, value]) => value !== undefined));
    return this.json('POST', '/v1/invitations', { body: JSON.stringify(body), contentType: 'application/json' });
  }

  invitations(): Promise<{ invitations: InvitationView[] }> {
    return this.json('GET', '/v1/invitations');
  }

  revokeInvitation(id: string): Promise<{ revoked: InvitationView }> {
    return this.json('DELETE', `/v1/invitations/${enc(id)}`);
  }

  acceptInvitation(code: string, name: string, password: string): Promise<LoginResponse> {
    return this.json('POST', '/v1/invitations/accept', { body: JSON.stringify({ code, name, password }), contentType: 'application/json' });
  }

  private async json<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
    const res = await this.send(method, path, { accept: 'application/json', ...options });
    // A server that dies while it answers is as unreachable as one that does not answer.
    const text = await res.text().catch((err: unknown) => {
      throw options.signal?.aborted ? err : unreachableError(this.server, err);
    });
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Error(`the server answered ${method} ${path} with something that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  private async send(method: string, path: string, options: SendOptions = {}): Promise<HttpAnswer> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { ...options.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.accept) headers.accept = options.accept;
    if (options.contentType) headers['content-type'] = options.contentType;
    let res: HttpAnswer;
    try {
      res = await exchange(url, { method, headers, body: options.body, signal: options.signal, ca: this.ca });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw unreachableError(this.server, err);
    }
    if (!res.ok) throw await apiErrorFrom(res);
    return res;
  }
}

const enc = encodeURIComponent;

function scopedTokensPath(team: string | undefined): string {
  return team === undefined ? '/v1/me/tokens' : `/v1/teams/${enc(team)}/tokens`;
}
