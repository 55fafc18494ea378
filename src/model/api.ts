// Shapes of the REST API's requests and responses, shared by the server and its clients (CLI).
// Every route is under /v1 and needs `Authorization: Bearer <token>`, but GET /healthz and
// GET /openapi.json.
import type { CheckSummary } from './inspection.js';
import type { AppSpec, SpecProblem } from './spec.js';
import type { AppRecord, ConfigRecord, GantryEvent, Instance, InstanceStatus, NodeRecord, TeamRole } from './types.js';

/** Body of every 4xx/5xx answer. */
export interface ApiError {
  error: string;
  /** For a rejected spec: every bad field with its path. */
  problems?: SpecProblem[];
}

/** POST /v1/apps — body: YAML or JSON text of the spec (content-type text/yaml, application/yaml or application/json). */
export interface ApplyResponse {
  app: AppRecord;
  created: boolean;
  /** False when the spec is the same as the stored one (nothing to do). */
  changed: boolean;
  /** Images left as written because their registry could not be reached from the server. */
  unpinned?: Array<{ path: string; image: string; reason: string }>;
  /** The fields the new release changed (absent: no new release, e.g. only replica counts). */
  changes?: string[];
}

/** 202 from apply or rollback: the change waits for an owner's approval (nothing was applied). */
export interface ApprovalPendingResponse {
  approval: Omit<import('./types.js').ApprovalRequest, 'spec'>;
  message: string;
}

/** An invitation as the API shows it: never its code, nor the code's hash. */
export type InvitationView = Omit<import('./types.js').InvitationRecord, 'codeHash'>;

/** An instance as the API shows it: the assignment plus what the agent last reported. */
/** What POST /v1/instances/:id/<action> asks of one instance. */
export type InstanceAction = 'rebuild' | 'restart' | 'stop' | 'start';

export interface InstanceView extends Omit<Instance, 'spec'> {
  status: InstanceStatus | null;
  /** Why it cannot be placed, when it has no node. */
  unplacedReason?: string;
}

export interface EntrySummary {
  name: string;
  runtime: 'docker' | 'process';
  desired: number;
  running: number;
  healthy: number;
}

export interface AppSummary {
  name: string;
  env: string;
  release: number;
  stopped: boolean;
  updatedAt: number;
  entries: EntrySummary[];
}

/** GET /v1/apps */
export interface AppListResponse {
  apps: AppSummary[];
}

/** GET /v1/apps/:app */
export interface AppDetailResponse {
  app: AppRecord;
  summary: AppSummary;
  instances: InstanceView[];
  /** Instances wanted but not placed, per entry, with the reason. */
  unplaced: { entry: string; count: number; reason: string }[];
}

/** POST /v1/apps/:app/entries/:entry/scale */
export interface ScaleRequest {
  replicas: number;
}

/** GET /v1/instances?app=&node= */
export interface InstanceListResponse {
  instances: InstanceView[];
  /** Instances wanted but not placed, per app and entry, with the reason. */
  unplaced: { app: string; entry: string; count: number; reason: string }[];
  /** More instances follow: ask again with `after` set to this. */
  next?: string;
}

export interface NodeView extends NodeRecord {
  allocated: { cpu: number; memoryBytes: number; instances: number };
  /** What its instances really use: the sum of their newest usage samples (absent before the first). */
  usage?: import('./usage.js').NodeUsage;
}

/** GET /v1/tokens lists these; POST /v1/tokens answers one with `token`, the only time it is shown. */
export interface TokenInfo {
  name: string;
  /**
   * admin: everything. agent: connects the node agent of `node` only. join: connects a new node
   * once, which gets its own agent token. operator, member: signed-in users who are no admins
   * (what policy.ts allows them).
   */
  role: 'admin' | 'agent' | 'join' | 'operator' | 'member';
  /** The node an agent token speaks for. */
  node?: string;
  createdAt: number;
  /** When a join token stops working. */
  expiresAt?: number;
}

