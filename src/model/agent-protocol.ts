// Messages on the long-lived WebSocket between an agent and a server (GET /v1/agent/connect).
// The server pushes the node's whole assignment set each time it changes (idempotent, so a
// lost message is repaired by the next); the agent reports node info, statuses and events.
//
// What an agent sends is checked against the schemas below before the server uses any of it:
// a socket is a client like any other, and one malformed message must cost that socket, never
// the server. Every array and string is bounded; unknown fields are dropped, so an agent one
// version ahead still connects.
import { z } from 'zod';
import type { GantryEvent, Instance, InstanceStatus, NodeInfo } from './types.js';
import type { Endpoint } from './registry.js';
import { hostAddress, instanceId, LABEL_KEY, name, nodeName, port } from './names.js';
import { CheckResultSchema, MAX_CHECK_RESULTS, type CheckResult, type InspectPolicy } from './inspection.js';
import { usageMessageFields, type UsageMessage } from './usage.js';
import { AgentTerminalMessageSchemas, type AgentTerminalMessage, type ServerTerminalMessage } from './terminal.js';

export type EndpointRef = Pick<Endpoint, 'app' | 'env' | 'entry' | 'id'>;

/**
 * Pull credentials by registry host, for the registries the instances in the same message pull
 * from: the agent keeps them in memory only, for its pulls.
 */
export type RegistryAuthMap = Record<string, { username: string; password: string }>;

/**
 * Secret values by `team/name`, for the instances in the same message that use them (or, in an
 * otherwise empty change, a new value of one they use): sent only to the node that runs them.
 */
export type SecretValueMap = Record<string, { version: number; value: string }>;

/** Team configs by `team/name` (a file's text or key-values), sent like secret values. */
export type ConfigValueMap = Record<string, { version: number; text?: string; values?: Record<string, string> }>;

export type ServerToAgent =
  /**
   * Sent on hello: how often the agent must heartbeat to keep its registry lease alive; and,
   * when it connected with a join token, the agent token it must use from now on.
   */
  | { type: 'welcome'; heartbeatMs: number; token?: string; cluster: string }
  /**
   * `instances`: what the node runs. `remove`: instances of this node the server removed without
   * the node's confirmation (it was down): the only way an agent is told to remove an instance
   * that is not in `instances` — one missing from the list is never removed for that alone.
   */
  | { type: 'assignments'; instances: Instance[]; remove?: string[]; registryAuth?: RegistryAuthMap; secrets?: SecretValueMap; configs?: ConfigValueMap }
  /**
   * What changed since the last assignments on this connection (the full set is sent on hello):
   * `instances` are assigned as given (new, or changed), `gone` are no longer assigned (the same
   * as missing from a full set: never a reason to remove one), `remove` as in `assignments`.
   */
  | { type: 'assignments.changed'; instances: Instance[]; gone: string[]; remove?: string[]; registryAuth?: RegistryAuthMap; secrets?: SecretValueMap; configs?: ConfigValueMap }
  /** An operator adopted or forgot what this node ran for another cluster: remember this one. */
  | { type: 'cluster'; id: string }
  | { type: 'logs'; requestId: string; instanceId: string; tail?: number; follow: boolean } & LogFilter
  | { type: 'logs.cancel'; requestId: string }
  /**
   * Pull these images now (ahead of a rollout, or `gantry image prepull`); answered with one
   * `prepulled` carrying the same requestId. Only to agents that accept it.
   */
  | { type: 'prepull'; requestId: string; images: string[]; registryAuth?: RegistryAuthMap }
  /** Which digest does `image` name now? Asked when the server cannot reach its registry; answered with `image.resolved`. */
  | { type: 'image.resolve'; requestId: string; image: string; registryAuth?: RegistryAuthMap }
  /** The server stored (or failed to store) the registry change with this requestId. */
  | { type: 'ack'; requestId: string; error?: string }
  /** The checks to run and their thresholds (on hello, to agents that accept `inspect`). */
  | { type: 'inspect.policy'; policy: InspectPolicy }
  /** Run the checks now; answered with `inspected` carrying the same requestId. */
  | { type: 'inspect'; requestId: string }
  /** The answer to `clock.ask`: the server's time when it answered (the agent corrects for the round trip). */
  | { type: 'clock'; requestId: string; serverTime: number }
  /** A terminal session in one of the node's instances (model/terminal.ts); only to agents that accept `terminal`. */
  | ServerTerminalMessage;

