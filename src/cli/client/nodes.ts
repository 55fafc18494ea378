// The CLI client's calls about nodes: their state, pools, what they run that the server does not
// know, and the tokens nodes and administrators connect with.
import type { AdoptionResult, NodeListResponse, NodeView, TokenInfo } from '../../model/api.js';
import type { CheckSummary, InspectionRecord } from '../../model/inspection.js';
import type { UsageResponse } from '../../model/usage.js';
import { AppCalls } from './apps.js';
import { enc } from './transport.js';

export class NodeCalls extends AppCalls {
  /** What instances use (the caller's teams' only): gantry top. History left out. */
  usage(filter: { app?: string; node?: string }): Promise<UsageResponse> {
    const query = new URLSearchParams({ history: 'false', ...(filter.app ? { app: filter.app } : {}), ...(filter.node ? { node: filter.node } : {}) });
    return this.json('GET', `/v1/usage?${query}`);
  }

  listNodes(): Promise<NodeListResponse> {
    return this.json('GET', '/v1/nodes');
  }

  nodeAction(name: string, action: 'cordon' | 'uncordon' | 'drain'): Promise<{ node: NodeView }> {
    return this.json('POST', `/v1/nodes/${enc(name)}/${action}`);
  }

  dedicate(name: string, app: string | null): Promise<{ node: NodeView }> {
    return this.json('PUT', `/v1/nodes/${enc(name)}/dedication`, { body: JSON.stringify({ app }), contentType: 'application/json' });
  }

  unassigned(node: string): Promise<{ unassigned: { id: string; app: string; env: string; entry: string; release?: number; adoptable: boolean }[] }> {
    return this.json('GET', `/v1/nodes/${enc(node)}/unassigned`);
  }

  /** `nodes` empty: every node that reports instances this server does not know. */
  adopt(nodes: string[]): Promise<AdoptionResult & { nodes: string[] }> {
    return this.json('POST', '/v1/nodes/adopt', { body: JSON.stringify({ nodes }), contentType: 'application/json' });
  }

  forget(node: string, ids?: string[]): Promise<{ forgotten: string[] }> {
    return this.json('POST', `/v1/nodes/${enc(node)}/forget`, { body: JSON.stringify(ids ? { ids } : {}), contentType: 'application/json' });
  }

  /** Has the node's agent run its inspection checks now; the stored results. */
  inspectNode(node: string): Promise<NodeInspection> {
    return this.json('POST', `/v1/nodes/${enc(node)}/inspect`);
  }

  nodeInspection(node: string): Promise<NodeInspection> {
    return this.json('GET', `/v1/nodes/${enc(node)}/inspection`);
  }

  setPool(name: string, team?: string): Promise<{ pool: { name: string; team?: string } }> {
    return this.json('PUT', `/v1/pools/${enc(name)}`, { body: JSON.stringify(team ? { team } : {}), contentType: 'application/json' });
  }

  tokens(): Promise<{ tokens: TokenInfo[] }> {
    return this.json('GET', '/v1/tokens');
  }

  /** node: the node an agent token speaks for (default: its name); ttl: how long a join token works ("24h"). */
  createToken(name: string, role: TokenInfo['role'], options: { node?: string; ttl?: string } = {}): Promise<TokenInfo & { token: string }> {
    return this.json('POST', '/v1/tokens', { body: JSON.stringify({ name, role, ...options }), contentType: 'application/json' });
  }

  revokeToken(name: string): Promise<{ revoked: TokenInfo; closedConnections: number }> {
    return this.json('DELETE', `/v1/tokens/${enc(name)}`);
  }
}

/** A node's latest inspection, as `POST /v1/nodes/{name}/inspect` and `GET .../inspection` answer. */
export interface NodeInspection {
  node: string;
  inspection: InspectionRecord | null;
  summary: CheckSummary;
}
