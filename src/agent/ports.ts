// Host ports another program on this node already holds. An instance given such a port would
// fail to start again and again; the agent finds out before starting it, tells the server (which
// gives the instance other ports) and stops handing the port to anything for a while.
// A probe cannot tell who holds a port, so it is only asked while the instance itself is not
// running (the supervisor makes sure first): its own container or process holding its own port
// must never be reported as another program, which would move the instance off a working port.
import dgram from 'node:dgram';
import net from 'node:net';
import type { AssignedPort, HostPort } from '../model/types.js';

export type TakenPort = HostPort;

/** Thrown instead of starting an instance whose host ports another program holds. */
export class PortsTakenError extends Error {
  constructor(readonly ports: TakenPort[]) {
    super(`host port${ports.length > 1 ? 's' : ''} ${ports.map((p) => `${p.host}/${p.protocol}`).join(', ')} already in use by another program on this node`);
  }
}

/** How long a port found taken stays reported as taken; after that it is tried again. */
export const TAKEN_FOR_MS = 10 * 60_000;

function inUse(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EADDRINUSE';
}

function tcpTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(inUse(err)));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(false)));
  });
}

function udpTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      resolve(inUse(err));
    });
    socket.bind({ port, address: '0.0.0.0', exclusive: true }, () => socket.close(() => resolve(false)));
  });
}

/**
 * The ports of `ports` that something already listens on (any error but "in use" counts as free).
 * Ask only while the instance given these ports is not running: its own hold on them counts too.
 */
export async function takenPorts(ports: readonly AssignedPort[]): Promise<TakenPort[]> {
  const checked = await Promise.all(ports.map(async (p) => ({ host: p.host, protocol: p.protocol, taken: await (p.protocol === 'udp' ? udpTaken(p.host) : tcpTaken(p.host)) })));
  return checked.filter((p) => p.taken).map(({ host, protocol }) => ({ host, protocol }));
}

/** Ports found taken on this node, each forgotten TAKEN_FOR_MS after it was last seen taken. */
export class TakenPortList {
  private readonly until = new Map<string, { port: TakenPort; until: number }>();

  add(ports: readonly TakenPort[], now = Date.now()): void {
    for (const port of ports) this.until.set(`${port.host}/${port.protocol}`, { port, until: now + TAKEN_FOR_MS });
  }

  list(now = Date.now()): TakenPort[] {
    for (const [key, entry] of this.until) if (entry.until <= now) this.until.delete(key);
    return [...this.until.values()].map((e) => e.port).sort((a, b) => a.host - b.host || a.protocol.localeCompare(b.protocol));
  }
}
