// Messages on the long-lived WebSocket between an agent and a server (GET /v1/agent/connect).
// The server pushes the node's whole assignment set each time it changes (idempotent, so a
// lost message is repaired by the next); the agent reports node info, statuses and events.
import type { GantryEvent, Instance, InstanceStatus, NodeInfo } from './types.js';
import type { Endpoint } from './registry.js';

export type EndpointRef = Pick<Endpoint, 'app' | 'env' | 'entry' | 'id'>;

export type ServerToAgent =
  /** Sent on hello: how often the agent must heartbeat to keep its registry lease alive. */
  | { type: 'welcome'; heartbeatMs: number }
  | { type: 'assignments'; instances: Instance[] }
  | { type: 'logs'; requestId: string; instanceId: string; tail?: number; follow: boolean }
  | { type: 'logs.cancel'; requestId: string }
  /** The server stored (or failed to store) the registry change with this requestId. */
  | { type: 'ack'; requestId: string; error?: string };

export type AgentToServer =
  /** `endpoints`: every endpoint the agent has registered (healthy instances with ports). */
  | { type: 'hello'; node: NodeInfo; statuses: InstanceStatus[]; endpoints: Endpoint[] }
  | { type: 'heartbeat'; node: NodeInfo; endpoints: Endpoint[] }
  | { type: 'registry'; requestId: string; register: Endpoint[]; withdraw: EndpointRef[] }
  | { type: 'status'; statuses: InstanceStatus[] }
  | { type: 'events'; events: GantryEvent[] }
  | { type: 'log.lines'; requestId: string; lines: string[] }
  | { type: 'log.end'; requestId: string; error?: string };

export const AGENT_PROTOCOL_VERSION = 1;
