// What operators do to nodes and pools: cordon, drain, dedicate to one app, set a pool's team.
import type { Store } from '../../store/store.js';
import type { NodeRecord, NodeState, PoolRecord } from '../../model/types.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import type { EventLog } from './events.js';
import { NotFoundError } from '../errors.js';
import { casUpdate } from '../cas.js';

export class NodeService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
  ) {}

  async setState(name: string, state: Extract<NodeState, 'ready' | 'cordoned' | 'draining'>, user: string): Promise<NodeRecord> {
    const node = await this.update(name, (n) => ({ ...n, state: n.state === 'down' && state === 'ready' ? 'down' : state }));
    const verb = { ready: 'uncordoned', cordoned: 'cordoned', draining: 'set draining' }[state];
    this.events.note({ level: 'info', type: `node.${state}`, node: name, message: `node ${name} ${verb} by ${user}` });
    return node;
  }

  async dedicate(name: string, app: string | null, user: string): Promise<NodeRecord> {
    const node = await this.update(name, (n) => ({ ...n, dedicatedTo: app ?? undefined }));
    this.events.note({ level: 'info', type: 'node.dedicated', node: name, message: app ? `node ${name} dedicated to app ${app} by ${user}` : `node ${name} open to every app again (${user})` });
    return node;
  }

  async setPool(pool: PoolRecord): Promise<PoolRecord> {
    // Replaced whole by its owner's PUT; through casUpdate like every other record write.
    const written = await casUpdate(this.store, STORE.pools.key(pool.name), STORE.pools, () => pool, { what: `pool ${pool.name}` });
    if (written.revision !== undefined) await this.state.waitFor(written.revision);
    return pool;
  }

  private async update(name: string, change: (node: NodeRecord) => NodeRecord): Promise<NodeRecord> {
    // A heartbeat may race this write: it is retried on the fresh record, never overwritten.
    const written = await casUpdate(this.store, STORE.nodes.key(name), STORE.nodes, (node) => {
      if (!node) throw new NotFoundError(`no node named "${name}"`);
      return change(node);
    }, { what: `node ${name}` });
    await this.state.waitFor(written.revision!);
    return written.value!;
  }
}
