// Marks a node down when its agent has neither heartbeated nor stayed connected for
// `timeoutMs`. A server that just started gives every node that long again, so a server
// restart never declares the fleet dead and reschedules it.
import type { Store } from '../../store/store.js';
import { KEYS, type ClusterState } from '../state.js';
import type { EventLog } from '../services/events.js';

export class NodeController {
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly isConnected: (node: string) => boolean,
    private readonly timeoutMs: number,
  ) {}

  async check(now = Date.now()): Promise<void> {
    for (const node of this.state.nodes.values()) {
      if (node.state === 'down' || this.isConnected(node.name)) continue;
      const silentFor = now - Math.max(node.lastHeartbeat, this.startedAt);
      if (silentFor < this.timeoutMs) continue;
      const revision = await this.store.put(KEYS.node(node.name), JSON.stringify({ ...node, state: 'down' }));
      await this.state.waitFor(revision);
      await this.events.record({ level: 'error', type: 'node.down', node: node.name, message: `node ${node.name} has not been heard from for ${Math.round(silentFor / 1000)}s` });
    }
  }
}
