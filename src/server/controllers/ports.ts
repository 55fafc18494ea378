// Host ports a program outside Gantry holds: the agent found one when it was to start an
// instance (status.portsTaken); the instance gets other ports on the same node.
import type { Instance } from '../../model/types.js';
import { instancePlacement, type Snapshot } from '../../scheduler/index.js';
import type { ClusterState } from '../state.js';
import type { PassWrites } from './pass.js';
import { movedPorts } from './placement.js';

export class PortMover {
  /** The last "cannot move" message per instance, so it is said once. */
  private readonly lastPortMessage = new Map<string, string>();

  constructor(private readonly state: ClusterState) {}

  /**
   * An instance that could not start because a program outside Gantry holds one of its host
   * ports gets other ports on the same node (the agent then starts it afresh). A port fixed in
   * the spec cannot move: that is said once, and the instance waits for the port.
   */
  moveIfTaken(instance: Instance, snapshot: Snapshot, pass: PassWrites): Instance | undefined {
    const status = this.state.statuses.get(instance.id);
    if (!status?.portsTaken?.length || status.state === 'running' || (pass.desired.get(instance.id) ?? instance.desired) !== 'running') {
      this.lastPortMessage.delete(instance.id);
      return undefined;
    }
    const taken = status.portsTaken.filter((t) => instance.ports.some((p) => p.host === t.host && p.protocol === t.protocol));
    if (taken.length === 0) return undefined; // already moved
    const about = { app: instance.app, entry: instance.entry, instance: instance.id, node: instance.node };
    const names = taken.map((t) => `${t.host}/${t.protocol}`).join(', ');
    const fixed = instance.ports.filter((p) => taken.some((t) => t.host === p.host && t.protocol === p.protocol) && instance.spec.ports.find((s) => s.name === p.name)?.host !== undefined);
    let ports: Instance['ports'];
    try {
      if (fixed.length > 0) throw new Error(`host port ${fixed.map((p) => `${p.host}/${p.protocol}`).join(', ')} is fixed in the spec`);
      ports = snapshot.movePorts(instancePlacement(instance, instance.cpu, this.state.nodes.get(instance.node)?.shareBase ?? 100), taken);
    } catch (err) {
      const message = `${instance.id} cannot start: ${names} held by another program on ${instance.node} and ${(err as Error).message}; waiting for the port`;
      if (this.lastPortMessage.get(instance.id) !== message) pass.notes.push({ level: 'error', type: 'instance.port_taken', ...about, message });
      this.lastPortMessage.set(instance.id, message);
      return undefined;
    }
    const moved = { ...instance, ports, desired: pass.desired.get(instance.id) ?? instance.desired };
    const write = movedPorts(this.state, moved);
    pass.ops.push(...write.ops);
    pass.compares.push(...write.compares);
    const now = ports.filter((p) => !instance.ports.some((q) => q.host === p.host && q.protocol === p.protocol)).map((p) => `${p.host}/${p.protocol}`).join(', ');
    pass.notes.push({ level: 'warning', type: 'instance.ports_moved', ...about, message: `${instance.id}: host port ${names} is held by another program on ${instance.node}; moved to ${now}` });
    return moved;
  }
}
