// What the thin HTTP routes call into; built once by the server's main.
import type { FastifyRequest } from 'fastify';
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
import type { AdoptionService } from '../services/adoption.js';
import type { StreamCounter } from './streams.js';
import type { BuildService } from '../services/builds.js';
import type { RegistryLoginService } from '../services/registry-logins.js';
import type { PrepullService } from '../services/prepull.js';
import type { UserService } from '../services/users.js';
import type { TeamService } from '../services/teams.js';
import type { AuditLog } from '../services/audit.js';
import { teamScope } from '../services/teams.js';
import { mayApply, mayList, type Kind } from '../policy.js';
import { ForbiddenError } from '../errors.js';
import type { QuotaService } from '../services/quotas.js';
import type { ApprovalService } from '../services/approvals.js';
import type { InvitationService } from '../services/invitations.js';
import type { SecretService } from '../services/secrets.js';
import type { ConfigService } from '../services/configs.js';
import type { ServerMetrics } from '../metrics.js';
import type { InspectionService } from '../services/inspections.js';
import type { UsageService } from '../services/usage.js';
import type { AlertService } from '../alerts/service.js';
import type { TerminalSessions } from '../services/terminals.js';

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
  adoption: AdoptionService;
  registryLogins: RegistryLoginService;
  prepulls: PrepullService;
  users: UserService;
  teams: TeamService;
  audit: AuditLog;
  builds: BuildService;
  quotas: QuotaService;
  approvals: ApprovalService;
  invitations: InvitationService;
  /** Team secrets (values sealed; opened for owners, admins and the nodes that use them). */
  secrets: SecretService;
  /** The id of the key values are sealed with now (never the key). */
  secretKeyId: string;
  /** Team configs: versioned documents apps mount as files or env. */
  configs: ConfigService;
  /** Long-lived responses open now, capped per token and overall. */
  streams: StreamCounter;
  /** The server's own metrics (GET /metrics). */
  metrics: ServerMetrics;
  /** Node inspection: the policy and each node's latest results. */
  inspections: InspectionService;
  /** What instances use, as their agents sample it (GET /v1/usage, /v1/metrics/instances). */
  usage: UsageService;
  /** Alerts and silences (alerts/service.ts); absent on servers started without the alert loop. */
  alerts?: AlertService;
  /** Open terminals into instances (api/terminals.ts): caps, audit, ended by logout and instance removal. */
  terminals: TerminalSessions;
}

/**
 * The reconcile pass a route runs once its change has landed, so that the answer shows the
 * change's first effects (instances placed, or why not). The change stands whether or not the
 * pass works: a failed pass is the periodic loop's to retry and report, never this request's
 * error (a 503 would make the client believe its change was refused).
 */
export async function reconcileAfter(ctx: ApiContext, request: FastifyRequest): Promise<void> {
  await ctx.replicas.reconcile().catch((err: Error) => request.log.warn(`the reconcile pass after this change failed; the periodic pass tries again: ${err.message}`));
}

/**
 * For a spec the request brings (an apply, a rollback to an old release): throws when the caller
 * may not write the app in the team the spec names and in the team it belongs to now.
 */
export function applyAuthorizer(ctx: ApiContext, request: FastifyRequest): (app: string, team: string, current: string | undefined) => void {
  return (app, team, current) => {
    const decision = mayApply(request.caller!, app, team, current, teamScope(ctx.state));
    if (!decision.allowed) throw new ForbiddenError(`${decision.why} (${request.method} ${request.routeOptions.url})`);
  };
}

/** Which items of a list of `kind` the caller sees, by the resource naming each (policy.ts mayList). */
export function visibleTo(ctx: ApiContext, request: FastifyRequest, kind: Kind): (resource: string | undefined) => boolean {
  return mayList(request.caller!, kind, teamScope(ctx.state));
}

/** Who made the request, for "by <user>" in events: the name of the token it came with. */
export function requester(request: FastifyRequest): string {
  return request.caller?.name ?? 'unknown';
}
