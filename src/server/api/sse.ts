// Server-Sent Events for the streaming routes (events, watch): takes the response over, sends
// messages with an id, keeps idle proxies from cutting the stream, and tells when the client left.
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface EventStream {
  send(event: string, id: number, data: unknown): void;
  /** Called once, when the client goes away. */
  onClose(cleanup: () => void): void;
}

export function openEventStream(request: FastifyRequest, reply: FastifyReply, comment?: string): EventStream {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  if (comment) raw.write(`: ${comment}\n\n`);
  const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
  const cleanups: (() => void)[] = [() => clearInterval(keepAlive)];
  request.raw.on('close', () => {
    for (const cleanup of cleanups) cleanup();
  });
  return {
    send: (event, id, data) => raw.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    onClose: (cleanup) => cleanups.push(cleanup),
  };
}
