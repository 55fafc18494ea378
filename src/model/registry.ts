// Service registry entries: where an instance (or an outside service) can be reached. Kept
// under /registry/{app}/{env}/{entry}/{id}, each held by a lease that its agent (or the
// outside service) keeps alive, so a dead node's endpoints disappear on their own.

export interface Endpoint {
  /** The instance id, or the id given by an outside service that registered itself. */
  id: string;
  app: string;
  env: string;
  entry: string;
  /** Node the instance runs on; absent for outside services. */
  node?: string;
  /** IP address (or host name) to reach it on. */
  address: string;
  /** Port name → port reachable on `address`. */
  ports: Record<string, number>;
  release?: number;
  labels: Record<string, string>;
  registeredAt: number;
  source: 'agent' | 'api';
}

export const REGISTRY_PREFIX = '/registry/';

export function registryKey(endpoint: Pick<Endpoint, 'app' | 'env' | 'entry' | 'id'>): string {
  return `${REGISTRY_PREFIX}${endpoint.app}/${endpoint.env}/${endpoint.entry}/${endpoint.id}`;
}
