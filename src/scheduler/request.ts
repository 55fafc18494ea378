// Builds a PlacementRequest from an app spec entry, so the server passes specs as they are.
import type { AppSpec } from '../model/spec.js';
import type { PlacementRequest, Strategy } from './types.js';

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
    selector: entry.placement.labels,
    strategy: options.strategy ?? entry.placement.strategy,
    count: options.count ?? entry.replicas,
  };
  if (app.team !== undefined) request.team = app.team;
  if (options.pool !== undefined) request.pool = options.pool;
  if (options.dedicated) request.dedicated = true;
  return request;
}
