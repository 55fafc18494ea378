// What agents report of their nodes, kept: the node's description (written only when it changed),
// instance statuses, removals done, events, the endpoints they register, and what a node runs
// that this server does not know. The rules of agent-trust.ts decide what of it concerns the
// agent's own node; what does not is ignored, with an event now and then.
import { isDeepStrictEqual } from 'node:util';
import type { Store } from '../../store/store.js';
import type { UnassignedReport } from '../../model/agent-protocol.js';
import type { InstanceStatus, NodeInfo, NodeRecord } from '../../model/types.js';
import type { Endpoint } from '../../model/registry.js';
import { WriteBatch } from '../write-batch.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import { ownEndpoints, ownEvent, ownStatuses, ownUsage, type AgentEvent } from '../agent-trust.js';
import type { UsageSample } from '../../model/usage.js';
import type { UsageService } from '../services/usage.js';
import type { EventLog } from '../services/events.js';
import type { Session } from './connections.js';

/** How often one node's refused reports are recorded as an event (they may come every second). */
const REFUSAL_EVENT_EVERY_MS = 60_000;

export class NodeReports {
  /** Per node, what its agent last reported running without an assignment. */
  private readonly unassignedOf = new Map<string, UnassignedReport[]>();
  /** Statuses from every node, written together. */
  private readonly statusWrites: WriteBatch;
  /** Per node, statuses it reported that could not be written (a full disk): tried again at its next heartbeat. */
  private readonly unsavedStatuses = new Map<string, Map<string, InstanceStatus>>();
  private readonly lastRefusalEvent = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
  ) {
    this.statusWrites = new WriteBatch(store);
  }

  /** register(), skipped when the node says what it said last time and its record did not change since. */
  async registerOnce(session: Session, info: NodeInfo): Promise<void> {
    const said = JSON.stringify(info);
    if (session.registered?.info === said && session.registered.record === this.state.nodes.get(info.name) && session.registered.record?.state !== 'down') return;
    await this.register(info);
    session.registered = { info: said, record: this.state.nodes.get(info.name) };
  }

  /**
   * Stores what the node says of itself, only when that changed (or the node was down): a
   * heartbeat is liveness, kept in memory (`contact`), not a write. An operator's cordon, drain
   * or dedication outlives heartbeats and reconnections.
   */
  async register(info: NodeInfo): Promise<void> {
    const cached = this.state.nodes.get(info.name);
    if (cached && cached.state !== 'down' && sameNodeInfo(cached, info)) return;
    let previous: NodeRecord | undefined;
    const written = await casUpdate(this.store, STORE.nodes.key(info.name), STORE.nodes, (current) => {
      previous = current;
      if (current && current.state !== 'down' && sameNodeInfo(current, info)) return UNCHANGED;
      const now = Date.now();
      const record: NodeRecord = {
        ...info,
        state: current?.state === 'cordoned' || current?.state === 'draining' ? current.state : 'ready',
        dedicatedTo: current?.dedicatedTo,
        registeredAt: current?.registeredAt ?? now,
        lastHeartbeat: now,
      };
      return record;
    }, { what: `node ${info.name}` });
    if (written.revision === undefined) return;
    await this.state.waitFor(written.revision);
    if (info.recovering && !previous?.recovering) this.events.note({ level: 'warning', type: 'node.recovering', node: info.name, message: `node ${info.name} rebooted: it restarts its previous instances before taking new ones` });
    if (!info.recovering && previous?.recovering) this.events.note({ level: 'info', type: 'node.recovered', node: info.name, message: `node ${info.name} has its previous instances back and takes new ones again` });
    if (!previous) this.events.note({ level: 'info', type: 'node.registered', node: info.name, message: `node ${info.name} joined: ${info.cores} cores, runtimes ${info.runtimes.join(', ') || 'none'}` });
    else if (previous.state === 'down') this.events.note({ level: 'info', type: 'node.up', node: info.name, message: `node ${info.name} is back` });
  }

  /**
   * Writes what changed of a node's statuses. What cannot be written is kept and tried again at
   * the node's next heartbeat (the agent sends each status once, and all of them again only now
   * and then), newer reports of the same instance replacing it.
   */
  async saveStatuses(node: string, statuses: InstanceStatus[]): Promise<void> {
    const { own, refused } = ownStatuses(this.state, node, statuses);
    if (refused.length > 0) this.refusedReport(node, `reported the status of instances of other nodes: ${refused.slice(0, 5).map((s) => s.id).join(', ')}`);
    const unsaved = this.unsavedStatuses.get(node);
    this.unsavedStatuses.delete(node);
    const reported = new Map(unsaved);
    for (const status of own) reported.set(status.id, status);
    const changed = [...reported.values()].filter((status) => {
      const previous = this.state.statuses.get(status.id);
      // Gone meanwhile (removed and forgotten): nothing to keep.
      return this.state.instances.has(status.id) && (!previous || !isDeepStrictEqual({ ...previous, updatedAt: 0 }, { ...status, updatedAt: 0 }));
    });
    if (changed.length === 0) return;
    try {
      const revision = await this.statusWrites.write(changed.map((s) => ({ type: 'put' as const, key: STORE.statuses.key(s.id), value: STORE.statuses.encode(s) })));
      await this.state.waitFor(revision);
    } catch (err) {
      const kept = this.unsavedStatuses.get(node) ?? new Map<string, InstanceStatus>();
      for (const status of changed) if (!kept.has(status.id)) kept.set(status.id, status);
      this.unsavedStatuses.set(node, kept);
      throw err;
    }
  }

  hasUnsavedStatuses(node: string): boolean {
    return this.unsavedStatuses.has(node);
  }

  /** The endpoints the session's node claims that are its own instances'. */
  ownEndpoints(session: Session, claimed: readonly { id: string; registeredAt: number }[]): Endpoint[] {
    const { endpoints, refused } = ownEndpoints(this.state, session.node!, session.info!.address, claimed);
    if (refused.length > 0) this.refusedReport(session.node!, `registered endpoints for instances it does not run: ${refused.slice(0, 5).join(', ')}`);
    return endpoints;
  }

  noteEvents(node: string, events: readonly AgentEvent[]): void {
    for (const event of events) {
      const own = ownEvent(this.state, node, event);
      if (own) this.events.note(own);
      else this.refusedReport(node, `sent an event about instance ${event.instance} of another node`);
    }
  }

  /** What the node runs that this server does not know, for `gantry node adopt|forget`; an event when it changes. */
  noteUnassigned(node: string, unassigned: UnassignedReport[]): void {
    const before = this.unassignedOf.get(node) ?? [];
    this.unassignedOf.set(node, unassigned);
    const ids = (list: UnassignedReport[]) => list.map((u) => u.id).sort().join();
    if (unassigned.length === 0 || ids(before) === ids(unassigned)) return;
    const apps = [...new Set(unassigned.map((u) => u.app))].slice(0, 5).join(', ');
    this.events.note({ level: 'warning', type: 'node.unassigned', node, message: `node ${node} runs ${unassigned.length} instance(s) this server does not know (apps: ${apps}); they keep running: adopt them (gantry node adopt ${node}) or have them removed (gantry node forget ${node})` });
  }

  /** What the node's agent last reported running that this server does not know. */
  unassigned(node: string): UnassignedReport[] {
    return this.unassignedOf.get(node) ?? [];
  }

  /** The nodes whose agent last reported running instances this server does not know. */
  nodesWithUnassigned(): string[] {
    return [...this.unassignedOf].filter(([, list]) => list.length > 0).map(([node]) => node);
  }

  /** The node removed these on the server's instruction: the instructions are done. */
  async removed(node: string, ids: string[]): Promise<void> {
    const done = ids.filter((id) => this.state.removals.get(id)?.node === node);
    if (done.length === 0) return;
    const { revision } = await this.store.txn({ compare: [], success: done.map((id) => ({ type: 'delete' as const, key: STORE.removals.key(node, id) })) });
    await this.state.waitFor(revision);
  }

  /** Keeps the usage samples of the node's own instances. */
  noteUsage(node: string, samples: readonly UsageSample[], usage: UsageService): void {
    const { own, refused } = ownUsage(this.state, node, samples);
    if (refused.length > 0) this.refusedReport(node, `reported the usage of instances of other nodes: ${refused.slice(0, 5).join(', ')}`);
    usage.record(node, own);
  }

  private refusedReport(node: string, what: string): void {
    const last = this.lastRefusalEvent.get(node) ?? 0;
    if (Date.now() - last < REFUSAL_EVENT_EVERY_MS) return;
    this.lastRefusalEvent.set(node, Date.now());
    this.events.note({ level: 'warning', type: 'agent.refused_report', node, message: `node ${node} ${what}: ignored` });
  }
}

/** Whether the stored record already says what the agent says of its node (its own fields only). */
function sameNodeInfo(record: NodeRecord, info: NodeInfo): boolean {
  const { state: _state, dedicatedTo: _dedicatedTo, registeredAt: _registeredAt, lastHeartbeat: _lastHeartbeat, ...stored } = record;
  return isDeepStrictEqual(JSON.parse(JSON.stringify(stored)), JSON.parse(JSON.stringify(info)));
}
