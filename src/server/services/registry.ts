// Writes the service registry. Endpoints an agent registers hang on one lease per node that
// the agent's heartbeats keep alive, so a dead node's endpoints expire by themselves; outside
// services get a lease each and keep it alive through the API.
import { randomBytes } from 'node:crypto';
import type { Store, TxnOp } from '../../store/store.js';
import { registryKey, type Endpoint } from '../../model/registry.js';
import type { EndpointCatalog } from '../../discovery/catalog.js';
import { NotFoundError } from '../errors.js';
import { WriteBatch } from '../write-batch.js';

export class RegistryService {
  /** Agents' registrations, many at once: written together. */
  private readonly batch: WriteBatch;
  private readonly nodeLeases = new Map<string, string>();
  /** Per node, what its agent claimed at the last sync that compared, on which lease, and how many endpoints that left. */
  private readonly synced = new Map<string, { claimed: string; lease: string; count: number }>();
  /** When each node's lease was last kept alive. */
  private readonly lastKept = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly catalog: EndpointCatalog,
    /** How long a node's endpoints outlive its last heartbeat. */
    private readonly nodeTtlMs: number,
    /** Told when a node that was heard from again had let its lease lapse (its endpoints went meanwhile). */
    private readonly onLapse: (node: string, silentMs: number) => void = () => {},
  ) {
    this.batch = new WriteBatch(store);
  }

  /** Registers and withdraws endpoints of one node's agent, in one write; it can withdraw only its own. */
  async update(node: string, register: Endpoint[], withdraw: Pick<Endpoint, 'app' | 'env' | 'entry' | 'id'>[]): Promise<void> {
    this.synced.delete(node);
    withdraw = withdraw.filter((ref) => this.catalog.get(registryKey(ref))?.node === node);
    if (register.length === 0 && withdraw.length === 0) return;
    // A lapsed lease is not revoked here: the node's other endpoints move to the new one with
    // the next heartbeat (sync), which knows the agent's whole view.
    const { lease } = await this.nodeLease(node);
    const ops: TxnOp[] = [
      ...withdraw.map((e) => ({ type: 'delete' as const, key: registryKey(e) })),
      ...register.map((e) => ({ type: 'put' as const, key: registryKey(e), value: JSON.stringify({ ...e, node, source: 'agent' }), lease })),
    ];
    await this.batch.write(ops);
  }

  /**
   * Makes the node's registered endpoints exactly `endpoints` (the agent's full view, sent
   * with every heartbeat) and keeps their lease alive: repairs anything a lost message or an
   * expired lease left wrong.
   */
  async sync(node: string, endpoints: Endpoint[] | (() => Endpoint[]), claimed?: string): Promise<void> {
    const { lease, fresh, lapsed } = await this.nodeLease(node);
    const onNode = this.catalog.onNode(node);
    // The agent claims what it claimed last time, on the same lease, and nothing was written
    // for the node since (its own registrations forget this): nothing to compare.
    const last = this.synced.get(node);
    if (claimed !== undefined && !fresh && !lapsed && last?.claimed === claimed && last.lease === lease && last.count === onNode.length) return;
    this.synced.delete(node);
    if (typeof endpoints === 'function') endpoints = endpoints();
    const current = new Map(onNode.map((e) => [registryKey(e), e]));
    const wanted = new Map(endpoints.map((e) => [registryKey(e), { ...e, node, source: 'agent' as const }]));
    const ops: TxnOp[] = [];
    for (const [key, endpoint] of wanted) {
      const stale = fresh || this.catalog.leaseOf(key) !== lease || JSON.stringify(current.get(key)) !== JSON.stringify(endpoint);
      if (stale) ops.push({ type: 'put', key, value: JSON.stringify(endpoint), lease });
    }
    for (const key of current.keys()) if (!wanted.has(key)) ops.push({ type: 'delete', key });
    if (ops.length > 0) await this.store.txn({ compare: [], success: ops });
    // Only now, with every wanted endpoint on the new lease, does the lapsed one go: its keys
    // never vanish and come back (a front end rendering in between would lose the node).
    if (lapsed) await this.store.revokeLease(lapsed);
    if (claimed !== undefined) this.synced.set(node, { claimed, lease, count: wanted.size });
  }

  /** An outside service registers itself; it must call keepAlive within ttlMs, again and again. */
  async registerExternal(endpoint: Omit<Endpoint, 'registeredAt' | 'source' | 'node' | 'id'> & { id?: string }, ttlMs: number): Promise<{ endpoint: Endpoint; lease: string }> {
    const lease = await this.store.grantLease(ttlMs);
    const full: Endpoint = { ...endpoint, id: endpoint.id ?? `ext-${randomBytes(4).toString('hex')}`, registeredAt: Date.now(), source: 'api' };
    await this.store.put(registryKey(full), JSON.stringify(full), { lease });
    return { endpoint: full, lease };
  }

  async keepAliveExternal(lease: string): Promise<void> {
    if (!(await this.store.keepAlive(lease))) throw new NotFoundError(`lease ${lease} has expired or does not exist; register again`);
  }

  async deregisterExternal(lease: string): Promise<void> {
    await this.store.revokeLease(lease);
  }

  /**
   * The node's lease, kept alive; `fresh` when it had to be granted anew, with the `lapsed` one
   * (expired, its keys not yet reaped) left for the caller to revoke once the keys have moved.
   */
  private async nodeLease(node: string): Promise<{ lease: string; fresh: boolean; lapsed?: string }> {
    const existing = this.nodeLeases.get(node);
    const now = Date.now();
    if (existing) {
      // keepAlive on an expired lease would revoke it, deleting the node's keys at once.
      if ((await this.store.leaseTimeToLive(existing)) !== undefined && (await this.store.keepAlive(existing))) {
        this.lastKept.set(node, now);
        return { lease: existing, fresh: false };
      }
      this.onLapse(node, now - (this.lastKept.get(node) ?? now));
    }
    const lease = await this.store.grantLease(this.nodeTtlMs);
    this.nodeLeases.set(node, lease);
    this.lastKept.set(node, now);
    return { lease, fresh: true, ...(existing ? { lapsed: existing } : {}) };
  }
}