/**
 * Server messages an agent may say it understands in its hello; a server sends them only to
 * agents that said so (an agent older than the server gets what it knows: upgrades go server first).
 */
export const AGENT_ACCEPTS = ['assignments.changed', 'prepull', 'image.resolve', 'inspect', 'terminal'] as const;
export type AgentAccepts = (typeof AGENT_ACCEPTS)[number];

/** Most instances one node reports on; far above what fits on a host. */
export const MAX_NODE_INSTANCES = 10_000;
/** Most images one prepull message names (and its answer reports on). */
export const MAX_PREPULL_IMAGES = 16;
/** Longest log line relayed; the agent cuts longer ones. */
export const MAX_LOG_LINE = 16 * 1024;

/**
 * What a log request may add (an app's merged logs): `since` (ms since the epoch) drops older
 * lines, `grep` keeps the lines matching that regular expression (checked by the server, see
 * log-grep.ts), `timestamps` asks for `times` with each batch of lines.
 */
export interface LogFilter {
  since?: number;
  grep?: string;
  timestamps?: boolean;
}

const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const count = time;
const text = (max: number) => z.string().max(max);
const requestId = z.string().min(1).max(64);
const hostPort = z.object({ host: port(), protocol: z.enum(['tcp', 'udp']) });

export const NodeInfoSchema = z.object({
  name: nodeName(),
  address: hostAddress(),
  labels: z.record(z.string().regex(LABEL_KEY), text(256)).refine((l) => Object.keys(l).length <= 64, 'at most 64 labels'),
  cores: z.number().int().min(1).max(4096),
  memoryBytes: count,
  runtimes: z.array(z.enum(['docker', 'process'])).max(2),
  runtimeNotes: z.array(text(1024)).max(8),
  portRange: z.tuple([port(), port()]),
  agentVersion: text(64),
  pool: name('pool'),
  reserved: z.object({ cores: z.number().int().min(0).max(4096), memoryBytes: count }),
  shareBase: z.union([z.literal(10), z.literal(100), z.literal(1000)]),
  recovering: z.boolean().optional(),
  portsTaken: z.array(hostPort).max(1024).optional(),
  images: z.object({ count: z.number().int().min(0).max(1_000_000), bytes: count }).optional(),
});

export const InstanceStatusSchema = z.object({
  id: instanceId(),
  state: z.enum(['pending', 'pulling', 'starting', 'running', 'unhealthy', 'backoff', 'stopping', 'exited', 'failed', 'lost', 'removed']),
  healthy: z.boolean().nullable(),
  restarts: count,
  exitCode: z.number().int().min(-(2 ** 31)).max(2 ** 32).nullable(),
  runtimeId: text(128).nullable(),
  startedAt: time.nullable(),
  healthySince: time.nullable().optional(),
  release: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  ip: z.ipv4().or(z.ipv6()).nullable().optional(),
  portsTaken: z.array(hostPort).max(64).optional(),
  pull: z.object({ image: text(1024), doneBytes: count, totalBytes: count }).optional(),
  message: text(4096).nullable(),
  updatedAt: time,
});

