// What the agent keeps on disk so that, restarted while the server is down, it still knows
// what it runs (its last assignments) and what it had seen (restart counts, start times).
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance, InstanceStatus } from '../model/types.js';

export class AgentCache {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  loadAssignments(): Instance[] {
    return this.read<Instance[]>('assignments.json') ?? [];
  }

  saveAssignments(instances: Instance[]): void {
    this.write('assignments.json', instances);
  }

  loadStatuses(): Map<string, InstanceStatus> {
    return new Map((this.read<InstanceStatus[]>('statuses.json') ?? []).map((s) => [s.id, s]));
  }

  saveStatuses(statuses: InstanceStatus[]): void {
    this.write('statuses.json', statuses);
  }

  /** True when the host booted since the agent last ran (and it had run here before). */
  rebootedSinceLastRun(bootId: string): boolean {
    const last = this.read<{ bootId: string }>('boot.json');
    this.write('boot.json', { bootId });
    return last !== undefined && last.bootId !== bootId;
  }

  private read<T>(name: string): T | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  private write(name: string, value: unknown): void {
    const path = join(this.dir, name);
    writeFileSync(`${path}.tmp`, JSON.stringify(value));
    renameSync(`${path}.tmp`, path);
  }
}
