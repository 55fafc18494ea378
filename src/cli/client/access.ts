// The CLI client's calls about people and what they may do: logging in, users, personal and team
// robot tokens, invitations, and the audit trail.
import type { InvitationView, LoginResponse, ScopedTokenInfo, UserInfo } from '../../model/api.js';
import type { AuditRecord, TeamRole } from '../../model/types.js';
import { NodeCalls } from './nodes.js';
import { enc } from './transport.js';

export class AccessCalls extends NodeCalls {
  login(user: string, password: string, ttl?: string): Promise<LoginResponse> {
    return this.json('POST', '/v1/login', { body: JSON.stringify({ user, password, ...(ttl ? { ttl } : {}) }), contentType: 'application/json' });
  }

  logout(): Promise<{ ended: boolean }> {
    return this.json('POST', '/v1/logout');
  }

  whoami(): Promise<{ name: string; role: string; user?: string }> {
    return this.json('GET', '/v1/whoami');
  }

  canI(verb: string, resource: string, as?: string): Promise<{ as: string; role: string; allowed: boolean; why?: string }> {
    return this.json('GET', '/v1/auth/can-i', { query: { verb, resource, ...(as ? { as } : {}) } });
  }

  audit(filter: { user?: string; team?: string; since?: string; limit?: string }): Promise<{ entries: AuditRecord[] }> {
    const query: Record<string, string> = {};
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query[key] = value;
    return this.json('GET', '/v1/audit', { query });
  }

  users(): Promise<{ users: UserInfo[] }> {
    return this.json('GET', '/v1/users');
  }

  createUser(name: string, password: string, role: 'admin' | 'operator' | 'member'): Promise<{ user: UserInfo }> {
    return this.json('POST', '/v1/users', { body: JSON.stringify({ name, password, role }), contentType: 'application/json' });
  }

  updateUser(name: string, change: { password?: string; role?: 'admin' | 'operator' | 'member' }): Promise<{ user: UserInfo }> {
    return this.json('PATCH', `/v1/users/${enc(name)}`, { body: JSON.stringify(change), contentType: 'application/json' });
  }

  removeUser(name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/users/${enc(name)}`);
  }

  /** Personal tokens (no team) or a team's robot tokens. */
  scopedTokens(team?: string): Promise<{ tokens: ScopedTokenInfo[] }> {
    return this.json('GET', scopedTokensPath(team));
  }

  createScopedToken(team: string | undefined, body: { name: string; scope?: string[]; expiresIn?: string; role?: string }): Promise<ScopedTokenInfo & { token: string }> {
    return this.json('POST', scopedTokensPath(team), { body: JSON.stringify(body), contentType: 'application/json' });
  }

  revokeScopedToken(team: string | undefined, name: string): Promise<{ revoked: ScopedTokenInfo }> {
    return this.json('DELETE', `${scopedTokensPath(team)}/${enc(name)}`);
  }

  createInvitation(request: { team?: string; role?: TeamRole; platformRole?: 'admin' | 'operator' | 'member'; expiresIn?: string }): Promise<{ invitation: InvitationView; code: string }> {
    const body = Object.fromEntries(Object.entries(request).filter(([, value]) => value !== undefined));
    return this.json('POST', '/v1/invitations', { body: JSON.stringify(body), contentType: 'application/json' });
  }

  invitations(): Promise<{ invitations: InvitationView[] }> {
    return this.json('GET', '/v1/invitations');
  }

  revokeInvitation(id: string): Promise<{ revoked: InvitationView }> {
    return this.json('DELETE', `/v1/invitations/${enc(id)}`);
  }

  acceptInvitation(code: string, name: string, password: string): Promise<LoginResponse> {
    return this.json('POST', '/v1/invitations/accept', { body: JSON.stringify({ code, name, password }), contentType: 'application/json' });
  }
}

function scopedTokensPath(team: string | undefined): string {
  return team === undefined ? '/v1/me/tokens' : `/v1/teams/${enc(team)}/tokens`;
}
