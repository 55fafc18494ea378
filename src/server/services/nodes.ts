// What operators do to nodes and pools: cordon, drain, dedicate to one app, set a pool's team.
import type { Store } from '../../store/store.js';
import type { NodeRecord, NodeState, PoolRecord } from '../../model/types.js';
import { KEYS, type ClusterState } from '../state.js';
import type { EventLog } from './events.js';
import { NotFoundError } from './apps.js';

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
    const revision = await this.store.put(KEYS.pool(pool.name), JSON.stringify(pool));
    await this.state.waitFor(revision);
    return pool;
  }

  private async update(name: string, change: (node: NodeRecord) => NodeRecord): Promise<NodeRecord> {
    const kv = await this.store.get(KEYS.node(name));
    if (!kv) throw new NotFoundError(`no node named "${name}"`);
    const next = change(JSON.parse(kv.value) as NodeRecord);
    const result = await this.store.txn({ compare: [{ key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision }], success: [{ type: 'put', key: kv.key, value: JSON.stringify(next) }] });
    // A heartbeat raced us: it carries the old state, so try once more on the fresh record.
    if (!result.succeeded) return this.update(name, change);
    await this.state.waitFor(result.revision);
    return next;
  }
}
