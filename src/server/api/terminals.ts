// GET /v1/instances/:id/exec as a WebSocket: a terminal in an instance, relayed through the
// agent of its node (agents/terminals.ts). Who may is the policy table's (write on the
// instance); everything decidable is decided before the upgrade, as an HTTP answer (400 bad
// id or size, 404 no such instance, 429 too many terminals). After it, every frame is a client
// message like any other: bounded, checked, rate-limited; a bad one ends the session, never
// the server.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket, RawData } from 'ws';
import { InstanceParams } from './params.js';
import type { ApiContext } from './context.js';
import { NotFoundError } from '../errors.js';
import { teamScope } from '../services/teams.js';
import { TERMINAL_ROUTE, type OpenTerminal } from '../services/terminals.js';
import type { TerminalLink } from '../agents/terminals.js';
import { MAX_TERMINAL_DATA, TerminalClientMessageSchema, TerminalQuerySchema, type TerminalServerMessage } from '../../model/terminal.js';

/** A frame's bytes at most: a full input message with every character escaped, and room for the rest. */
const MAX_FRAME_BYTES = MAX_TERMINAL_DATA * 6 + 256;
/** What one session may send per second (a paste of a big file is fine; a flood is not). */
const MAX_INPUT_BYTES_PER_SECOND = 1024 * 1024;
const MAX_MESSAGES_PER_SECOND = 1000;
/** Output waiting for a client that stopped reading, before its session is dropped. */
const MAX_BUFFERED_OUTPUT = 4 * 1024 * 1024;

export function terminalRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get(
    TERMINAL_ROUTE,
    {
      websocket: true,
      // Before the upgrade: what is wrong is an HTTP answer the client can read.
      preValidation: async (request) => {
        const { id } = InstanceParams.parse(request.params);
        TerminalQuerySchema.parse(request.query);
        const instance = ctx.state.instances.get(id);
        if (!instance || instance.desired === 'removed') throw new NotFoundError(`no instance named "${id}"`);
        ctx.terminals.checkRoom(callerKey(request));
      },
    },
    (socket, request) => openTerminal(ctx, socket, request),
  );
}

function callerKey(request: FastifyRequest): string {
  return request.caller!.user ?? request.caller!.name;
}

function openTerminal(ctx: ApiContext, socket: WebSocket, request: FastifyRequest): void {
  const { id } = InstanceParams.parse(request.params);
  const { cols, rows, command } = TerminalQuerySchema.parse(request.query);
  const caller = request.caller!;
  const send = (message: TerminalServerMessage) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  };
  let link: TerminalLink | undefined;
  let ended = false;
  const session: OpenTerminal = { instance: id, bytesIn: 0, bytesOut: 0, end: (reason) => stop(reason, { type: 'error', message: reason }) };
  const team = teamScope(ctx.state).teamOf('instance', id);
  const finish = ctx.terminals.begin(session, {
    caller: callerKey(request),
    credential: request.credential!.token,
    base: { who: caller.user ?? caller.name, role: caller.role, ...(caller.user ? { user: caller.user } : {}), ...(team ? { team } : {}), method: 'GET', route: TERMINAL_ROUTE, target: { id }, from: request.ip },
  });
  function stop(outcome: string, last?: TerminalServerMessage, code = 1000): void {
    if (ended) return;
    ended = true;
    if (last) send(last);
    link?.close();
    socket.close(code);
    finish(outcome);
  }

  const instance = ctx.state.instances.get(id);
  if (!instance) return stop('not opened: the instance was removed', { type: 'error', message: `no instance named "${id}"` });
  link = ctx.agents.openTerminal(instance.node, id, { cols, rows, ...(command ? { command } : {}) }, {
    onOutput: (data) => {
      session.bytesOut += Buffer.byteLength(data);
      if (socket.bufferedAmount > MAX_BUFFERED_OUTPUT) return stop('dropped: the client stopped reading', { type: 'error', message: 'the terminal was dropped: its client stopped reading' }, 1008);
      send({ type: 'output', data });
    },
    onExit: (exitCode, error) => {
      link = undefined;
      if (error) stop(`ended: ${error}`, { type: 'error', message: error });
      else stop(`exited with code ${exitCode ?? 'none'}`, { type: 'exit', code: exitCode });
    },
  });

  const window = { second: 0, bytes: 0, messages: 0 };
  socket.on('message', (raw: RawData, isBinary: boolean) => {
    if (ended) return;
    const bytes = frameBytes(raw);
    const second = Math.floor(Date.now() / 1000);
    if (second !== window.second) Object.assign(window, { second, bytes: 0, messages: 0 });
    window.bytes += bytes;
    window.messages++;
    if (isBinary || bytes > MAX_FRAME_BYTES) return stop('refused: an oversized or binary frame', { type: 'error', message: `frames are JSON text of at most ${MAX_FRAME_BYTES} bytes` }, 1009);
    if (window.bytes > MAX_INPUT_BYTES_PER_SECOND || window.messages > MAX_MESSAGES_PER_SECOND) return stop('refused: input flood', { type: 'error', message: 'too much input too fast' }, 1008);
    const message = parseClientMessage(raw);
    if (typeof message === 'string') return stop(`refused: ${message}`, { type: 'error', message }, 1008);
    if (message.type === 'resize') return link?.resize(message.cols, message.rows);
    session.bytesIn += Buffer.byteLength(message.data);
    link?.input(message.data);
  });
  socket.on('close', () => stop('closed by the client'));
  socket.on('error', () => stop('the client connection failed'));
}

function frameBytes(raw: RawData): number {
  return Array.isArray(raw) ? raw.reduce((sum, part) => sum + part.length, 0) : raw instanceof ArrayBuffer ? raw.byteLength : raw.length;
}

/** The message, or what is wrong with it. */
function parseClientMessage(raw: RawData): ReturnType<typeof TerminalClientMessageSchema.parse> | string {
  let json: unknown;
  try {
    json = JSON.parse(Array.isArray(raw) ? Buffer.concat(raw).toString('utf8') : Buffer.from(raw as Buffer).toString('utf8'));
  } catch {
    return 'a frame is one JSON message';
  }
  const parsed = TerminalClientMessageSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return `invalid message: ${issue?.path.join('.') || 'type'}: ${issue?.message ?? 'malformed'}`;
}