/** What an agent claims about an endpoint; the server keeps only the instance it names and rebuilds the rest. */
export const AgentEndpointSchema = z.object({
  id: instanceId(),
  app: name('app'),
  env: name('env'),
  entry: name('entrypoint'),
  node: nodeName().optional(),
  address: hostAddress(),
  ports: z.record(name('port name'), port()).refine((p) => Object.keys(p).length <= 32, 'at most 32 ports'),
  release: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  labels: z.record(z.string().max(128), text(256)).refine((l) => Object.keys(l).length <= 64, 'at most 64 labels'),
  registeredAt: time,
  source: z.literal('agent').default('agent'),
});

const EndpointRefSchema = z.object({ app: name('app'), env: name('env'), entry: name('entrypoint'), id: instanceId() });

/** Only facts about instances and the node: an agent cannot write app, token or rollout events. */
export const AgentEventSchema = z.object({
  time,
  level: z.enum(['info', 'warning', 'error']),
  type: z.string().regex(/^(instance|node)\.[a-z_]{1,40}$/, 'agent events are instance.* or node.*'),
  app: name('app').optional(),
  entry: name('entrypoint').optional(),
  instance: instanceId().optional(),
  node: nodeName().optional(),
  message: text(4096),
  data: z
    .record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]))
    .refine((d) => Object.keys(d).length <= 16, 'at most 16 data fields')
    .optional(),
});

/**
 * An instance a node runs that no assignment names (its server's store was emptied or replaced,
 * or the node was away when it was removed): its record as the agent last had it, or, for one
 * the agent only found running, what its labels say (no spec: it can be forgotten, not adopted).
 * The spec is checked in full only when an operator adopts it.
 */
export interface UnassignedInstance {
  id: string;
  app: string;
  env: string;
  entry: string;
  release?: number;
  record?: Instance;
}

const UnassignedSchema = z.object({
  id: instanceId(),
  app: name('app'),
  env: name('env'),
  entry: name('entrypoint'),
  release: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  record: z
    .object({
      id: instanceId(),
      app: name('app'),
      env: name('env'),
      entry: name('entrypoint'),
      release: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
      node: nodeName(),
      runtime: z.enum(['docker', 'process']),
      spec: z.record(z.string().max(64), z.unknown()),
      ports: z.array(z.object({ name: name('port name'), container: port().optional(), host: port(), protocol: z.enum(['tcp', 'udp']) })).max(64),
      cpu: z
        .discriminatedUnion('mode', [
          z.object({ mode: z.literal('bound'), shareBase: z.number().int().min(1).max(1000), shares: count, exclusive: z.array(z.number().int().min(0).max(4095)).max(4096), fragment: z.object({ core: z.number().int().min(0).max(4095), shares: count }).optional() }),
          z.object({ mode: z.literal('shared'), shareBase: z.number().int().min(1).max(1000), shares: count, quotaMicros: count, periodMicros: count }),
        ])
        .optional(),
      createdAt: time,
    })
    .optional(),
});

/** An unassigned instance as the server takes it from a report: shape checked, spec not yet (adoption does). */
export type UnassignedReport = z.output<typeof UnassignedSchema>;

