// Messages on the long-lived WebSocket between an agent and a server (GET /v1/agent/connect).
// The server pushes the node's whole assignment set each time it changes (idempotent, so a
// lost message is repaired by the next); the agent reports node info, statuses and events.
import type { GantryEvent, Instance, InstanceStatus, NodeInfo } from './types.js';

export type ServerToAgent =
  | { type: 'assignments'; instances: Instance[] }
  | { type: 'logs'; requestId: string; instanceId: string; tail?: number; follow: boolean }
  | { type: 'logs.cancel'; requestId: string };

export type AgentToServer =
  | { type: 'hello'; node: NodeInfo; statuses: InstanceStatus[] }
  | { type: 'heartbeat'; node: NodeInfo }
  | { type: 'status'; statuses: InstanceStatus[] }
  | { type: 'events'; events: GantryEvent[] }
  | { type: 'log.lines'; requestId: string; lines: string[] }
  | { type: 'log.end'; requestId: string; error?: string };

export const AGENT_PROTOCOL_VERSION = 1;
