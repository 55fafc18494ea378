// What an operator does about instances nodes run that this server does not know (its store was
// emptied or started anew, or restored from another cluster's backup; or a node's cache was
// lost): adopt them, so the server takes them over as they run (no restart), or forget them, so
// their nodes remove them. Nodes report these instances with every heartbeat; nothing happens to
// them until an operator says which.
import type { Compare, Store, TxnOp } from '../../store/store.js';
import type { AppRecord, Instance, ReleaseRecord } from '../../model/types.js';
import type { UnassignedReport } from '../../model/agent-protocol.js';
import type { AdoptionResult } from '../../model/api.js';
import { EntrySpec, parseAppSpec, problemsFromZod, type AppSpec } from '../../model/spec.js';
import { diff } from '../../model/diff.js';
import { isDeepStrictEqual } from 'node:util';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import { allocGuards } from '../reconcile/apply.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { EventLog } from './events.js';

/** What the agent hub knows of nodes' unassigned instances, and how it tells a node it is settled. */
export interface UnassignedSource {
  unassigned(node: string): UnassignedReport[] | undefined;
  /** The node's agent is told that it belongs to this cluster now (it may act on removals again). */
  settle(node: string): void;
}


export class AdoptionService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly source: UnassignedSource,
  ) {}

  /** The instances `node` runs that this server does not know. */
  list(node: string): UnassignedReport[] {
    if (!this.state.nodes.has(node)) throw new NotFoundError(`no node named "${node}"`);
    const reported = this.source.unassigned(node);
    if (reported === undefined) throw new ConflictError(`node ${node} is not connected: its agent reports what it runs when it is`);
    return reported;
  }

  /**
   * Takes the unassigned instances of `nodes` over as they run. An app this store lacks is made
   * from them (one release, each entry's replica count the number adopted); into an app that
   * exists, an instance is adopted only if the app has its entrypoint, and joins the app's
   * release when it runs the same spec (else the app's rollout rules replace it).
   */
  async adopt(nodes: string[], user: string): Promise<AdoptionResult> {
    const result: AdoptionResult = { adopted: [], createdApps: [], skipped: [] };
    const adopting: Instance[] = [];
    for (const node of nodes) {
      for (const reported of this.list(node)) {
        const checked = this.adoptable(node, reported);
        if ('reason' in checked) result.skipped.push({ id: reported.id, reason: checked.reason });
        else adopting.push(checked.instance);
      }
    }
    const ops: TxnOp[] = [];
    const compares: Compare[] = [];
    const now = Date.now();
    const byApp = new Map<string, Instance[]>();
    for (const instance of adopting) byApp.set(instance.app, [...(byApp.get(instance.app) ?? []), instance]);
    for (const [name, instances] of byApp) {
      const app = this.state.apps.get(name);
      if (app) {
        for (const instance of instances) {
          const spec = app.spec.entrypoints[instance.entry];
          if (!spec || !Object.hasOwn(app.spec.entrypoints, instance.entry)) {
            result.skipped.push({ id: instance.id, reason: `app ${name} has no entrypoint "${instance.entry}"` });
            continue;
          }
          const same = isDeepStrictEqual({ ...spec, replicas: 0 }, { ...instance.spec, replicas: 0 });
          ops.push(this.put({ ...instance, release: same ? app.release : Math.max(0, app.release - 1) }));
          result.adopted.push(instance.id);
        }
        continue;
      }
      const made = this.appFrom(name, instances, user, now);
      if ('reason' in made) {
        for (const instance of instances) result.skipped.push({ id: instance.id, reason: made.reason });
        continue;
      }
      compares.push({ key: STORE.apps.key(name), target: 'version', op: '==', value: 0 });
      ops.push({ type: 'put', key: STORE.apps.key(name), value: STORE.apps.encode(made.app) }, { type: 'put', key: STORE.releases.key(name, 1), value: STORE.releases.encode(made.release) });
      for (const instance of instances) {
        ops.push(this.put({ ...instance, release: 1 }));
        result.adopted.push(instance.id);
      }
      result.createdApps.push(name);
    }
    if (ops.length > 0) {
      const write = { compares, ops };
      const guards = allocGuards(adopting.map((i) => i.node), { alloc: (node) => this.state.allocRevisions.get(node) ?? 0 }, Date.now());
      write.compares.push(...guards.compares);
      write.ops.push(...guards.ops);
      const done = await this.store.txn({ compare: write.compares, success: write.ops });
      if (!done.succeeded) throw new ConflictError('the cluster changed while adopting (an app of the same name was created, or a placement on these nodes): try again');
      await this.state.waitFor(done.revision);
    }
    for (const node of nodes) this.source.settle(node);
    this.events.note({
      level: 'info',
      type: 'node.adopted',
      message: `${user} adopted ${result.adopted.length} instance(s) on ${nodes.join(', ')}${result.createdApps.length ? `; apps made from them: ${result.createdApps.join(', ')}` : ''}${result.skipped.length ? `; ${result.skipped.length} skipped` : ''}`,
    });
    return result;
  }

  /** Has `node` remove the unassigned instances it runs (all, or those named). */
  async forget(node: string, ids: string[] | undefined, user: string): Promise<string[]> {
    const reported = this.list(node).filter((u) => ids === undefined || ids.includes(u.id));
    // First the node learns it belongs here (it ignores removals from another cluster), then what to remove.
    this.source.settle(node);
    if (reported.length > 0) {
      const at = Date.now();
      const ops: TxnOp[] = reported.map((u) => ({
        type: 'put',
        key: STORE.removals.key(node, u.id),
        value: STORE.removals.encode({ id: u.id, node, app: u.app, entry: u.entry, reason: `forgotten by ${user}`, at }),
      }));
      const { revision } = await this.store.txn({ compare: [], success: ops });
      await this.state.waitFor(revision);
    }
    this.events.note({ level: 'warning', type: 'node.forgotten', node, message: `${user} had node ${node} remove ${reported.length} instance(s) this server did not know` });
    return reported.map((u) => u.id);
  }

  private adoptable(node: string, reported: UnassignedReport): { instance: Instance } | { reason: string } {
    if (this.state.instances.has(reported.id)) return { reason: 'this server knows it already' };
    const record = reported.record;
    if (!record) return { reason: 'its node found it running but has no record of it (no spec): it can be forgotten, not adopted' };
    const spec = EntrySpec.safeParse(record.spec);
    if (!spec.success) return { reason: `its spec is not valid here: ${problemsFromZod(spec.error).slice(0, 3).map((p) => `${p.path}: ${p.message}`).join('; ')}` };
    return { instance: { ...record, spec: spec.data, node, desired: 'running' } };
  }

  private appFrom(name: string, instances: Instance[], user: string, now: number): { app: AppRecord; release: ReleaseRecord } | { reason: string } {
    const entrypoints: Record<string, unknown> = {};
    for (const instance of instances) {
      const existing = entrypoints[instance.entry] as { replicas: number } | undefined;
      entrypoints[instance.entry] = existing ? { ...existing, replicas: existing.replicas + 1 } : { ...instance.spec, replicas: 1 };
    }
    let spec: AppSpec;
    try {
      spec = parseAppSpec({ app: name, env: instances[0]!.env, entrypoints: JSON.parse(JSON.stringify(entrypoints)) });
    } catch (err) {
      return { reason: `app ${name} cannot be made from what its instances run: ${(err as Error).message.split('\n')[0]}` };
    }
    const note = `adopted from what runs on ${[...new Set(instances.map((i) => i.node))].join(', ')}`;
    const app: AppRecord = { name, env: spec.env, spec, release: 1, stopped: false, createdAt: now, updatedAt: now, updatedBy: user };
    return { app, release: { app: name, release: 1, spec, createdAt: now, createdBy: user, note, changes: diff({}, spec) } };
  }

  private put(instance: Instance): TxnOp {
    return { type: 'put', key: STORE.instances.key(instance.app, instance.id), value: STORE.instances.encode(instance) };
  }
}
