// What an agent may say, and about what (the NodeRestriction rules of agents.ts and agents/):
// which node a token may say hello as, which of its reports concern its own node's instances, and
// the endpoints it registers, rebuilt from the server's own records so that an agent can neither
// point another app's traffic anywhere nor smuggle a value into a config file.
import { randomBytes } from 'node:crypto';
import type { ValidAgentMessage } from '../model/agent-protocol.js';
import type { GantryEvent, Instance, InstanceStatus } from '../model/types.js';
import type { Endpoint } from '../model/registry.js';
import { TOKEN_NAME } from '../model/names.js';
import type { ClusterState } from './state.js';
import type { Caller, TokenAuth } from './auth.js';

/** Closes the connection: the agent asked for what its token does not allow. */
export class Refusal extends Error {}

export type AgentEvent = Extract<ValidAgentMessage, { type: 'events' }>['events'][number];

/**
 * Whether `caller` may speak for `node`. An admin may be any node; an agent token only its own;
 * a join token only a node new to the cluster, which is then given (and returned) an agent token
 * of its own. Throws a Refusal otherwise.
 */
export async function admitNode(caller: Caller, node: string, state: ClusterState, auth: TokenAuth): Promise<{ minted?: { name: string; token: string } }> {
  if (caller.role === 'admin') return {};
  if (caller.role === 'agent') {
    if (caller.node !== node) throw new Refusal(`agent token "${caller.name}" speaks for node ${caller.node}, not ${node}`);
    return {};
  }
  // A join token adds a node; it never takes over one that exists (that needs the node's own token).
  if (state.nodes.has(node) || (await auth.nodeHasToken(node))) {
    throw new Refusal(`join token "${caller.name}" cannot join node ${node}: it exists already (give it an agent token: gantry token create NAME --node ${node})`);
  }
  const name = joinedTokenName(node);
  return { minted: { name, token: await auth.create({ role: 'agent', name, node }) } };
}

/** The endpoints an agent registers for instances assigned to its node, built from their records; the ids of the others. */
export function ownEndpoints(state: ClusterState, node: string, address: string, claimed: readonly { id: string; registeredAt: number }[]): { endpoints: Endpoint[]; refused: string[] } {
  const endpoints: Endpoint[] = [];
  const refused: string[] = [];
  for (const { id, registeredAt } of claimed) {
    const instance = state.instances.get(id);
    if (!instance || instance.node !== node) refused.push(id);
    else endpoints.push(endpointOf(instance, address, registeredAt));
  }
  return { endpoints, refused };
}

/** The statuses of instances assigned to `node`; the others (of instances another node runs) refused. */
export function ownStatuses(state: ClusterState, node: string, statuses: InstanceStatus[]): { own: InstanceStatus[]; refused: InstanceStatus[] } {
  const own: InstanceStatus[] = [];
  const refused: InstanceStatus[] = [];
  for (const status of statuses) {
    const instance = state.instances.get(status.id);
    if (instance?.node === node) own.push(status);
    else if (instance) refused.push(status);
  }
  return { own, refused };
}

/**
 * The event as stored: on the agent's node, with the app and entry of the instance it names
 * (never another node's instance: then undefined).
 */
export function ownEvent(state: ClusterState, node: string, event: AgentEvent): Omit<GantryEvent, 'seq'> | undefined {
  const instance = event.instance ? state.instances.get(event.instance) : undefined;
  if (instance && instance.node !== node) return undefined;
  const out: Omit<GantryEvent, 'seq'> = { ...event, node };
  if (instance) Object.assign(out, { app: instance.app, entry: instance.entry });
  // An instance no longer assigned (an orphan it removed) may name its app only if nothing says it is another node's.
  else if (event.app && state.apps.has(event.app) && !state.instancesOnNode(node).some((i) => i.app === event.app)) {
    delete out.app;
    delete out.entry;
  }
  return out;
}

/** Where an instance is reached, from what the server itself assigned it. */
function endpointOf(instance: Instance, address: string, registeredAt: number): Endpoint {
  return {
    id: instance.id,
    app: instance.app,
    env: instance.env,
    entry: instance.entry,
    node: instance.node,
    address,
    ports: Object.fromEntries(instance.ports.map((p) => [p.name, p.host])),
    release: instance.release,
    labels: instance.spec.labels,
    registeredAt,
    source: 'agent',
  };
}

/** The name of the agent token a joining node is given: readable, and unique. */
function joinedTokenName(node: string): string {
  const readable = `node-${node.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}`.slice(0, 54);
  const name = `${readable}-${randomBytes(4).toString('hex')}`;
  return TOKEN_NAME.test(name) ? name : `node-${randomBytes(8).toString('hex')}`;
}

/**
 * The usage samples of instances assigned to `node`, each instance once. Samples of another
 * node's instances are refused (their ids returned); of instances the cluster no longer holds
 * (removed since the sample) just dropped.
 */
export function ownUsage<T extends { id: string }>(state: ClusterState, node: string, samples: readonly T[]): { own: T[]; refused: string[] } {
  const own: T[] = [];
  const refused: string[] = [];
  const seen = new Set<string>();
  for (const sample of samples) {
    const instance = state.instances.get(sample.id);
    if (instance && instance.node !== node) refused.push(sample.id);
    else if (instance && !seen.has(sample.id)) {
      seen.add(sample.id);
      own.push(sample);
    }
  }
  return { own, refused };
}
