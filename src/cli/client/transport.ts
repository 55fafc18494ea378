// What every call of the CLI's client (../client.ts) goes through: one request to the API and its
// JSON answer, and Server-Sent Events streams that reconnect. Requests go through http.ts
// (node:http, and node:https with the CA that verifies the server when one is given).
import { exchange, type HttpAnswer } from '../http.js';
import { readText, SseParser, type SseMessage } from '../stream.js';
import { ApiRequestError, apiErrorFrom, unreachableError } from './errors.js';

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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The bottom of GantryClient: the calls of each part of the API are layered on it (../client.ts). */
export class ApiTransport {
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

  /** Server-Sent Events with reconnection from the last event id. */
  protected async *sse(path: string, query: Record<string, string | number | undefined>, options: { since?: number; signal?: AbortSignal; retries?: number; retryDelayMs?: number }): AsyncGenerator<SseMessage> {
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

  protected async json<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
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

  protected async send(method: string, path: string, options: SendOptions = {}): Promise<HttpAnswer> {
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

export const enc = encodeURIComponent;
