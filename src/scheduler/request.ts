// Glue for the server: a PlacementRequest from an app spec entry, a Placement from an Instance.
import { teamOfSpec, type AppSpec } from '../model/spec.js';
import { parseSelector } from '../model/selector.js';
import type { Instance } from '../model/types.js';
import type { CpuPlan, Placement, PlacementRequest, Strategy } from './types.js';
import { sharedPlan, sharesFor } from './cpu.js';

export interface EntryRequestOptions {
  count?: number;
  pool?: string;
  dedicated?: boolean;
  strategy?: Strategy;
}

export function entryRequest(app: AppSpec, entryName: string, options: EntryRequestOptions = {}): PlacementRequest {
  const entry = app.entrypoints[entryName];
  if (!entry) throw new Error(`app ${app.app} has no entrypoint ${entryName}`);
  const request: PlacementRequest = {
    app: app.app,
    env: app.env,
    entry: entryName,
    cpu: entry.resources.cpu,
    cpuBind: entry.resources.cpuBind,
    memoryBytes: entry.resources.memory,
    ports: entry.ports,
    runtime: entry.image ? 'docker' : 'process',
    selector: [
      ...Object.entries(entry.placement.labels).map(([key, value]) => ({ key, op: 'eq' as const, value })),
      ...(entry.placement.selector ? parseSelector(entry.placement.selector) : []),
    ],
    strategy: options.strategy ?? specStrategy(entry.placement),
    count: options.count ?? entry.replicas,
    pool: options.pool ?? entry.placement.pool,
  };
  request.team = teamOfSpec(app);
  if (options.dedicated ?? entry.placement.dedicated) request.dedicated = true;
  return request;
}

function specStrategy(placement: AppSpec['entrypoints'][string]['placement']): Strategy {
  const { strategy, perNode } = placement;
  if (strategy === 'fill' || strategy === 'each') return { kind: strategy, perNode: perNode ?? 1 };
  return { kind: strategy };
}

/**
 * The placement of an existing instance, to load into a snapshot. Pass the CpuPlan stored with
 * the instance; without one (instances placed before this scheduler) the instance counts as
 * unbound with its spec's CPU on a node of the given shareBase.
 */
export function instancePlacement(instance: Instance, cpu?: CpuPlan, shareBase = 100): Placement {
  const placement: Placement = {
    app: instance.app,
    env: instance.env,
    entry: instance.entry,
    node: instance.node,
    cpu: cpu ?? sharedPlan(shareBase, sharesFor(instance.spec.resources.cpu, shareBase)),
    memoryBytes: instance.spec.resources.memory,
    ports: instance.ports,
  };
  return placement;
}
