// Which team roles and which platform role a person's directory groups give, by the
// configuration's mapping. A group is named by its DN (compared the way LDAP compares them:
// case and the spaces around "," and "=" do not matter) or by its cn alone. Several groups
// giving roles in one team: the strongest counts; likewise for the platform role.
import type { TeamRole, UserRecord } from '../../model/types.js';
import type { GroupMapping } from './config.js';

export interface MappedAccess {
  role: UserRecord['role'];
  teams: Record<string, TeamRole>;
  /** Whether any of the groups is in the mapping at all. */
  matched: boolean;
}

const TEAM_STRENGTH: Record<TeamRole, number> = { viewer: 1, developer: 2, owner: 3 };
const PLATFORM_STRENGTH: Record<UserRecord['role'], number> = { member: 0, operator: 1, admin: 2 };

export function normalizeDn(dn: string): string {
  return dn
    .split(',')
    .map((rdn) => rdn.split('=').map((part) => part.trim()).join('='))
    .join(',')
    .toLowerCase();
}

/** The value of a DN's first RDN (cn=developers,ou=groups,... → developers). */
function firstRdnValue(dn: string): string | undefined {
  const first = dn.split(',')[0] ?? '';
  const at = first.indexOf('=');
  return at < 0 ? undefined : first.slice(at + 1).trim().toLowerCase();
}

function names(mapping: GroupMapping, group: string): boolean {
  return mapping.group.includes('=') ? normalizeDn(mapping.group) === normalizeDn(group) : firstRdnValue(group) === mapping.group.trim().toLowerCase();
}

export function mapGroups(groups: readonly string[], mapping: readonly GroupMapping[]): MappedAccess {
  const access: MappedAccess = { role: 'member', teams: {}, matched: false };
  for (const rule of mapping) {
    if (!groups.some((group) => names(rule, group))) continue;
    access.matched = true;
    if (rule.platformRole !== undefined && PLATFORM_STRENGTH[rule.platformRole] > PLATFORM_STRENGTH[access.role]) access.role = rule.platformRole;
    if (rule.team !== undefined && rule.role !== undefined) {
      const held = access.teams[rule.team];
      if (held === undefined || TEAM_STRENGTH[rule.role] > TEAM_STRENGTH[held]) access.teams[rule.team] = rule.role;
    }
  }
  return access;
}
