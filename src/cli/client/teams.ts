// The CLI client's calls about teams: members, quotas, and the approvals a team requires before
// an app changes in some environments.
import type { ApprovalRequest, QuotaView, TeamRecord, TeamRole } from '../../model/types.js';
import { AccessCalls } from './access.js';
import { enc } from './transport.js';

export class TeamCalls extends AccessCalls {
  teams(): Promise<{ teams: TeamRecord[] }> {
    return this.json('GET', '/v1/teams');
  }

  team(name: string): Promise<{ team: TeamRecord }> {
    return this.json('GET', `/v1/teams/${enc(name)}`);
  }

  createTeam(name: string, owner?: string): Promise<{ team: TeamRecord }> {
    return this.json('POST', '/v1/teams', { body: JSON.stringify({ name, ...(owner ? { owner } : {}) }), contentType: 'application/json' });
  }

  setMember(team: string, user: string, role: TeamRole): Promise<{ team: TeamRecord }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/members/${enc(user)}`, { body: JSON.stringify({ role }), contentType: 'application/json' });
  }

  removeMember(team: string, user: string): Promise<{ team: TeamRecord }> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/members/${enc(user)}`);
  }

  removeTeam(name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/v1/teams/${enc(name)}`);
  }

  quotas(): Promise<{ quotas: QuotaView[] }> {
    return this.json('GET', '/v1/quotas');
  }

  quota(team: string): Promise<QuotaView> {
    return this.json('GET', `/v1/teams/${enc(team)}/quota`);
  }

  setQuota(team: string, limits: { env?: string; cpu?: number; memory?: string; instances?: number }): Promise<QuotaView> {
    return this.json('PUT', `/v1/teams/${enc(team)}/quota`, { body: JSON.stringify(limits), contentType: 'application/json' });
  }

  removeQuota(team: string, scope: { env?: string; total?: 'true' }): Promise<QuotaView> {
    return this.json('DELETE', `/v1/teams/${enc(team)}/quota`, { query: scope });
  }

  approvals(team?: string): Promise<{ approvals: Omit<ApprovalRequest, 'spec'>[] }> {
    return this.json('GET', '/v1/approvals', { query: { team } });
  }

  approve(app: string): Promise<{ app: { release: number }; approval: Omit<ApprovalRequest, 'spec'> }> {
    return this.json('POST', `/v1/approvals/${enc(app)}/approve`);
  }

  reject(app: string, reason?: string): Promise<{ rejected: Omit<ApprovalRequest, 'spec'> }> {
    return this.json('POST', `/v1/approvals/${enc(app)}/reject`, { body: JSON.stringify(reason === undefined ? {} : { reason }), contentType: 'application/json' });
  }

  requireApproval(team: string, envs: string[]): Promise<{ team: string; requireApproval: string[] }> {
    return this.json('PUT', `/v1/teams/${enc(team)}/require-approval`, { body: JSON.stringify({ envs }), contentType: 'application/json' });
  }
}
