// What an agent tells the server about its host: its capacity, its runtimes (and why one is
// unavailable), and the address other hosts reach its instances on. That address goes into every
// endpoint the node registers, so DNS answers and nginx upstreams hand it out: it must be one the
// other hosts can reach, never a loopback address when the server is elsewhere.
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { cpus, hostname, networkInterfaces, totalmem } from 'node:os';
import { isHostAddress } from '../model/names.js';
import type { NodeInfo, RuntimeName } from '../model/types.js';
import type { Runtime } from '../runtime/runtime.js';
import { GANTRY_VERSION } from '../version.js';

export interface NodeIdentity {
  name?: string;
  address?: string;
  labels?: Record<string, string>;
  portRange?: [number, number];
  /** Override the detected capacity (e.g. to reserve room for the host's own daemons). */
  cores?: number;
  memoryBytes?: number;
  pool?: string;
  /** Whole cores (the lowest-numbered) and memory kept for the host's own daemons. */
  reserved?: { cores: number; memoryBytes: number };
  /** Pieces each core is divided into (default 100). */
  shareBase?: number;
}

const MAX_NOTE = 1000;

export async function describeNode(identity: NodeIdentity, runtimes: Runtime[]): Promise<{ info: NodeInfo; usable: Runtime[] }> {
  const usable: Runtime[] = [];
  const notes: string[] = [];
  for (const runtime of runtimes) {
    const probe = await runtime.probe();
    if (probe.ok) usable.push(runtime);
    // The server refuses a node whose notes are longer than 1024 characters; an engine's error can be.
    else notes.push(`${runtime.name}: ${probe.reason ?? 'unavailable'}`.slice(0, MAX_NOTE));
  }
  return {
    usable,
    info: {
      name: identity.name ?? hostname(),
      address: identity.address ?? '127.0.0.1',
      labels: identity.labels ?? {},
      cores: identity.cores ?? cpus().length,
      memoryBytes: identity.memoryBytes ?? totalmem(),
      runtimes: usable.map((r) => r.name as RuntimeName),
      runtimeNotes: notes,
      portRange: identity.portRange ?? [20000, 29999],
      agentVersion: GANTRY_VERSION,
      pool: identity.pool ?? 'default',
      reserved: identity.reserved ?? { cores: 0, memoryBytes: 0 },
      shareBase: identity.shareBase ?? 100,
    },
  };
}

/** Where the advertised address came from: --address, or the route to the server. */
export interface AdvertisedAddress {
  address: string;
  found: boolean;
}

/**
 * The address this node's agent advertises. `given` (--address) must be an IP address or a host
 * name. Without it, the local address the kernel would send from to reach the server: a UDP
 * connect() sends nothing, it only asks the routing table. Either way a loopback address is
 * refused when the server is on another host, where it would point at the wrong machine.
 */
export async function advertisedAddress(serverUrl: string, given?: string): Promise<AdvertisedAddress> {
  if (given !== undefined && !isHostAddress(given)) {
    throw new Error(`--address ${given}: expected an IP address or a host name, the one other hosts reach this node on`);
  }
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new Error(`--server ${serverUrl}: expected a URL such as http://10.0.0.1:7070`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port) || (/^(https|wss):$/.test(url.protocol) ? 443 : 80);
  let server: { address: string; family: number };
  try {
    server = await lookup(host);
  } catch (err) {
    // With --address there is nothing to find; the loopback check just cannot be made yet.
    if (given !== undefined) return { address: given, found: false };
    throw new Error(`cannot find the address this node is reached on: the server's host ${host} (--server ${serverUrl}) does not resolve (${(err as Error).message}); fix --server, or give the address with --address`);
  }
  const serverIsLocal = isLoopback(server.address) || isUnspecified(server.address) || localAddresses().has(normalize(server.address));
  const where = `the server (${host === server.address ? host : `${host}, ${server.address}`}) is on another host`;
  if (given !== undefined) {
    if (!serverIsLocal && (await resolvesToLoopback(given))) {
      throw new Error(`--address ${given} is a loopback address, but ${where}: DNS answers and nginx upstreams would point every other host at itself. Give --address the address other hosts reach this node on, or leave it out to use the one this host reaches the server from`);
    }
    return { address: given, found: false };
  }
  let found: string;
  try {
    found = await routeSource(server.address, server.family === 6 ? 6 : 4, port);
  } catch (err) {
    throw new Error(`cannot find the address this node is reached on: no route to the server at ${server.address} (${(err as Error).message}); check the network, or give the address with --address`);
  }
  if (isLoopback(found) && !serverIsLocal) {
    throw new Error(`this host reaches the server from a loopback address (${found}), but ${where}: give the address other hosts reach this node on with --address`);
  }
  return { address: found, found: true };
}

/** The local address the kernel picks to send to `address`: a connected UDP socket, nothing sent. */
function routeSource(address: string, family: 4 | 6, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const settle = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      try {
        if (err) reject(err);
        else resolve(socket.address().address);
      } catch (thrown) {
        reject(thrown as Error);
      } finally {
        socket.close();
      }
    };
    socket.once('error', settle);
    socket.connect(port, address, (err?: Error) => settle(err ?? undefined));
  });
}

/** IPv4-mapped IPv6 addresses as IPv4, IPv6 in lower case: how the interface list spells them. */
function normalize(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped ? mapped[1]! : lower;
}

function isLoopback(address: string): boolean {
  const a = normalize(address);
  return isIP(a) === 4 ? a.startsWith('127.') : a === '::1';
}

function isUnspecified(address: string): boolean {
  const a = normalize(address);
  return a === '0.0.0.0' || a === '::';
}

function localAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => normalize(i.address))));
}

/** A name that resolves here only to loopback addresses (localhost) is one too; one that does not resolve is taken as given. */
async function resolvesToLoopback(given: string): Promise<boolean> {
  if (isIP(given) !== 0) return isLoopback(given);
  try {
    const all = await lookup(given, { all: true });
    return all.length > 0 && all.every((a) => isLoopback(a.address));
  } catch {
    return false;
  }
}
