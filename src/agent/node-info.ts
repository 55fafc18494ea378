// What an agent tells the server about its host.
import { cpus, hostname, totalmem } from 'node:os';
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

export async function describeNode(identity: NodeIdentity, runtimes: Runtime[]): Promise<{ info: NodeInfo; usable: Runtime[] }> {
  const usable: Runtime[] = [];
  const notes: string[] = [];
  for (const runtime of runtimes) {
    const probe = await runtime.probe();
    if (probe.ok) usable.push(runtime);
    else notes.push(`${runtime.name}: ${probe.reason ?? 'unavailable'}`);
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
