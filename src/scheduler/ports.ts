// Host ports. A fixed host port must be free on the node; a port without one gets the lowest free port of the node's range (per protocol, so a udp
// port is never skipped because a tcp one was just assigned). The result keeps the spec's order.
import type { AssignedPort, HostPort, PortSpec } from './types.js';
import { portKey, type NodeEntry, type NodeUsage } from './state.js';

/** A request's ports, pre-digested once per request. */
export interface PortNeed {
  specs: readonly PortSpec[];
  fixed: Array<{ key: number; port: number; protocol: 'tcp' | 'udp' }>;
  dynTcp: number;
  dynUdp: number;
}

export function portNeed(specs: readonly PortSpec[] | undefined): PortNeed {
  const need: PortNeed = { specs: specs ?? [], fixed: [], dynTcp: 0, dynUdp: 0 };
  for (const p of need.specs) {
    if (p.host !== undefined) need.fixed.push({ key: portKey(p.host, p.protocol), port: p.host, protocol: p.protocol });
    else if (p.protocol === 'udp') need.dynUdp++;
    else need.dynTcp++;
  }
  return need;
}

const range = (e: NodeEntry) => Math.max(0, e.hi - e.lo + 1);

/** Free ports of the node's range for the dynamic ports, after this request's fixed ones. */
function dynamicRoom(e: NodeEntry, u: NodeUsage, need: PortNeed): [number, number] {
  let tcp = range(e) - u.tcpInRange;
  let udp = range(e) - u.udpInRange;
  for (const f of need.fixed) {
    if (f.port >= e.lo && f.port <= e.hi) {
      if (f.protocol === 'udp') udp--;
      else tcp--;
    }
  }
  return [tcp, udp];
}

/** Why the request's ports do not fit on the node (null when they do). */
export function portsWhy(e: NodeEntry, u: NodeUsage, need: PortNeed): string | null {
  for (const f of need.fixed) if (u.ports.has(f.key)) return `host port ${f.port}/${f.protocol} in use`;
  if (need.dynTcp + need.dynUdp === 0) return null;
  const [tcp, udp] = dynamicRoom(e, u, need);
  return tcp < need.dynTcp || udp < need.dynUdp ? 'no free host port' : null;
}

/** How many instances fit by ports alone. */
export function portCount(e: NodeEntry, u: NodeUsage, need: PortNeed): number {
  if (portsWhy(e, u, need) !== null) return 0;
  if (need.fixed.length > 0) return 1;
  const [tcp, udp] = dynamicRoom(e, u, need);
  return Math.min(need.dynTcp ? Math.floor(tcp / need.dynTcp) : Infinity, need.dynUdp ? Math.floor(udp / need.dynUdp) : Infinity);
}

/** Assigns host ports (the caller checked portsWhy). Does not change u. */
export function assignPorts(e: NodeEntry, u: NodeUsage, need: PortNeed): AssignedPort[] {
  if (need.specs.length === 0) return [];
  const taken = new Set<number>();
  for (const f of need.fixed) taken.add(f.key);
  const out: AssignedPort[] = [];
  let nextTcp = e.lo;
  let nextUdp = e.lo;
  for (const p of need.specs) {
    let host = p.host;
    if (host === undefined) {
      const udp = p.protocol === 'udp';
      let next = udp ? nextUdp : nextTcp;
      while (next <= e.hi && (u.ports.has(portKey(next, p.protocol)) || taken.has(portKey(next, p.protocol)))) next++;
      if (next > e.hi) throw new Error(`no free host port on ${e.name}`);
      host = next;
      if (udp) nextUdp = next + 1;
      else nextTcp = next + 1;
      taken.add(portKey(host, p.protocol));
    }
    out.push(p.container === undefined ? { name: p.name, host, protocol: p.protocol } : { name: p.name, container: p.container, host, protocol: p.protocol });
  }
  return out;
}

export function checkPorts(e: NodeEntry, u: NodeUsage, ports: AssignedPort[]): string | null {
  const seen = new Set<number>();
  for (const p of ports) {
    const key = portKey(p.host, p.protocol);
    if (u.ports.has(key) || seen.has(key)) return `host port ${p.host}/${p.protocol} in use`;
    seen.add(key);
  }
  return null;
}

export function applyPorts(e: NodeEntry, u: NodeUsage, ports: AssignedPort[]): void {
  if (ports.length === 0) return;
  const set = u.ownPorts();
  for (const p of ports) {
    const key = portKey(p.host, p.protocol);
    if (set.has(key)) continue;
    set.add(key);
    if (p.host >= e.lo && p.host <= e.hi) {
      if (p.protocol === 'udp') u.udpInRange++;
      else u.tcpInRange++;
    }
  }
}

export function releasePorts(e: NodeEntry, u: NodeUsage, ports: AssignedPort[]): void {
  if (ports.length === 0) return;
  const set = u.ownPorts();
  for (const p of ports) {
    if (!set.delete(portKey(p.host, p.protocol))) continue;
    if (p.host >= e.lo && p.host <= e.hi) {
      if (p.protocol === 'udp') u.udpInRange--;
      else u.tcpInRange--;
    }
  }
}

/** Counts host ports held outside Gantry as used (they belong to no placement). */
export function blockPorts(e: NodeEntry, u: NodeUsage, ports: readonly HostPort[]): void {
  applyPorts(e, u, ports.map((p) => ({ name: '', host: p.host, protocol: p.protocol })));
}

/**
 * New host ports for an instance whose ports `taken` turned out to be held by a program Gantry
 * does not run: its other ports are kept, each taken one is replaced by the lowest free port of
 * the node's range, and the taken ones stay counted as used. Applies the result to u. Throws
 * when the range has no free port left.
 */
export function movePorts(e: NodeEntry, u: NodeUsage, ports: AssignedPort[], taken: readonly HostPort[]): AssignedPort[] {
  const blocked = new Set(taken.map((t) => portKey(t.host, t.protocol)));
  releasePorts(e, u, ports);
  blockPorts(e, u, taken);
  const specs: PortSpec[] = ports.map((p) => {
    const spec: PortSpec = { name: p.name, protocol: p.protocol, ...(p.container === undefined ? {} : { container: p.container }) };
    return blocked.has(portKey(p.host, p.protocol)) ? spec : { ...spec, host: p.host };
  });
  const moved = assignPorts(e, u, portNeed(specs));
  applyPorts(e, u, moved);
  return moved;
}
