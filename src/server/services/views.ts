// Read models the API answers with, computed from the cluster cache.
import type { AppSummary, InstanceView, NodeView } from '../../model/api.js';
import type { AppRecord, Instance } from '../../model/types.js';
import { entryRuntime } from '../../model/spec.js';
import type { ClusterState } from '../state.js';

export function instanceView(state: ClusterState, instance: Instance): InstanceView {
  const { spec: _spec, ...rest } = instance;
  return { ...rest, status: state.statuses.get(instance.id) ?? null };
}

export function appSummary(state: ClusterState, app: AppRecord, unplaced?: (app: string, entry: string) => number): AppSummary {
  return {
    name: app.name,
    env: app.env,
    release: app.release,
    stopped: app.stopped,
    updatedAt: app.updatedAt,
    entries: Object.entries(app.spec.entrypoints).map(([name, spec]) => {
      const instances = state.instancesOf(app.name, name).filter((i) => i.desired === 'running');
      const states = instances.map((i) => state.statuses.get(i.id));
      // 'running' is only reported once the health check (if any) has passed.
      const running = states.filter((s) => s?.state === 'running' || s?.state === 'unhealthy').length;
      const healthy = instances.filter((i, n) => states[n]?.state === 'running' && i.release === app.release).length;
      // A daemon-set entry (each) wants what fits on its matching nodes, not a replica count.
      const desired = app.stopped ? 0 : spec.placement.strategy === 'each' ? instances.length + (unplaced?.(app.name, name) ?? 0) : spec.replicas;
      return { name, runtime: entryRuntime(spec), desired, running, healthy };
    }),
  };
}

/** `heardAt`: when this server last heard from the node's agent (heartbeats are not stored). */
export function nodeView(state: ClusterState, name: string, heardAt?: number): NodeView | undefined {
  const node = state.nodes.get(name);
  if (!node) return undefined;
  const instances = state.instancesOnNode(name);
  return {
    ...node,
    lastHeartbeat: Math.max(node.lastHeartbeat, heardAt ?? 0),
    allocated: {
      cpu: Math.round(instances.reduce((sum, i) => sum + i.spec.resources.cpu, 0) * 1000) / 1000,
      memoryBytes: instances.reduce((sum, i) => sum + i.spec.resources.memory, 0),
      instances: instances.length,
    },
  };
}
