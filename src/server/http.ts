// The HTTP side of the server: limits every client lives within, the one access check on the
// matched route, the agent WebSocket as a route like any other, errors mapped to 4xx with a
// reason, and the routes themselves (thin, in api/).
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import cookie from '@fastify/cookie';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { ZodError } from 'zod';
import { SpecError, problemsFromZod } from '../model/spec.js';
import { GANTRY_VERSION } from '../version.js';
import { installAccessCheck, type RouteEntry } from './access.js';
import { teamScope } from './services/teams.js';
import { installAuditTrail } from './audit-trail.js';
import type { TokenAuth } from './auth.js';
import type { ApiContext } from './api/context.js';
import { appRoutes } from './api/apps.js';
import { instanceRoutes } from './api/instances.js';
import { clusterRoutes } from './api/cluster.js';
import { discoveryRoutes } from './api/discovery.js';
import { releaseRoutes, rolloutRoutes } from './api/releases.js';
import { nodeRoutes } from './api/nodes.js';
import { inspectionRoutes } from './api/inspections.js';
import { imageRoutes } from './api/images.js';
import { userRoutes } from './api/users.js';
import { teamRoutes } from './api/teams.js';
import { quotaRoutes } from './api/quotas.js';
import { buildRoutes } from './api/builds.js';
import { tokenRoutes } from './api/tokens.js';
import { scopedTokenRoutes } from './api/scoped-tokens.js';
import { secretRoutes } from './api/secrets.js';
import { configRoutes } from './api/configs.js';
import { usageRoutes } from './api/usage.js';
import { alertRoutes } from './api/alerts.js';
import { openApiDocument } from './api/openapi.js';
import { approvalRoutes } from './api/approvals.js';
import { invitationRoutes } from './api/invitations.js';
import { ApprovalPending } from './services/approvals.js';
import { consoleRoutes } from './api/console.js';
import { terminalRoutes } from './api/terminals.js';

/** Request bodies are specs and small commands; anything bigger is refused before it is read. */
export const BODY_LIMIT = 1024 * 1024;
/** An agent's hello carries a status per instance of its node. */
const AGENT_MESSAGE_LIMIT = 16 * 1024 * 1024;
/** Headers and body of one request must arrive within these (slow-body clients hold sockets). */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** How often Node looks for sockets past those timeouts: its default (30 s) let a slow client hold a socket that much longer. */
const TIMEOUT_CHECK_EVERY_MS = 1000;

export interface HttpOptions {
  log?: boolean;
  /** PEM certificate and key: serve HTTPS (and WSS for agents). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Most sockets open at once; past it new connections are closed as they arrive. */
  maxConnections?: number;
  /** The web console's built files (index.html and assets/). */
  webDir: string;
}

/**
 * Most sockets one address may hold, so that one client (a slowloris, a runaway script) cannot
 * take every socket the server has; generous enough for a NAT or a proxy in front of many users.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 256;

export async function buildHttpServer(ctx: ApiContext, auth: TokenAuth, options: HttpOptions): Promise<{ server: FastifyInstance; routes: RouteEntry[] }> {
  const server = Fastify({
    logger: options.log ? { level: 'info' } : false,
    bodyLimit: BODY_LIMIT,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Instance ids run to 136 characters; anything longer matches no route.
    routerOptions: { maxParamLength: 256 },
    ...(options.tls
      ? { https: { cert: options.tls.cert, key: options.tls.key, connectionsCheckingInterval: TIMEOUT_CHECK_EVERY_MS } }
      : { http: { connectionsCheckingInterval: TIMEOUT_CHECK_EVERY_MS } }),
  }) as unknown as FastifyInstance;
  server.server.headersTimeout = HEADERS_TIMEOUT_MS;
  if (options.maxConnections) server.server.maxConnections = options.maxConnections;
  capConnectionsPerAddress(server.server, MAX_CONNECTIONS_PER_ADDRESS);
  server.addContentTypeParser(['text/yaml', 'application/yaml', 'application/x-yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  // The WebSocket plugin's own request hook must run before the access check: it marks upgrade
  // requests, and only a marked one has its socket closed after a refusal.
  await server.register(websocket, { options: { maxPayload: AGENT_MESSAGE_LIMIT } });
  // Parses the console's session cookie before the access check reads it.
  await server.register(cookie);
  const routes = installAccessCheck(server, auth, teamScope(ctx.state));
  installAuditTrail(server, ctx.audit, ctx.state);
  installErrors(server);
  ctx.metrics.instrument(server);
  // On every answer: a browser must not guess a type (a JSON error read as HTML) or leak where it came from.
  server.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
  });

  server.get('/healthz', async () => ({ ok: true, version: GANTRY_VERSION }));
  server.get('/openapi.json', async () => openApiDocument(GANTRY_VERSION));
  server.get('/v1/agent/connect', { websocket: true }, (socket, request) => ctx.agents.accept(socket, request.caller!));
  appRoutes(server, ctx);
  instanceRoutes(server, ctx);
  clusterRoutes(server, ctx);
  discoveryRoutes(server, ctx);
  releaseRoutes(server, ctx);
  rolloutRoutes(server, ctx);
  nodeRoutes(server, ctx);
  inspectionRoutes(server, ctx);
  tokenRoutes(server, ctx);
  scopedTokenRoutes(server, ctx);
  imageRoutes(server, ctx);
  userRoutes(server, ctx);
  teamRoutes(server, ctx);
  buildRoutes(server, ctx);
  quotaRoutes(server, ctx);
  approvalRoutes(server, ctx);
  invitationRoutes(server, ctx);
  secretRoutes(server, ctx);
  configRoutes(server, ctx);
  usageRoutes(server, ctx);
  alertRoutes(server, ctx);
  terminalRoutes(server, ctx);
  await consoleRoutes(server, options.webDir);
  return { server, routes };
}

function capConnectionsPerAddress(http: Server, cap: number): void {
  const open = new Map<string, number>();
  http.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    if (count > cap) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

function installErrors(server: FastifyInstance): void {
  server.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (error instanceof ApprovalPending) return reply.code(202).send(error.body());
    if (error instanceof SpecError) return reply.code(400).send({ error: 'invalid app spec', problems: error.problems });
    if (error instanceof ZodError) return reply.code(400).send({ error: 'invalid request', problems: problemsFromZod(error) });
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    // 503 is what an error says when it means "not now" (the store's StoreFullError and
    // StoreUnavailableError: a full disk, ...): the host's condition, not a bug. Its message
    // says what to do, and the client may try again once that is done.
    if (status === 503) {
      request.log.warn(error.message);
      return reply.code(503).header('retry-after', '5').send({ error: error.message });
    }
    if (status >= 500) request.log.error(error);
    // A body refused unread (too large, too slow, undecodable), or a client over its stream cap,
    // must not keep its socket.
    if (status === 413 || status === 408 || status === 415 || status === 429) reply.header('connection', 'close');
    return reply.code(status).send({ error: status >= 500 ? `internal error: ${error.message}` : error.message });
  });
}
