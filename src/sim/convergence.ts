// What the server has recorded of the instances and nodes, followed from outside through its
// watch streams (GET /v1/watch?prefix=instances|status|nodes): which instances are placed and on
// which node, which are reported healthy, which nodes are down. A bench reads its figures from
// here rather than polling GET /v1/instances, whose every answer would cost the server a walk
// over all 150,000 instances and skew what is measured; the streams cost it one write per change.
// The client resumes a dropped stream from the last revision it saw (a fresh snapshot when that
// history is gone), so nothing is missed or counted twice.
import { GantryClient, type WatchMessage } from '../cli/client.js';
import type { Instance, InstanceStatus, NodeRecord } from '../model/types.js';

interface Placement {
  app: string;
  node: string;
  desired: Instance['desired'];
}

export interface ConvergenceSummary {
  /** Instances to run (desired running), and of those the ones reported running and healthy. */
  placed: number;
  healthy: number;
  byApp: Map<string, { placed: number; healthy: number }>;
  /** Instances to run on `avoid` nodes (still there, not yet replaced). */
  onAvoided: number;
}

type Apply = (type: 'put' | 'delete', key: string, value: unknown) => void;

export class Convergence {
  private readonly placements = new Map<string, Placement>();
  private readonly healthyIds = new Set<string>();
  readonly nodeStates = new Map<string, NodeRecord['state']>();
  private readonly abort = new AbortController();
  /** Why a stream stopped for good (the client gave up reconnecting). */
  failure: string | undefined;

  constructor(private readonly client: GantryClient) {}

  /** Follows instances and statuses; resolves once both snapshots are in. */
  async start(): Promise<void> {
    await Promise.all([
      this.follow('instances', (type, key, value) => {
        const id = key.slice(key.lastIndexOf('/') + 1);
        if (type === 'delete') return void this.placements.delete(id);
        const instance = value as Instance;
        this.placements.set(id, { app: instance.app, node: instance.node, desired: instance.desired });
      }),
      this.follow('status', (type, key, value) => {
        const id = key.slice(key.lastIndexOf('/') + 1);
        const status = value as InstanceStatus | undefined;
        if (type === 'put' && status?.state === 'running' && status.healthy === true) this.healthyIds.add(id);
        else this.healthyIds.delete(id);
      }),
    ]);
  }

  /** Follows the nodes' states too (each heartbeat writes its node: a stream of its own, opened only when needed). */
  followNodes(): Promise<void> {
    return this.follow('nodes', (type, key, value) => {
      const name = key.slice(key.lastIndexOf('/') + 1);
      if (type === 'delete') this.nodeStates.delete(name);
      else this.nodeStates.set(name, (value as NodeRecord).state);
    });
  }

  summary(avoid: ReadonlySet<string> = new Set()): ConvergenceSummary {
    const byApp = new Map<string, { placed: number; healthy: number }>();
    let placed = 0;
    let healthy = 0;
    let onAvoided = 0;
    for (const [id, p] of this.placements) {
      if (p.desired !== 'running') continue;
      if (avoid.has(p.node)) {
        onAvoided++;
        continue;
      }
      let app = byApp.get(p.app);
      if (!app) byApp.set(p.app, (app = { placed: 0, healthy: 0 }));
      app.placed++;
      placed++;
      if (this.healthyIds.has(id)) {
        app.healthy++;
        healthy++;
      }
    }
    return { placed, healthy, byApp, onAvoided };
  }

  close(): void {
    this.abort.abort();
  }

  /** Resolves with the first snapshot; applies every later message until closed. */
  private follow(prefix: string, apply: Apply): Promise<void> {
    return new Promise((resolve, reject) => {
      let snapshotSeen = false;
      const run = async () => {
        for await (const message of this.client.watch({ prefix, signal: this.abort.signal, retries: 20, retryDelayMs: 250 })) {
          this.take(message, prefix, apply);
          if (!snapshotSeen && message.kind === 'snapshot') {
            snapshotSeen = true;
            resolve();
          }
        }
      };
      run().catch((err: Error) => {
        this.failure ??= `the ${prefix} watch stream ended: ${err.message}`;
        reject(err);
      });
    });
  }

  private take(message: WatchMessage, prefix: string, apply: Apply): void {
    if (message.kind === 'snapshot') {
      // A fresh snapshot (the first, or after the history the stream resumed from was compacted) replaces all.
      if (prefix === 'instances') this.placements.clear();
      else if (prefix === 'status') this.healthyIds.clear();
      else this.nodeStates.clear();
      for (const item of message.data.items ?? []) apply('put', item.key, item.value);
      return;
    }
    for (const change of message.data.changes ?? []) apply(change.type, change.key, change.value);
  }
}
