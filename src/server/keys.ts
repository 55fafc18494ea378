// Every key the server keeps in the store, what it holds, and how that is written and read: one
// place, so a reader finds the layout here (docs/architecture.md lists it too) and no code
// elsewhere builds a key from a string or parses a value by hand.
//
// Values are the JSON of records the server wrote itself; `decode` trusts that shape (the
// store is not an input from clients). What comes from outside is validated before it gets here.
import type { AppRecord, Instance, InstanceStatus, NodeRecord, PoolRecord, ReleaseRecord, RegistryLoginRecord, RemovalRecord, TeamRecord, UserRecord, AuditRecord, RolloutRecord, GantryEvent } from '../model/types.js';
import type { Endpoint } from '../model/registry.js';
import { REGISTRY_PREFIX, registryKey } from '../model/registry.js';
import type { BuildRecord } from '../model/types.js';
import type { ApprovalRequest, ConfigRecord, InvitationRecord, QuotaRecord, SecretRecord } from '../model/types.js';
import type { InspectionRecord } from '../model/inspection.js';
import type { Alert, Silence } from './alerts/evaluate.js';

/** A family of keys under one prefix, all holding values of one type. */
export interface Collection<T, Parts extends unknown[] = [string]> {
  readonly prefix: string;
  key(...parts: Parts): string;
  encode(value: T): string;
  decode(text: string): T;
}

function collection<T, Parts extends unknown[] = [string]>(prefix: string, path: (...parts: Parts) => string = (...parts) => parts.join('/')): Collection<T, Parts> {
  return {
    prefix,
    key: (...parts: Parts) => `${prefix}${path(...parts)}`,
    encode: (value) => JSON.stringify(value),
    decode: (text) => JSON.parse(text) as T,
  };
}

/** One key holding one value. */
export interface Single<T> {
  readonly key: string;
  encode(value: T): string;
  decode(text: string): T;
}

function single<T>(key: string): Single<T> {
  return { key, encode: (value) => JSON.stringify(value), decode: (text) => JSON.parse(text) as T };
}

/** The guard of allocations on one node: bumped with every placement there (its value is only a time). */
export interface AllocMark {
  at: number;
}

export interface ClusterIdentity {
  id: string;
  createdAt: number;
}

/** What a stored token is: its hash (never the token), role, and for agent tokens the node. */
export interface TokenRecord {
  hash: string;
  role: 'admin' | 'agent' | 'join' | 'operator' | 'member';
  name: string;
  node?: string;
  createdAt: number;
  expiresAt?: number;
  /** A sign-in session of this user (`gantry login`), or their personal token: not listed with API tokens, gone with the user. */
  user?: string;
  /** Absent: a session (with `user`) or an API token. personal: a user's own token; robot: a team's token for CI. */
  purpose?: 'personal' | 'robot';
  /** What a personal or robot token may do at most (policy.ts SCOPE_ITEM). */
  scope?: string[];
  /** A robot token's team and its role there. */
  team?: string;
  teamRole?: 'developer' | 'viewer';
}

