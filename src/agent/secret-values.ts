// The secret values this node's instances use, as the server sent them with their assignments.
// Kept in memory and in the agent's cache (secrets.json, 0600 in its 0700 directory), so an
// instance that must be started afresh while the server is down still gets them; only the values
// some instance assigned here uses are kept, the others are dropped as their instances go.
import type { SecretValueMap } from '../model/agent-protocol.js';
import type { Instance } from '../model/types.js';
import { entrySecrets } from '../model/spec-secrets.js';
import type { AgentCache } from './cache.js';

export class SecretValues {
  private values: SecretValueMap;

  constructor(private readonly cache: AgentCache) {
    this.values = cache.loadSecrets();
  }

  /** The value of `team/name`, if the server sent it. */
  get(ref: string): string | undefined {
    return Object.hasOwn(this.values, ref) ? this.values[ref]!.value : undefined;
  }

  /** Takes what came with the assignments, and keeps only what `instances` use. */
  update(received: SecretValueMap | undefined, instances: readonly Instance[]): void {
    const used = new Set(instances.flatMap((i) => entrySecrets(i.spec)));
    const next: SecretValueMap = {};
    for (const ref of used) {
      const value = received && Object.hasOwn(received, ref) ? received[ref] : this.values[ref];
      if (value) next[ref] = value;
    }
    if (JSON.stringify(next) === JSON.stringify(this.values)) return;
    this.values = next;
    this.cache.saveSecrets(next);
  }
}
