// Host ports a program outside Gantry holds: the agent found one when it was to start an
// instance (status.portsTaken); the instance gets other ports on the same node, and its agent
// starts it afresh. A port fixed in the spec cannot move: the instance waits for it.
import type { Instance } from '../../model/types.js';
import { instancePlacement, type Snapshot } from '../../scheduler/index.js';
import type { PlanBuilder } from './plan.js';
import type { ReconcileView } from './view.js';

/** The instance with its taken ports moved (and the move in the plan), or undefined when it keeps its ports. */
export function moveIfTaken(view: ReconcileView, instance: Instance, snapshot: Snapshot, plan: PlanBuilder): Instance | undefined {
  const status = view.statuses.get(instance.id);
  if (!status?.portsTaken?.length || status.state === 'running' || plan.current(instance).desired !== 'running') return undefined;
  const taken = status.portsTaken.filter((t) => instance.ports.some((p) => p.host === t.host && p.protocol === t.protocol));
  if (taken.length === 0) return undefined; // already moved
  const about = { app: instance.app, entry: instance.entry, instance: instance.id, node: instance.node };
  const names = taken.map((t) => `${t.host}/${t.protocol}`).join(', ');
  const fixed = instance.ports.filter((p) => taken.some((t) => t.host === p.host && t.protocol === p.protocol) && instance.spec.ports.find((s) => s.name === p.name)?.host !== undefined);
  let ports: Instance['ports'];
  try {
    if (fixed.length > 0) throw new Error(`host port ${fixed.map((p) => `${p.host}/${p.protocol}`).join(', ')} is fixed in the spec`);
    ports = snapshot.movePorts(instancePlacement(instance, instance.cpu, view.nodes.get(instance.node)?.shareBase ?? 100), taken);
  } catch (err) {
    plan.note({ level: 'error', type: 'instance.port_taken', ...about, message: `${instance.id} cannot start: ${names} held by another program on ${instance.node} and ${(err as Error).message}; waiting for the port` });
    return undefined;
  }
  const moved = plan.update(instance, { ports });
  plan.guard(instance.node);
  const now = ports.filter((p) => !instance.ports.some((q) => q.host === p.host && q.protocol === p.protocol)).map((p) => `${p.host}/${p.protocol}`).join(', ');
  plan.note({ level: 'warning', type: 'instance.ports_moved', ...about, message: `${instance.id}: host port ${names} is held by another program on ${instance.node}; moved to ${now}` });
  return moved;
}
