// The agent's last known assignments, kept on disk so that an agent restarted while the
// server is down still knows what it runs and keeps it running.
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Instance } from '../model/types.js';

export class AssignmentCache {
  constructor(private readonly path: string) {}

  load(): Instance[] {
    try {
      return JSON.parse(readFileSync(this.path, 'utf8')) as Instance[];
    } catch {
      return [];
    }
  }

  save(instances: Instance[]): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify(instances));
    renameSync(tmp, this.path);
  }
}
