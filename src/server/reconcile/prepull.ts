// Pre-pull, as a rollout step sees it: when an entry's release brings images its old instances
// do not run, the rollout first has the nodes that will run the new instances (those of the old
// ones, and the room it holds for extra ones) pull them, and moves on once each node answered or
// the wait is over. Pure: the pulls themselves are asked for by services/prepull.ts, which
// writes each node's answer into the rollout record.
import type { Instance, PrepullState, ReservedSlot } from '../../model/types.js';
import { entryImages, type EntrySpec } from '../../model/spec.js';

/** The longest a rollout waits for pre-pulls (or its progress deadline, if shorter): a slow node then pulls when its instance starts. */
export const PREPULL_WAIT_MS = 5 * 60_000;

/** The images `spec` runs that none of `old` runs: what a node must fetch for the new release. */
export function newImages(spec: EntrySpec, old: Instance[]): string[] {
  if (!spec.image || spec.pull === 'never') return [];
  const running = new Set(old.flatMap((i) => entryImages(i.spec)));
  return entryImages(spec).filter((image) => !running.has(image));
}

/**
 * A new pre-pull for the entry, or undefined when its release brings no new image. Only ready
 * nodes are asked: one that is down would only hold the rollout until the wait is over.
 */
export function startPrepull(spec: EntrySpec, old: Instance[], reserved: ReservedSlot[], now: number, ready: (node: string) => boolean): PrepullState | undefined {
  const images = newImages(spec, old);
  if (images.length === 0) return undefined;
  const nodes = [...new Set([...old.filter((i) => i.desired === 'running' && i.node).map((i) => i.node), ...reserved.map((slot) => slot.node)])].filter(ready).sort();
  if (nodes.length === 0) return undefined;
  return { images, nodes: Object.fromEntries(nodes.map((node) => [node, { state: 'pending' as const }])), startedAt: now, until: now + Math.min(PREPULL_WAIT_MS, spec.update.progressDeadline) };
}

/**
 * Whether the rollout still waits for this pre-pull: some node that is still ready has not
 * answered, and the wait is not over (a node that went down meanwhile is not waited for).
 */
export function prepullWaiting(state: PrepullState | undefined, now: number, ready: (node: string) => boolean): boolean {
  if (!state || now >= state.until) return false;
  return Object.entries(state.nodes).some(([name, node]) => node.state === 'pending' && ready(name));
}

/** "pre-pulled 3/5 nodes" with the failures named: the step's note and progress mark. */
export function prepullSummary(state: PrepullState): { mark: string; failed: string[] } {
  const nodes = Object.entries(state.nodes);
  const answered = nodes.filter(([, n]) => n.state !== 'pending').length;
  return { mark: `pre-pulled ${answered}/${nodes.length}`, failed: nodes.filter(([, n]) => n.state === 'failed').map(([name, n]) => `${name}: ${n.reason ?? 'failed'}`) };
}