export const AgentToServerSchema = z.discriminatedUnion('type', [
  /** `endpoints`: every endpoint the agent has registered (healthy instances with ports). */
  z.object({
    type: z.literal('hello'),
    node: NodeInfoSchema,
    statuses: z.array(InstanceStatusSchema).max(MAX_NODE_INSTANCES),
    endpoints: z.array(AgentEndpointSchema).max(MAX_NODE_INSTANCES),
    cluster: z.uuid().optional(),
    unassigned: z.array(UnassignedSchema).max(MAX_NODE_INSTANCES).default([]),
    /** Server messages this agent understands beyond the first version's (an older agent sends none). */
    accepts: z.array(z.enum(AGENT_ACCEPTS)).max(16).default([]),
  }),
  z.object({ type: z.literal('heartbeat'), node: NodeInfoSchema, endpoints: z.array(AgentEndpointSchema).max(MAX_NODE_INSTANCES), unassigned: z.array(UnassignedSchema).max(MAX_NODE_INSTANCES).default([]) }),
  z.object({ type: z.literal('removed'), ids: z.array(instanceId()).max(MAX_NODE_INSTANCES) }),
  z.object({ type: z.literal('registry'), requestId, register: z.array(AgentEndpointSchema).max(MAX_NODE_INSTANCES), withdraw: z.array(EndpointRefSchema).max(MAX_NODE_INSTANCES) }),
  z.object({ type: z.literal('status'), statuses: z.array(InstanceStatusSchema).max(MAX_NODE_INSTANCES) }),
  z.object({ type: z.literal('events'), events: z.array(AgentEventSchema).max(2000) }),
  z.object({ type: z.literal('log.lines'), requestId, lines: z.array(text(MAX_LOG_LINE + 16)).max(1000), times: z.array(time).max(1000).optional() }).refine((m) => m.times === undefined || m.times.length === m.lines.length, { message: 'times: one per line', path: ['times'] }),
  z.object({ type: z.literal('log.end'), requestId, error: text(4096).optional() }),
  z.object({
    type: z.literal('prepulled'),
    requestId,
    results: z.array(z.object({ image: text(1024), ms: count, error: text(4096).optional() })).max(MAX_PREPULL_IMAGES),
  }),
  z.object({ type: z.literal('image.resolved'), requestId, digest: z.string().regex(/^sha256:[a-f0-9]{64}$/).optional(), error: text(4096).optional() }),
  /** Node inspection results: `node` must be the connection's own; `requestId` when asked by `inspect`. */
  z.object({ type: z.literal('inspected'), node: nodeName(), requestId: requestId.optional(), results: z.array(CheckResultSchema).max(MAX_CHECK_RESULTS) }),
  z.object({ type: z.literal('clock.ask'), requestId }),
  /** What the node's running instances used over the last sample interval (model/usage.ts). */
  z.object({ type: z.literal('usage'), ...usageMessageFields(MAX_NODE_INSTANCES) }),
  ...AgentTerminalMessageSchemas,
]);

/** What an agent sends (the schemas above say what the server accepts of it). */
export type AgentToServer =
  /** `cluster`: the cluster the agent last took instances from; `unassigned`: what it runs that no assignment names. */
  | { type: 'hello'; node: NodeInfo; statuses: InstanceStatus[]; endpoints: Endpoint[]; cluster?: string; unassigned?: UnassignedInstance[]; accepts?: AgentAccepts[] }
  | { type: 'heartbeat'; node: NodeInfo; endpoints: Endpoint[]; unassigned?: UnassignedInstance[] }
  /** Instances removed on the server's `remove` instruction (or found gone already). */
  | { type: 'removed'; ids: string[] }
  | { type: 'registry'; requestId: string; register: Endpoint[]; withdraw: EndpointRef[] }
  | { type: 'status'; statuses: InstanceStatus[] }
  | { type: 'events'; events: GantryEvent[] }
  /** `times`: when each line was written (ms since the epoch), when the request asked for timestamps. */
  | { type: 'log.lines'; requestId: string; lines: string[]; times?: number[] }
  | { type: 'log.end'; requestId: string; error?: string }
  /** The outcome of a `prepull`, per image: how long it took, or why it failed. */
  | { type: 'prepulled'; requestId: string; results: PrepullResult[] }
  | { type: 'image.resolved'; requestId: string; digest?: string; error?: string }
  | { type: 'inspected'; node: string; requestId?: string; results: CheckResult[] }
  /** What time is it on the server? (the clock offset check) */
  | { type: 'clock.ask'; requestId: string }
  | AgentTerminalMessage
  | UsageMessage;

export interface PrepullResult {
  image: string;
  ms: number;
  error?: string;
}

/** A message that passed the schemas: what the server works with. */
export type ValidAgentMessage = z.output<typeof AgentToServerSchema>;

export const AGENT_PROTOCOL_VERSION = 1;