/** POST /v1/nodes/adopt: instances taken over as they run, apps made from them, and what could not be. */
export interface AdoptionResult {
  adopted: string[];
  createdApps: string[];
  skipped: { id: string; reason: string }[];
}

/** GET /v1/nodes */
export interface NodeListResponse {
  /** `checks`: the node's latest inspection, summed up (gantry node inspect shows each check). */
  nodes: (NodeView & { checks?: CheckSummary })[];
}

/**
 * GET /v1/events?app=&instance=&since=<seq>&limit=&follow=1
 * Without follow: { events } oldest first. With follow: Server-Sent Events, one `event: gantry`
 * message per event with `id: <seq>` and the event as JSON data (resume with Last-Event-ID or since).
 */
export interface EventListResponse {
  events: GantryEvent[];
}

/**
 * GET /v1/instances/:id/logs?tail=N&follow=1 answers text/plain, one log line per line, streamed
 * while follow is on. With `streams=1` each line starts with "stdout " or "stderr ".
 */
export type LogsQuery = { tail?: number; follow?: boolean };
/** `since`: a duration back from now ("10m") or a time; `grep`: a regular expression. */
export type AppLogsQuery = LogsQuery & { entry?: string; since?: string; grep?: string };

export type { AppSpec, AppRecord, GantryEvent, Instance, InstanceStatus, NodeRecord };

/** GET /v1/registries: stored pull credentials, without their passwords. */
export type RegistryLoginInfo = Omit<import('./types.js').RegistryLoginRecord, 'password'>;

/** GET /v1/users: people who sign in, without their password hashes. */
export type UserInfo = Omit<import('./types.js').UserRecord, 'passwordHash'>;

/** POST /v1/login: a session token for the CLI or a script, and when it stops working. */
export interface LoginResponse {
  user: string;
  role: 'admin' | 'operator' | 'member';
  token: string;
  expiresAt: number;
}

/** A sign-in for the web console (`"session": "cookie"`): the token went into an HttpOnly cookie; `csrf` goes back in X-Gantry-CSRF. */
export interface CookieLoginResponse extends Omit<LoginResponse, 'token'> {
  csrf: string;
}

/** GET /v1/whoami: the caller; a person's teams; the CSRF value of a cookie session (a reloaded console gets it back). */
export interface WhoAmI {
  name: string;
  role: string;
  user?: string;
  teams?: { team: string; role: TeamRole }[];
  csrf?: string;
}

/** A personal or robot token as listed: its own name (not its owner's prefix), scope, expiry; never the token. */
export interface ScopedTokenInfo {
  name: string;
  /** `<kind>:<verb>` items (either may be `*`): the most the token may do. */
  scope: string[];
  createdAt: number;
  expiresAt?: number;
  /** Robot tokens: their role in the team. */
  teamRole?: 'developer' | 'viewer';
}

/** A team secret as its team's members see it (GET /v1/teams/{team}/secrets): never the value. */
export interface SecretInfo {
  team: string;
  name: string;
  version: number;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  updatedBy: string;
  /** Apps whose current spec uses it. */
  usedBy: string[];
}

/** A team config as listed (GET /v1/teams/{team}/configs): its metadata, not its content. */
export interface ConfigInfo extends Omit<ConfigRecord, 'text' | 'values'> {
  kind: 'file' | 'env';
  usedBy: string[];
}

/** A rollout's progress per entrypoint (GET /v1/apps/:app/rollout). */
export interface EntryProgress {
  entry: string;
  strategy: string;
  replicas: number;
  /** Instances of the new release, and how many of them are healthy. */
  updated: number;
  healthy: number;
  /** Instances of other releases still there. */
  old: number;
}

/** GET /v1/apps/:app/rollout: the current (or last) rollout, null when the app never had one. */
export interface RolloutStatusResponse {
  rollout: import('./types.js').RolloutRecord | null;
  entries: EntryProgress[];
}
