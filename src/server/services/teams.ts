// Teams: who is in which team, in which role. An admin makes a team (and its first owner);
// its owners add and remove members. Apps belong to the team their spec names, and what a
// member may do to a team's apps follows from their role there (policy.ts).
import type { Store } from '../../store/store.js';
import type { TeamRecord, TeamRole } from '../../model/types.js';
import type { ClusterState } from '../state.js';
import type { EventLog } from './events.js';
import type { Kind, TeamScope } from '../policy.js';
import { STORE } from '../keys.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { DEFAULT_TEAM, teamOfSpec } from '../../model/spec.js';

/** Most members a team holds: its record is read on every request of theirs. */
const MAX_MEMBERS = 1000;

export class TeamService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    /** Whether a user exists (members must be users). */
    private readonly userExists: (user: string) => Promise<boolean>,
  ) {}

  /** Every team (admins), or those `user` is in. */
  list(user?: string): TeamRecord[] {
    return [...this.state.teams.values()].filter((t) => user === undefined || Object.hasOwn(t.members, user)).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(team: string): TeamRecord {
    const record = this.state.teams.get(team);
    if (!record) throw new NotFoundError(`no team named "${team}"`);
    return record;
  }

  async create(team: string, owner: string | undefined, by: string): Promise<TeamRecord> {
    if (owner !== undefined && !(await this.userExists(owner))) throw new NotFoundError(`no user named "${owner}"`);
    const now = Date.now();
    const members: Record<string, TeamRole> = owner === undefined ? {} : { [owner]: 'owner' };
    const written = await casUpdate(this.store, STORE.teams.key(team), STORE.teams, (current) => {
      if (current) throw new ConflictError(`a team named "${team}" exists already`);
      return { name: team, members, createdAt: now, createdBy: by, updatedAt: now };
    }, { attempts: 1, what: `team ${team}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'team.created', message: `team ${team}${owner ? ` (owner ${owner})` : ''} created by ${by}` });
    return written.value!;
  }

  /**
   * The team of apps whose spec names none (DEFAULT_TEAM), made on start when missing: an
   * installation from before teams keeps its apps, now the default team's, running as they were.
   */
  async ensureDefaultTeam(): Promise<void> {
    const written = await casUpdate(this.store, STORE.teams.key(DEFAULT_TEAM), STORE.teams, (current) => {
      if (current) return UNCHANGED;
      const now = Date.now();
      return { name: DEFAULT_TEAM, members: {}, createdAt: now, createdBy: 'gantry', updatedAt: now };
    }, { what: `team ${DEFAULT_TEAM}` });
    if (written.revision !== undefined) await this.state.waitFor(written.revision);
  }

  async setMember(team: string, user: string, role: TeamRole, by: string): Promise<TeamRecord> {
    if (!(await this.userExists(user))) throw new NotFoundError(`no user named "${user}"`);
    const written = await casUpdate(this.store, STORE.teams.key(team), STORE.teams, (current) => {
      if (!current) throw new NotFoundError(`no team named "${team}"`);
      if (current.members[user] === role) return UNCHANGED;
      if (!Object.hasOwn(current.members, user) && Object.keys(current.members).length >= MAX_MEMBERS) throw new ConflictError(`team ${team} has ${MAX_MEMBERS} members already`);
      if (current.members[user] === 'owner' && role !== 'owner' && owners(current) === 1) throw new ConflictError(`${user} is the last owner of team ${team}: make another owner first`);
      return { ...current, members: { ...current.members, [user]: role }, updatedAt: Date.now() };
    }, { what: `team ${team}` });
    if (written.revision !== undefined) {
      await this.state.waitFor(written.revision);
      this.events.note({ level: 'info', type: 'team.member', message: `${user} is ${role} of team ${team} (by ${by})` });
    }
    return written.value!;
  }

  async removeMember(team: string, user: string, by: string): Promise<TeamRecord> {
    const written = await casUpdate(this.store, STORE.teams.key(team), STORE.teams, (current) => {
      if (!current) throw new NotFoundError(`no team named "${team}"`);
      if (!Object.hasOwn(current.members, user)) throw new NotFoundError(`${user} is not in team ${team}`);
      if (current.members[user] === 'owner' && owners(current) === 1) throw new ConflictError(`${user} is the last owner of team ${team}: make another owner first`);
      const { [user]: _gone, ...members } = current.members;
      return { ...current, members, updatedAt: Date.now() };
    }, { what: `team ${team}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'team.member_removed', message: `${user} left team ${team} (by ${by})` });
    return written.value!;
  }

  /**
   * Takes a removed user out of every team, as the last owner too (admins manage an ownerless
   * team): a user made again later under the same name must not inherit the old memberships.
   */
  async forgetUser(user: string, by: string): Promise<void> {
    for (const team of this.list(user)) {
      const written = await casUpdate(this.store, STORE.teams.key(team.name), STORE.teams, (current) => {
        if (!current || !Object.hasOwn(current.members, user)) return UNCHANGED;
        const { [user]: _gone, ...members } = current.members;
        return { ...current, members, updatedAt: Date.now() };
      }, { what: `team ${team.name}` });
      if (written.revision === undefined) continue;
      await this.state.waitFor(written.revision);
      this.events.note({ level: 'info', type: 'team.member_removed', message: `${user} left team ${team.name}: the user was removed (by ${by})` });
    }
  }

  async remove(team: string, by: string): Promise<void> {
    const apps = [...this.state.apps.values()].filter((a) => teamOfSpec(a.spec) === team).map((a) => a.name);
    if (apps.length > 0) throw new ConflictError(`team ${team} still owns apps (${apps.slice(0, 5).join(', ')}${apps.length > 5 ? ', …' : ''}): move or remove them first`);
    // A team made again under the same name must not find the old one's secrets and configs.
    const kept = [...[...this.state.secrets.values()].filter((s) => s.team === team).map((s) => `secret ${s.name}`), ...[...this.state.configs.values()].filter((c) => c.team === team).map((c) => `config ${c.name}`)];
    if (kept.length > 0) throw new ConflictError(`team ${team} still has ${kept.slice(0, 5).join(', ')}${kept.length > 5 ? ', …' : ''}: remove them first (gantry secret rm, gantry config rm)`);
    const written = await casUpdate(this.store, STORE.teams.key(team), STORE.teams, (current) => {
      if (!current) throw new NotFoundError(`no team named "${team}"`);
      return null;
    }, { what: `team ${team}`, also: () => [{ type: 'delete', key: STORE.quotas.key(team) }, { type: 'delete', key: STORE.quotaGuards.key(team) }] });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'warning', type: 'team.removed', message: `team ${team} removed by ${by}` });
  }
}

