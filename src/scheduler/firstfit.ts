// First placement policy: pure, no I/O. Puts an instance on the feasible node with the most
// free CPU (which spreads replicas), and says per cause why nodes were rejected otherwise.
// The full scheduler (fractional cores, pools, strategies) replaces this behind the same call.
import type { AssignedPort, NodeState, RuntimeName } from '../model/types.js';
import type { PortSpec } from '../model/spec.js';

export interface NodeSnapshot {
  name: string;
  state: NodeState;
  cores: number;
  memoryBytes: number;
  runtimes: RuntimeName[];
  labels: Record<string, string>;
  portRange: [number, number];
  allocatedCpu: number;
  allocatedMemory: number;
  /** Host ports held by instances on this node, as "port/protocol". */
  usedPorts: Set<string>;
}

export interface PlacementRequest {
  cpu: number;
  memoryBytes: number;
  runtime: RuntimeName;
  labels: Record<string, string>;
  ports: PortSpec[];
}

export type PlacementResult = { node: string; ports: AssignedPort[] } | { reason: string };

export function placeOne(nodes: NodeSnapshot[], request: PlacementRequest): PlacementResult {
  const rejections = new Map<string, number>();
  const reject = (cause: string) => rejections.set(cause, (rejections.get(cause) ?? 0) + 1);
  let best: { node: NodeSnapshot; ports: AssignedPort[]; freeCpu: number } | undefined;
  for (const node of nodes) {
    if (node.state !== 'ready') { reject(`node ${node.state}`); continue; }
    if (!node.runtimes.includes(request.runtime)) { reject(`no ${request.runtime} runtime`); continue; }
    const label = Object.entries(request.labels).find(([k, v]) => node.labels[k] !== v);
    if (label) { reject(`label ${label[0]}!=${label[1]}`); continue; }
    const freeCpu = node.cores - node.allocatedCpu;
    if (freeCpu + 1e-9 < request.cpu) { reject('insufficient cpu'); continue; }
    if (node.memoryBytes - node.allocatedMemory < request.memoryBytes) { reject('insufficient memory'); continue; }
    const ports = assignPorts(node, request.ports);
    if (typeof ports === 'string') { reject(ports); continue; }
    if (!best || freeCpu > best.freeCpu) best = { node, ports, freeCpu };
  }
  if (best) return { node: best.node.name, ports: best.ports };
  const causes = [...rejections].map(([cause, n]) => `${n} ${cause}`).join(', ');
  return { reason: `0/${nodes.length} nodes available${causes ? `: ${causes}` : ''}` };
}

/** Fixed host ports must be free; the others get the lowest free port of the node's range. */
export function assignPorts(node: Pick<NodeSnapshot, 'portRange' | 'usedPorts'>, ports: PortSpec[]): AssignedPort[] | string {
  const taken = new Set(node.usedPorts);
  const assigned: AssignedPort[] = [];
  for (const port of ports.filter((p) => p.host !== undefined)) {
    const key = `${port.host}/${port.protocol}`;
    if (taken.has(key)) return `host port ${key} in use`;
    taken.add(key);
    assigned.push({ name: port.name, container: port.container, host: port.host!, protocol: port.protocol });
  }
  let next = node.portRange[0];
  for (const port of ports.filter((p) => p.host === undefined)) {
    while (next <= node.portRange[1] && taken.has(`${next}/${port.protocol}`)) next++;
    if (next > node.portRange[1]) return 'no free host port';
    taken.add(`${next}/${port.protocol}`);
    assigned.push({ name: port.name, container: port.container, host: next, protocol: port.protocol });
  }
  return ports.map((p) => assigned.find((a) => a.name === p.name)!);
}

/** Records a placement in the snapshot so the next instance of the same pass sees it. */
export function reserve(node: NodeSnapshot, request: PlacementRequest, ports: AssignedPort[]): void {
  node.allocatedCpu += request.cpu;
  node.allocatedMemory += request.memoryBytes;
  for (const port of ports) node.usedPorts.add(`${port.host}/${port.protocol}`);
}
