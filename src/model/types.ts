// The shared language between server, agent and CLI: nodes, instances, their status, events.
import type { EntrySpec } from './spec.js';

export type RuntimeName = 'docker' | 'process';

export interface NodeInfo {
  name: string;
  /** Address other hosts and health checks reach this node's published ports on. */
  address: string;
  labels: Record<string, string>;
  cores: number;
  memoryBytes: number;
  runtimes: RuntimeName[];
  /** Why a runtime is missing or limited on this node, e.g. "docker: connect ENOENT /var/run/docker.sock". */
  runtimeNotes: string[];
  portRange: [number, number];
  agentVersion: string;
  /** Node pool (default 'default'); a pool may be owned by a team. */
  pool: string;
  /** Kept for the host's own daemons: the lowest-numbered `cores` cores and `memoryBytes`. */
  reserved: { cores: number; memoryBytes: number };
  /** Pieces each core is divided into: 100 → 0.01 CPU, 1000 → 0.001 CPU. */
  shareBase: number;
  /**
   * Set after the host rebooted, until the agent has restarted the instances it ran before:
   * the node takes no new instances meanwhile (its old ones come first).
   */
  recovering?: boolean;
  /**
   * Host ports in the node's range that programs Gantry does not run were found holding (when
   * an instance given one was about to start): nothing is placed on them for a while.
   */
  portsTaken?: HostPort[];
  /** The container images the node's engine holds: how many, and their size (rounded to MiB). */
  images?: NodeImages;
}

/** Images on a node, as its agent last counted them (at most once a minute). */
export interface NodeImages {
  count: number;
  bytes: number;
}

/** A host port without its name: e.g. one a program outside Gantry holds. */
export interface HostPort {
  host: number;
  protocol: 'tcp' | 'udp';
}

/** ready: takes new instances. cordoned / draining: takes none (draining also moves its instances away). */
export type NodeState = 'ready' | 'down' | 'cordoned' | 'draining';

export interface NodeRecord extends NodeInfo {
  state: NodeState;
  /** Set by an operator: the node takes instances of this app only (promotion days). */
  dedicatedTo?: string;
  registeredAt: number;
  lastHeartbeat: number;
}

/** A port as the agent sees it: the name, the container port (docker) and the host port it is reached on. */
export interface AssignedPort {
  name: string;
  container?: number;
  host: number;
  protocol: 'tcp' | 'udp';
}

export type DesiredState = 'running' | 'stopped' | 'removed';

/** What the server wants to run: written by the server, read by the agent of `node`. */
export interface Instance {
  id: string;
  app: string;
  env: string;
  entry: string;
  release: number;
  node: string;
  runtime: RuntimeName;
  spec: EntrySpec;
  ports: AssignedPort[];
  /** The cores and shares the scheduler gave it (absent on instances placed before the scheduler). */
  cpu?: import('./cpu.js').CpuPlan;
  /** False while it must not get traffic (a blue-green set before its switch): not registered. */
  serving?: boolean;
  /** Raised to have the agent rebuild it in place (new container, same node, ports and volumes). */
  rebuild?: number;
  /** Raised to have the agent restart it (the same container). */
  restart?: number;
  /**
   * Stopped on its own by a person (gantry instance stop): it keeps its replica's place and stays
   * stopped until started again; a stop and start of the whole app clears it.
   */
  stoppedByUser?: boolean;
  /** The app's log sinks when it was placed (a later change of `logs:` applies to instances placed after it). */
  logShipping?: import('./log-shipping.js').InstanceLogShipping;
  desired: DesiredState;
  createdAt: number;
}

export type InstanceState =
  | 'pending' // assigned, not started yet
  | 'pulling' // its image is being pulled onto the node
  | 'starting' // started, health not yet passed
  | 'running' // started and healthy (or no health check)
  | 'unhealthy'
  | 'backoff' // exited, waiting to be restarted
  | 'stopping'
  | 'exited' // exited and not to be restarted
  | 'failed' // could not be started at all
  | 'lost' // its node stopped heartbeating
  | 'removed';

