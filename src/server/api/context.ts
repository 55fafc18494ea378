// What the thin HTTP routes call into; built once by the server's main.
import type { ClusterState } from '../state.js';
import type { AppService } from '../services/apps.js';
import type { EventLog } from '../services/events.js';
import type { AgentHub } from '../agents.js';
import type { ReplicaController } from '../controllers/replicas.js';
import type { RegistryService } from '../services/registry.js';
import type { ReleaseService } from '../services/releases.js';
import type { NodeService } from '../services/nodes.js';
import type { RolloutService } from '../services/rollouts.js';
import type { EndpointCatalog } from '../../discovery/catalog.js';
import type { Store } from '../../store/store.js';
import type { TokenAuth } from '../auth.js';

export interface ApiContext {
  state: ClusterState;
  apps: AppService;
  events: EventLog;
  agents: AgentHub;
  replicas: ReplicaController;
  registry: RegistryService;
  releases: ReleaseService;
  nodes: NodeService;
  rollouts: RolloutService;
  catalog: EndpointCatalog;
  /** For the watch stream, which follows store keys as they are. */
  store: Store;
  auth: TokenAuth;
}

/** Who made the request, for "by <user>" in events. */
export function requester(request: { user?: string }): string {
  return request.user ?? 'unknown';
}

declare module 'fastify' {
  interface FastifyRequest {
    user?: string;
  }
}