function owners(team: TeamRecord): number {
  return Object.values(team.members).filter((role) => role === 'owner').length;
}

/** The access check's view of teams, read from the cluster cache (no store read per request). */
export function teamScope(state: ClusterState): TeamScope {
  const teamOfApp = (app: string | undefined) => {
    const record = app === undefined ? undefined : state.apps.get(app);
    return record && teamOfSpec(record.spec);
  };
  return {
    teamOf(kind: Kind, resource: string) {
      if (kind === 'team' || kind === 'quota') return state.teams.has(resource) ? resource : undefined;
      // Events and discovery entries are listed by the app they are about.
      if (kind === 'app' || kind === 'release' || kind === 'event' || kind === 'discovery') return teamOfApp(resource);
      if (kind === 'instance') return teamOfApp(state.instances.get(resource)?.app);
      if (kind === 'log') {
        // Logs are named by an instance id or, for an app's merged logs, by the app. Should a name
        // be both (an app named like another app's instance), it must belong to one team.
        const ofInstance = state.instances.has(resource) ? teamOfApp(state.instances.get(resource)?.app) : undefined;
        const ofApp = state.apps.has(resource) ? teamOfApp(resource) : undefined;
        if (state.instances.has(resource) && state.apps.has(resource)) return ofInstance === ofApp ? ofApp : undefined;
        return ofInstance ?? ofApp;
      }
      if (kind === 'pool') return state.pools.get(resource)?.team;
      // A secret or config route names its team (`team`, or `team/name` as can-i says it).
      if (kind === 'secret' || kind === 'config') {
        const team = resource.split('/', 1)[0] ?? '';
        return state.teams.has(team) ? team : undefined;
      }
      return undefined;
    },
    teamsOf(user: string) {
      return [...state.teams.values()].filter((t) => Object.hasOwn(t.members, user)).map((t): [string, TeamRole] => [t.name, t.members[user]!]);
    },
    roleIn(team: string, user: string) {
      const record = state.teams.get(team);
      return record && Object.hasOwn(record.members, user) ? record.members[user] : undefined;
    },
  };
}