/** What the agent observed: written through the server on the agent's report. */
export interface InstanceStatus {
  id: string;
  state: InstanceState;
  healthy: boolean | null;
  restarts: number;
  exitCode: number | null;
  runtimeId: string | null;
  startedAt: number | null;
  /** Since when it has been healthy without interruption (null while not). */
  healthySince?: number | null;
  /** The release the agent last started it with: a status from before a rebuild in place says nothing of the new one. */
  release?: number;
  /** Its address on the node's managed Docker network, kept across restarts and rebuilds in place. */
  ip?: string | null;
  /** Its host ports that another program held when it was to start (the server moves it to others). */
  portsTaken?: HostPort[];
  /** While its image is pulled: which, and how far (bytes of the layers the engine reported so far). */
  pull?: PullProgress;
  message: string | null;
  updatedAt: number;
}

export type EventLevel = 'info' | 'warning' | 'error';

export interface GantryEvent {
  /** Monotonic per store; assigned when stored. */
  seq?: number;
  time: number;
  level: EventLevel;
  /** Dotted kind, e.g. "instance.restarted", "app.applied", "node.down". */
  type: string;
  app?: string;
  entry?: string;
  instance?: string;
  node?: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface AppRecord {
  name: string;
  env: string;
  spec: import('./spec.js').AppSpec;
  release: number;
  stopped: boolean;
  createdAt: number;
  updatedAt: number;
  updatedBy: string;
}

/** An immutable, numbered version of an app's spec, kept under /releases/{app}/{n}. */
export interface ReleaseRecord {
  app: string;
  release: number;
  spec: import('./spec.js').AppSpec;
  createdAt: number;
  createdBy: string;
  /** Why it exists when not a plain apply, e.g. "rollback to release 3". */
  note?: string;
  /** What changed against the release before it. */
  changes: import('./diff.js').Change[];
  /** Who approved it, when its team's env needs an owner's approval (createdBy asked for it). */
  approvedBy?: string;
}

/**
 * An instance the server removed while its node could not confirm it (the node was down), kept
 * under /removals/{node}/{id} until the node says it is gone: nodes remove only what they are
 * told to, never what merely vanished from their assignments.
 */
export interface RemovalRecord {
  id: string;
  node: string;
  app: string;
  entry: string;
  /** Why, for the node's log and the events. */
  reason: string;
  at: number;
}

/** A node pool; one with a team takes only that team's apps. */
/** A value sealed with the server's secret key (AES-256-GCM): what the store holds of a secret. */
export interface Sealed {
  /** Which key sealed it: the start of the key's SHA-256, never the key. */
  key: string;
  iv: string;
  tag: string;
  data: string;
}

export interface PullProgress {
  image: string;
  doneBytes: number;
  totalBytes: number;
}

/**
 * Credentials for pulling from one registry, under /image-registries/{host}. The password is
 * sealed (server/secret-box.ts) and leaves the server only to agents that pull from the host.
 * `team`: null for the whole cluster; a team's own credentials come with teams.
 */
export interface RegistryLoginRecord {
  host: string;
  username: string;
  password: Sealed;
  team: string | null;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  updatedBy: string;
}

/**
 * A team's secret (`/secrets/{team}/{name}`): its value sealed with the secret key (bound to
 * its store key), a version counted up by every change, who changed it last. The value is
 * opened only for its team's owners (and admins), and for the nodes whose instances use it.
 */
export interface SecretRecord {
  team: string;
  name: string;
  value: Sealed;
  version: number;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  updatedBy: string;
}

/**
 * A team's config (`/configs/{team}/{name}`, its current version): a file's text or key-values.
 * Every version is also kept under `/config-history/{team}/{name}/{version}` (the newest 50).
 */
export interface ConfigRecord {
  team: string;
  name: string;
  version: number;
  /** A file's content, or key-values (env variables). */
  text?: string;
  values?: Record<string, string>;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  updatedBy: string;
  /** Why this version, e.g. "rollback to version 3". */
  note?: string;
  /** The only app, and the only env, of the team that may use it (absent: any). */
  app?: string;
  env?: string;
}

export interface PoolRecord {
  name: string;
  team?: string;
}

export type RolloutPhase = 'progressing' | 'paused' | 'awaiting-promotion' | 'succeeded' | 'rolled-back' | 'aborted';

/** An app moving from one release to another, kept under /rollouts/{app}; survives server restarts. */
export interface RolloutRecord {
  app: string;
  from: number;
  to: number;
  phase: RolloutPhase;
  by: string;
  startedAt: number;
  updatedAt: number;
  /** When the counts last moved forward; the progress deadline runs from here. */
  lastProgressAt: number;
  /** The counts at lastProgressAt, to tell progress from standing still. */
  progressMark: string;
  /** Per entrypoint: moments a strategy needs to remember, and the capacity held for it. */
  entries: Record<string, { switchedAt?: number; promotedAt?: number; canaryHealthyAt?: number; reserved?: ReservedSlot[]; prepull?: PrepullState }>;
  /** Why it rolled back or stopped. */
  reason?: string;
  /** What happened, oldest first (the last 50 steps). */
  steps: { time: number; message: string }[];
}

/**
 * An entry's pre-pull: before its rollout moves, the nodes that will run the new release pull its
 * images, all at once, so the waves start containers, not downloads. Nodes answer through the
 * server (services/prepull.ts); the rollout waits until each answered or `until` passed.
 */
export interface PrepullState {
  images: string[];
  nodes: Record<string, { state: 'pending' | 'done' | 'failed'; reason?: string; ms?: number }>;
  startedAt: number;
  until: number;
  /** When the rollout went on (every node answered, or the wait was over). */
  concludedAt?: number;
}

/**
 * Room a rollout takes when it starts (the resource lock): where the extra instances its
 * strategy runs beside the old ones will go, so a busy day cannot strand it half-way. Counted
 * as taken for everyone else until those instances are created in it.
 */
export interface ReservedSlot {
  node: string;
  cpu: import('./cpu.js').CpuPlan;
  memoryBytes: number;
  ports: AssignedPort[];
}

/**
 * One image build (`gantry build`, `gantry apply --build`), as the CLI that ran it reported it,
 * under /builds/{id}: the builds run on the users' own Docker Engines, so this record is where
 * the cluster learns who built what, from which commit, how long it took and what it made.
 * Only the newest 1000 are kept.
 */
export interface BuildRecord {
  /** Time-sortable: the time in ms, zero-padded, and a random suffix. */
  id: string;
  /** The reference the image was tagged as, e.g. "registry.example.com/shop/web:v3". */
  image: string;
  /** The manifest digest the registry took on push ("sha256:…"); absent when not pushed. */
  digest?: string;
  /** The context directory's name, or the git URL (without credentials) it was cloned from. */
  source: string;
  /** The git ref asked for (--ref). */
  ref?: string;
  /** The git commit built, when the context is in a git work tree or was cloned. */
  commit?: string;
  /** The work tree had changes not committed under the context. */
  dirty?: boolean;
  dockerfile?: string;
  /** The app it was built for (`gantry apply --build`). */
  app?: string;
  durationMs: number;
  result: 'succeeded' | 'failed';
  error?: string;
  /** The last lines of the build's log (at most 200, each at most 1000 characters). */
  logTail: string[];
  /** The name of the token the build was reported with. */
  by: string;
  at: number;
}

/**
 * A person who signs in (`gantry login`), under /users/{name}. Only a scrypt hash of the
 * password is kept. `role`: admin (everything), operator (nodes and pools; reads what runs) or
 * member (what their teams allow; until teams, nothing but their own session). See policy.ts.
 */
export interface UserRecord {
  name: string;
  /** Local users only: directory users' passwords live in the directory. */
  passwordHash?: string;
  role: 'admin' | 'operator' | 'member';
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  /** Where the user signs in: absent or 'local' (the password hash above), 'directory' (the company directory). */
  source?: 'local' | 'directory';
  /** A directory user's entry. */
  dn?: string;
  /** The team memberships the directory gave at a directory user's last sign-in (never the hand-given ones). */
  directoryTeams?: Record<string, TeamRole>;
}

export type TeamRole = 'owner' | 'developer' | 'viewer';

/**
 * A team, under /teams/{name}: its members and their roles. Apps belong to the team their spec
 * names (`team:`). owner: members and everything below; developer: apply, scale, roll out and
 * back, restart, logs of the team's apps; viewer: read them.
 */
export interface TeamRecord {
  name: string;
  members: Record<string, TeamRole>;
  /** Envs whose new releases wait for an owner's approval (`gantry approve`). */
  requireApproval?: string[];
  createdAt: number;
  createdBy: string;
  updatedAt: number;
}

/**
 * One entry of the audit log, under /audit/{time}-{n}: a request that changed something (or
 * tried to), a sign-in or a failed one. Written by the server after it answered; never changed
 * through the API. Holds no request body (no secret values), only what was asked of what.
 */
export interface AuditRecord {
  time: number;
  /** The token's name or the signed-in user; "anonymous" for a sign-in attempt. */
  who: string;
  role?: string;
  /** The user of a session. */
  user?: string;
  /** The team of the app the request was about, when it was about one. */
  team?: string;
  method: string;
  /** The route as the router knows it, e.g. /v1/apps/:app/rollback. */
  route: string;
  /** Its parameters: which app, instance, node, user, … */
  target: Record<string, string>;
  /** What the change was, in a line: which release and which fields changed, which version of a secret; never a value. */
  summary?: string;
  status: number;
  outcome: 'ok' | 'refused' | 'failed';
  /** The client's address. */
  from: string;
  ms: number;
}

/** A team's limits in one scope (an env, or all envs together); an absent resource is unlimited. */
export interface QuotaLimits {
  /** CPUs, as entries ask for them (replicas × resources.cpu). */
  cpu?: number;
  /** Bytes (replicas × resources.memory). */
  memory?: number;
  /** Instances (replicas). */
  instances?: number;
}

/**
 * A team's quota, under /quotas/{team}: limits per env (an app's `env:`) and optionally for all
 * its envs together. Set and cleared by admins; an absent scope is unlimited.
 */
export interface QuotaRecord {
  team: string;
  envs: Record<string, QuotaLimits>;
  total?: QuotaLimits;
  updatedAt: number;
  updatedBy: string;
}

/** What a team's apps ask for in one scope: CPUs, bytes, instances. */
export interface QuotaUse {
  cpu: number;
  memory: number;
  instances: number;
}

/** A team's quota (none: unlimited) with its use now, per env and over all envs: what GET /v1/teams/{team}/quota answers. */
export interface QuotaView {
  team: string;
  quota?: QuotaRecord;
  use: { envs: Record<string, QuotaUse>; total: QuotaUse };
}

/**
 * A change waiting for an owner's approval, under /approvals/{app}: the proposed spec (images
 * already pinned), what it changes against the release it was proposed on, who asked and when.
 * One per app: a newer proposal replaces it.
 */
export interface ApprovalRequest {
  app: string;
  env: string;
  /** The teams whose rules asked for approval (the app's, and the proposal's when it moves it). */
  teams: string[];
  kind: 'create' | 'update' | 'rollback';
  spec: import('./spec.js').AppSpec;
  /** The release it was proposed on (0: the app did not exist) and a digest of its spec then. */
  base: { release: number; digest: string };
  changes: import('./diff.js').Change[];
  requestedBy: string;
  requestedAt: number;
  /** Why the change exists when not a plain apply, e.g. "rollback to release 3". */
  note?: string;
}

/**
 * A one-time invitation to become a user, under /invitations/{id}: only the SHA-256 hash of its
 * code is kept; `id` is a prefix of that hash (it names the invitation, and opens nothing).
 */
export interface InvitationRecord {
  id: string;
  codeHash: string;
  platformRole: 'admin' | 'operator' | 'member';
  team?: string;
  teamRole?: TeamRole;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
}
