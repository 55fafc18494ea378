// The web console's files (the Vite build of web/, in dist/web/): public, since they hold no
// data (what the console shows comes from the API, behind the access check). Any GET of a path
// that is not the API's answers index.html, so that a client-side route survives a reload.
// Which paths count as the console's is decided here once, for this route and for the access
// check: an odd spelling of an API path (/V1/..., /%76%31/..., //v1/...) is not the console's
// but an unknown path, answered 401 without a token like any other.
import { existsSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';

/** The route that catches every other GET. */
export const CONSOLE_ROUTE = '/*';

/**
 * What a browser may run on the console's pages: only its own scripts; inline styles, which
 * xterm.js injects for its terminal; its own origin to call (fetch, EventSource, WebSocket);
 * never framed (clickjacking), no plugins, no <base> or form posts elsewhere.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** First path segments that belong to the API or the server, never to the console. */
const RESERVED = /^(?:v\d+|metrics|agent|healthz|openapi\.json)$/i;
/** Plain segments only: no percent-encoding, no dot segments, no dotfiles, no empty segments. */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*)*\/?$/;

/** Whether the raw request path (before any query) is one the console answers. */
export function isConsolePath(url: string): boolean {
  const path = url.split('?', 1)[0] ?? '';
  if (path.length > 1024 || !PLAIN_PATH.test(path)) return false;
  const first = path.split('/')[1] ?? '';
  return !RESERVED.test(first);
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gantry</title></head>
<body><h1>Gantry</h1><p>The web console is not built. <code>npm run build</code> builds it (into <code>dist/web/</code>); the API answers under <code>/v1/</code> as usual.</p></body></html>
`;

export async function consoleRoutes(server: FastifyInstance, webDir: string): Promise<void> {
  const root = resolve(webDir);
  // Only the sendFile helper: which file answers which path is decided below.
  await server.register(fastifyStatic, { root, serve: false });
  server.get(CONSOLE_ROUTE, async (request, reply) => {
    withSecurityHeaders(reply);
    if (!isConsolePath(request.url)) return reply.code(404).send({ error: 'not found' });
    if (!existsSync(join(root, 'index.html'))) return reply.type('text/html; charset=utf-8').send(NOT_BUILT);
    const path = request.url.split('?', 1)[0]!;
    const file = resolve(root, `.${path}`);
    if (file.startsWith(root + sep) && isFile(file)) {
      // Vite names built assets by their content hash: cache them for good; the page itself never.
      const hashed = path.startsWith('/assets/');
      return reply.sendFile(file.slice(root.length + 1), { maxAge: hashed ? 365 * 24 * 3_600_000 : 0, immutable: hashed, cacheControl: true });
    }
    // A path that names a file that is not there is a 404, not the page: a missing script must not load HTML.
    if (/\.[A-Za-z0-9]+$/.test(path)) return reply.code(404).send({ error: 'no such file' });
    reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html', { cacheControl: false });
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function withSecurityHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', CONSOLE_CSP);
  reply.header('x-frame-options', 'DENY');
}
