// Pre-pulls: asks the agents a rollout waits for to pull its new images (reconcile/prepull.ts
// decides which nodes and when to stop waiting) and writes each node's answer into the rollout
// record; and warms nodes on request (`gantry image prepull <app>`). A server asks the agents
// connected to it; how many nodes pull at once is bounded, so a big rollout does not have the
// whole fleet hit the registry in the same second.
import type { NodeRecord, PrepullState, RolloutRecord } from '../../model/types.js';
import { entryImages, type EntrySpec } from '../../model/spec.js';
import { MAX_PREPULL_IMAGES, type PrepullResult } from '../../model/agent-protocol.js';
import type { ClusterState } from '../state.js';
import type { Store } from '../../store/store.js';
import type { AgentHub } from '../agents.js';
import type { EventLog } from './events.js';
import { STORE } from '../keys.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import { isActive } from '../reconcile/snapshot.js';
import { NotFoundError } from '../errors.js';

/** Nodes pulling at once for one server. */
const PARALLEL_NODES = 32;
const CHECK_EVERY_MS = 1000;

export interface NodePrepull {
  node: string;
  results?: PrepullResult[];
  error?: string;
}

export class PrepullService {
  /** app/to/entry/node of the requests under way. */
  private readonly asked = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly agents: AgentHub,
    private readonly events: EventLog,
    /** A reconcile pass soon: an answer may be the last one a rollout waits for. */
    private readonly reconcileSoon: () => void = () => {},
  ) {
    this.unsubscribe = state.onChange((kind) => {
      if (kind === 'rollout') this.askPending();
    });
    // Nodes that were away get asked when they are back; timed-out questions get asked again.
    this.timer = setInterval(() => this.askPending(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
  }

  /** `gantry image prepull`: every ready node that may run an entry of `app` pulls its images now; resolves with each node's answer. */
  async warm(app: string, timeoutMs: number): Promise<NodePrepull[]> {
    const record = this.state.apps.get(app);
    if (!record) throw new NotFoundError(`no app named "${app}"`);
    const byNode = new Map<string, Set<string>>();
    for (const entry of Object.values(record.spec.entrypoints)) {
      if (!entry.image || entry.pull === 'never') continue;
      const images = entryImages(entry);
      for (const node of this.state.nodes.values()) {
        if (node.state !== 'ready' || !node.runtimes.includes('docker') || !nodeAccepts(node, app, entry.placement)) continue;
        const wanted = byNode.get(node.name) ?? new Set<string>();
        for (const image of images) wanted.add(image);
        byNode.set(node.name, wanted);
      }
    }
    const queue = [...byNode];
    const answers: NodePrepull[] = [];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [node, wanted] = next;
        const images = [...wanted];
        const results: PrepullResult[] = [];
        let error: string | undefined;
        // A prepull message names at most MAX_PREPULL_IMAGES images (what an answer may carry).
        for (let at = 0; at < images.length && error === undefined; at += MAX_PREPULL_IMAGES) {
          await this.agents.prepull(node, images.slice(at, at + MAX_PREPULL_IMAGES), timeoutMs).then((some) => void results.push(...some), (err: Error) => void (error = err.message));
        }
        answers.push(error === undefined ? { node, results } : { node, error });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_NODES, queue.length) }, worker));
    return answers.sort((a, b) => a.node.localeCompare(b.node));
  }

  /** Asks every node a rollout's pre-pull still waits for, that is not being asked already. */
  private askPending(): void {
    for (const rollout of this.state.rollouts.values()) {
      if (!isActive(rollout.phase) || rollout.phase === 'paused') continue;
      for (const [entry, { prepull }] of Object.entries(rollout.entries)) {
        if (!prepull || prepull.concludedAt !== undefined || Date.now() >= prepull.until) continue;
        for (const [node, { state }] of Object.entries(prepull.nodes)) {
          const key = `${rollout.app}/${rollout.to}/${entry}/${node}`;
          if (state !== 'pending' || this.asked.has(key) || this.asked.size >= PARALLEL_NODES || !this.agents.isConnected(node)) continue;
          this.asked.add(key);
          void this.ask(rollout, entry, node, prepull).finally(() => this.asked.delete(key));
        }
      }
    }
  }

  private async ask(rollout: RolloutRecord, entry: string, node: string, prepull: PrepullState): Promise<void> {
    let answer: { state: 'done' | 'failed'; reason?: string; ms?: number };
    try {
      const results = await this.agents.prepull(node, prepull.images, Math.max(1000, prepull.until - Date.now()));
      const failed = results.filter((r) => r.error);
      answer = failed.length > 0 ? { state: 'failed', reason: failed.map((r) => `${r.image}: ${r.error}`).join('; ') } : { state: 'done', ms: Math.max(0, ...results.map((r) => r.ms)) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Away or slow: asked again while the rollout waits. An agent that cannot pre-pull never will.
      if (!/does not pre-pull/.test(message)) return;
      answer = { state: 'failed', reason: message };
    }
    await casUpdate(this.store, STORE.rollouts.key(rollout.app), STORE.rollouts, (current) => {
      const state = current?.to === rollout.to ? current.entries[entry]?.prepull : undefined;
      if (!current || !state || state.concludedAt !== undefined || state.nodes[node]?.state !== 'pending') return UNCHANGED;
      const next = structuredClone(current);
      next.entries[entry]!.prepull!.nodes[node] = answer;
      return next;
    }, { what: `rollout of ${rollout.app}` }).then(async (written) => {
      if (written.revision === undefined) return;
      await this.state.waitFor(written.revision);
      this.reconcileSoon();
    }, (err: Error) => this.events.note({ level: 'warning', type: 'rollout.prepull', app: rollout.app, message: `the pre-pull answer of node ${node} was not recorded: ${err.message}` }));
    if (answer.state === 'failed') {
      this.events.note({ level: 'warning', type: 'rollout.prepull_failed', app: rollout.app, entry, node, message: `release ${rollout.to}: ${entry}: node ${node} could not pre-pull: ${answer.reason}` });
    }
  }
}

/** Whether `node` is one the entry may be placed on, as far as its pool, labels and dedication go (not room: warming is ahead of need). */
function nodeAccepts(node: NodeRecord, app: string, placement: EntrySpec['placement']): boolean {
  if (node.pool !== placement.pool) return false;
  if (node.dedicatedTo !== undefined && node.dedicatedTo !== app) return false;
  return Object.entries(placement.labels).every(([key, value]) => node.labels[key] === value);
}