export const STORE = {
  /** `AppRecord`: spec, release number, stopped flag. */
  apps: collection<AppRecord>('/apps/'),
  /** `ReleaseRecord` n of an app (immutable), numbers padded so keys sort by release. */
  releases: collection<ReleaseRecord, [string, number] | [string]>('/releases/', (app: string, release?: number) => (release === undefined ? `${app}/` : `${app}/${String(release).padStart(8, '0')}`)),
  /** `Instance` by app and id: what the server wants to run where. */
  instances: collection<Instance, [string, string] | [string]>('/instances/', (app: string, id?: string) => (id === undefined ? `${app}/` : `${app}/${id}`)),
  /** `InstanceStatus` by instance id, as its agent last reported it. */
  statuses: collection<InstanceStatus>('/status/'),
  /** `NodeRecord`: capacity, labels, state, last heartbeat stored. */
  nodes: collection<NodeRecord>('/nodes/'),
  /** The compare-and-swap guard of a node's allocations. */
  alloc: collection<AllocMark>('/alloc/'),
  /** `PoolRecord`: a node pool and its owning team. */
  pools: collection<PoolRecord>('/pools/'),
  /** `RolloutRecord` of an app moving from one release to another. */
  rollouts: collection<RolloutRecord>('/rollouts/'),
  /** An instance removed while its node could not confirm it: the node is told to remove it. */
  removals: collection<RemovalRecord, [string, string] | [string]>('/removals/', (node: string, id?: string) => (id === undefined ? `${node}/` : `${node}/${id}`)),
  /** `GantryEvent`s, keyed by time and a counter so they sort. */
  events: collection<GantryEvent>('/events/'),
  /** `AuditRecord`s, keyed by time and a counter so they sort. */
  audit: collection<AuditRecord>('/audit/'),
  /** Token records by a prefix of their hash. */
  tokens: collection<TokenRecord>('/auth/tokens/'),
  /** `TeamRecord`s: teams and their members' roles. */
  teams: collection<TeamRecord>('/teams/'),
  /** `UserRecord`s: people who sign in, with scrypt hashes of their passwords. */
  users: collection<UserRecord>('/users/'),
  /** `Endpoint`s of the service registry, held by leases (see model/registry.ts). */
  registry: collection<Endpoint, [Pick<Endpoint, 'app' | 'env' | 'entry' | 'id'>]>(REGISTRY_PREFIX, (ref) => registryKey(ref).slice(REGISTRY_PREFIX.length)),
  /** `RegistryLoginRecord`: pull credentials for one image registry host (password sealed). */
  registryLogins: collection<RegistryLoginRecord>('/image-registries/'),
  /** `BuildRecord`s by time-sortable id: who built which image from what, and how it went (the newest 1000). */
  builds: collection<BuildRecord>('/builds/'),
  /** `QuotaRecord`: a team's limits per env and in total. */
  quotas: collection<QuotaRecord>('/quotas/'),
  /** Bumped with every change a team's quota admitted: the compare-and-swap guard of its use (see services/quotas.ts). */
  quotaGuards: collection<AllocMark>('/quota-guards/'),
  /** `ApprovalRequest`: an app's change waiting for an owner's approval (one per app). */
  approvals: collection<ApprovalRequest>('/approvals/'),
  /** `InvitationRecord`s by id: one-time codes (kept as hashes) that make a user. */
  invitations: collection<InvitationRecord>('/invitations/'),
  /** `SecretRecord`s by team and name (values sealed). */
  secrets: collection<SecretRecord, [string, string] | [string]>('/secrets/', (team: string, name?: string) => (name === undefined ? `${team}/` : `${team}/${name}`)),
  /** `ConfigRecord`s by team and name: the current version of each config. */
  configs: collection<ConfigRecord, [string, string] | [string]>('/configs/', (team: string, name?: string) => (name === undefined ? `${team}/` : `${team}/${name}`)),
  /** Every kept version of a config (immutable), numbers padded so keys sort by version. */
  configHistory: collection<ConfigRecord, [string, string, number] | [string, string]>('/config-history/', (team: string, name: string, version?: number) => (version === undefined ? `${team}/${name}/` : `${team}/${name}/${String(version).padStart(8, '0')}`)),
  /** `InspectionRecord`: a node's latest inspection results, per check with since when it has its status. */
  inspections: collection<InspectionRecord>('/inspections/'),
  /** `Alert`s by their key (rule × subject, URI-encoded): pending, firing and lately resolved, so a restarted server does not notify again. */
  alerts: collection<Alert>('/alerts/', (key: string) => encodeURIComponent(key)),
  /** `Silence`s by id, until they end. */
  alertSilences: collection<Silence>('/alert-silences/'),
  /** The cluster's identity, made at the first start. */
  cluster: single<ClusterIdentity>('/cluster/identity'),
} as const;

/** The last segment of a key: an app, node or instance name. */
export function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
