// One HTTP exchange of the CLI with the server, over node:http (node:https for an https:// server,
// given the CA that verifies it, if any). Not the global fetch: its first call loads Node's
// bundled undici, which cost `gantry ps` about a quarter of its run time, and a CA needs undici's
// own Agent on top. A request that cannot be sent rejects with Node's network error (its `code`
// says why: ECONNREFUSED, a certificate error...); an answer resolves whatever its status.
import { request as httpRequest, type IncomingMessage } from 'node:http';

export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** PEM CA certificate(s) that verify an https:// server, instead of Node's. */
  ca?: string | Buffer;
}

export interface HttpAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  header(name: string): string | undefined;
  /** The body as it arrives; leaving a `for await` over it early ends the exchange. */
  readonly body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  /** Ends the exchange without reading the body. */
  discard(): void;
}

function answer(res: IncomingMessage): HttpAnswer {
  const status = res.statusCode ?? 0;
  return {
    status,
    statusText: res.statusMessage ?? '',
    ok: status >= 200 && status < 300,
    header: (name) => {
      const value = res.headers[name.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    body: res,
    text: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    discard: () => res.destroy(),
  };
}

export async function exchange(url: URL, init: HttpRequest): Promise<HttpAnswer> {
  try {
    return await attempt(url, init);
  } catch (err) {
    // A kept-alive connection the server closed meanwhile (it restarted): the request never
    // reached it. A read is sent again on a new connection, which says what is really the matter
    // (refused...); a change is not, in case it did arrive.
    const stale = (err as { staleConnection?: boolean }).staleConnection === true;
    if (stale && (init.method === 'GET' || init.method === 'HEAD') && !init.signal?.aborted) return attempt(url, init);
    throw err;
  }
}

async function attempt(url: URL, init: HttpRequest): Promise<HttpAnswer> {
  // TLS is loaded only for an https:// server.
  const send = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  const headers = init.body === undefined ? init.headers : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) };
  return new Promise((resolve, reject) => {
    const req = send(url, { method: init.method, headers, signal: init.signal, ...(init.ca !== undefined ? { ca: init.ca } : {}) }, (res) => resolve(answer(res)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (req.reusedSocket && err.code === 'ECONNRESET') Object.assign(err, { staleConnection: true });
      reject(err);
    });
    req.end(init.body);
  });
}
