// What instances use, as their agents report it: per instance the newest sample and a ring of
// the recent ones (1 h at the default 10 s interval), for `gantry top`, `gantry nodes`, the
// metrics endpoint and the autoscaler to come. Kept in memory only: long-term storage is
// Prometheus's job, and a restarted server has history again after one interval.
//
// Memory is bounded by the instances the cluster holds: only an instance assigned to the
// reporting node is kept (agent-trust.ts ownUsage), and one the cluster no longer holds is
// dropped at the next sweep. Each costs a fixed HISTORY × 12 bytes (time as seconds, CPU and
// memory as 32-bit floats: 4,320 bytes at 360 samples) plus its newest sample (about 300 bytes).
import type { ClusterState } from '../state.js';
import type { NodeUsage, UsageSample } from '../../model/usage.js';

/** Samples kept per instance: an hour at the default 10 s interval. */
export const HISTORY = 360;
const SWEEP_EVERY_MS = 60_000;

class Ring {
  readonly at = new Uint32Array(HISTORY);
  readonly cpu = new Float32Array(HISTORY);
  readonly memory = new Float32Array(HISTORY);
  /** The next slot to write, and how many hold a sample. */
  next = 0;
  size = 0;
  latest: (UsageSample & { at: number }) | undefined;

  push(sample: UsageSample, at: number): void {
    this.at[this.next] = Math.floor(at / 1000);
    this.cpu[this.next] = sample.cpuCores;
    this.memory[this.next] = sample.memoryBytes;
    this.next = (this.next + 1) % HISTORY;
    this.size = Math.min(HISTORY, this.size + 1);
    this.latest = { ...sample, at };
  }

  /** Oldest first. */
  history(): { at: number[]; cpuCores: number[]; memoryBytes: number[] } {
    const out = { at: [] as number[], cpuCores: [] as number[], memoryBytes: [] as number[] };
    for (let k = 0; k < this.size; k++) {
      const i = (this.next - this.size + k + HISTORY) % HISTORY;
      out.at.push(this.at[i]! * 1000);
      out.cpuCores.push(Math.round(this.cpu[i]! * 1000) / 1000);
      out.memoryBytes.push(Math.round(this.memory[i]!));
    }
    return out;
  }
}

export class UsageService {
  private readonly rings = new Map<string, Ring>();
  private readonly nodes = new Map<string, NodeUsage>();
  private readonly sweeper: NodeJS.Timeout;
  /** Samples taken, and messages, since the server started (the ingest bench reads them). */
  samplesTaken = 0;
  messages = 0;

  constructor(private readonly state: ClusterState) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /**
   * A node's samples, already reduced to its own instances. Stamped with the server's clock:
   * an agent's clock says nothing the server can compare with another node's.
   */
  record(node: string, samples: readonly UsageSample[]): void {
    const at = Date.now();
    let cpuCores = 0;
    let memoryBytes = 0;
    for (const sample of samples) {
      let ring = this.rings.get(sample.id);
      if (!ring) this.rings.set(sample.id, (ring = new Ring()));
      ring.push(sample, at);
      cpuCores += sample.cpuCores;
      memoryBytes += sample.memoryBytes;
    }
    this.nodes.set(node, { at, instances: samples.length, cpuCores: Math.round(cpuCores * 1000) / 1000, memoryBytes });
    this.samplesTaken += samples.length;
    this.messages++;
  }

  latest(id: string): (UsageSample & { at: number }) | undefined {
    return this.rings.get(id)?.latest;
  }

  history(id: string): { at: number[]; cpuCores: number[]; memoryBytes: number[] } | undefined {
    return this.rings.get(id)?.history();
  }

  /** The node's real use from its last usage message (undefined: none since this server started). */
  ofNode(node: string): NodeUsage | undefined {
    return this.state.nodes.has(node) ? this.nodes.get(node) : undefined;
  }

  /** Instances with kept samples (bounded by the cluster's instances). */
  get size(): number {
    return this.rings.size;
  }

  /** Drops what the cluster no longer holds: removed instances, forgotten nodes. */
  sweep(): void {
    for (const id of this.rings.keys()) if (!this.state.instances.has(id)) this.rings.delete(id);
    for (const node of this.nodes.keys()) if (!this.state.nodes.has(node)) this.nodes.delete(node);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
