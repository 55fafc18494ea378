// People of the company directory: signing in asks the directory (directory/client.ts), and a
// sign-in that succeeds makes or refreshes their Gantry user (source "directory", no password
// here), sets their platform role from the mapping, and brings their team memberships in line
// with their groups. Only memberships the directory gave are changed or taken away; one given
// by hand in Gantry is left as it is, even for a team the directory also names.
import type { Store } from '../../store/store.js';
import type { TeamRecord, TeamRole, UserRecord } from '../../model/types.js';
import type { TokenAuth } from '../auth.js';
import type { EventLog } from './events.js';
import type { TeamService } from './teams.js';
import type { CompanyDirectory } from '../directory/client.js';
import type { DirectoryConfig } from '../directory/config.js';
import { NAME } from '../../model/names.js';
import { STORE } from '../keys.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import { ConflictError } from '../errors.js';
import { mapGroups } from '../directory/mapping.js';

/** Who is signed in, or why not (for the event log; the person hears only "wrong user name or password"). */
export type DirectorySignIn = { user: UserRecord } | { refused: string };

const BY = 'company directory';

export class DirectoryUsers {
  constructor(
    private readonly store: Store,
    private readonly directory: CompanyDirectory,
    private readonly config: Pick<DirectoryConfig, 'mapping' | 'allowUnmapped'>,
    private readonly teams: TeamService,
    private readonly auth: TokenAuth,
    private readonly events: EventLog,
  ) {}

  get url(): string {
    return this.directory.url;
  }

  /** Throws DirectoryUnavailable when the directory does not answer. */
  async signIn(name: string, password: string): Promise<DirectorySignIn> {
    const answer = await this.directory.authenticate(name, password);
    if (!answer.ok) {
      if (answer.unknown) await this.shutOut(name, 'no longer in the company directory');
      return { refused: answer.reason };
    }
    // Checked after the directory was asked: a name Gantry cannot hold is refused like an unknown one.
    if (!NAME.test(name)) return { refused: 'the name is not a Gantry user name (lower-case letters, digits and "-")' };
    const access = mapGroups(answer.groups, this.config.mapping);
    if (!access.matched && !this.config.allowUnmapped) {
      await this.shutOut(name, 'in no group the directory mapping names');
      return { refused: 'in no mapped group (allowUnmapped is false)' };
    }
    const now = Date.now();
    let before: UserRecord | undefined;
    const written = await casUpdate(this.store, STORE.users.key(name), STORE.users, (current): UserRecord | typeof UNCHANGED => {
      // Made local in the meantime (signIn saw no password hash): that user is not this person.
      if (current && current.source !== 'directory') throw new ConflictError(`a local user named "${name}" exists`);
      before = current;
      if (current && current.role === access.role && current.dn === answer.dn) return UNCHANGED;
      return current
        ? { ...current, role: access.role, dn: answer.dn, updatedAt: now }
        : { name, role: access.role, source: 'directory', dn: answer.dn, directoryTeams: {}, createdAt: now, createdBy: BY, updatedAt: now };
    }, { what: `user ${name}` });
    let user = written.value!;
    if (!before) this.events.note({ level: 'info', type: 'user.created', message: `user ${name} (${access.role}) created at their first sign-in through the company directory` });
    else if (before.role !== access.role) {
      // Sessions carry the role they were opened with.
      const ended = await this.auth.endSessionsOf(name);
      this.events.note({ level: 'info', type: 'user.updated', message: `user ${name}: role ${before.role} → ${access.role} from the company directory${ended ? `; ${ended} session(s) ended` : ''}` });
    }
    const given = await this.refreshTeams(name, user.directoryTeams ?? {}, access.teams);
    if (!sameRoles(given, user.directoryTeams ?? {})) {
      const saved = await casUpdate(this.store, STORE.users.key(name), STORE.users, (current) => (current?.source === 'directory' ? { ...current, directoryTeams: given } : UNCHANGED), { what: `user ${name}` });
      user = saved.value ?? user;
    }
    return { user };
  }

  /**
   * Adds and updates the memberships `wanted` gives and takes away those the directory gave
   * before (`previous`) and gives no longer; returns what the directory gives now.
   */
  private async refreshTeams(user: string, previous: Record<string, TeamRole>, wanted: Record<string, TeamRole>): Promise<Record<string, TeamRole>> {
    const given: Record<string, TeamRole> = {};
    for (const [team, role] of Object.entries(wanted)) {
      const record = this.team(team);
      if (!record) {
        this.events.note({ level: 'warning', type: 'directory.team_missing', message: `the company directory puts ${user} in team ${team} (${role}), which does not exist: an admin creates it with gantry team create ${team}` });
        continue;
      }
      const handGiven = Object.hasOwn(record.members, user) && !Object.hasOwn(previous, team);
      if (handGiven) continue;
      try {
        await this.teams.setMember(team, user, role, BY);
        given[team] = role;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        this.events.note({ level: 'warning', type: 'directory.team_unchanged', message: `the company directory makes ${user} ${role} of team ${team}, which was not done: ${err.message}` });
        if (Object.hasOwn(previous, team)) given[team] = previous[team]!;
      }
    }
    for (const [team, role] of Object.entries(previous)) {
      if (Object.hasOwn(wanted, team)) continue;
      const record = this.team(team);
      if (!record || !Object.hasOwn(record.members, user)) continue; // removed by hand, or the team is gone
      try {
        await this.teams.removeMember(team, user, BY);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        this.events.note({ level: 'warning', type: 'directory.team_unchanged', message: `the company directory no longer puts ${user} in team ${team}, but they stay: ${err.message}` });
        given[team] = role;
      }
    }
    return given;
  }

  private team(name: string): TeamRecord | undefined {
    return this.teams.list().find((t) => t.name === name);
  }

  /** A directory user the directory no longer lets in: their open sessions end now, not at expiry. */
  private async shutOut(name: string, why: string): Promise<void> {
    if (!NAME.test(name)) return;
    const kv = await this.store.get(STORE.users.key(name));
    if (!kv || STORE.users.decode(kv.value).source !== 'directory') return;
    const ended = await this.auth.endSessionsOf(name);
    if (ended > 0) this.events.note({ level: 'warning', type: 'user.updated', message: `user ${name} is ${why}: ${ended} session(s) ended` });
  }
}

function sameRoles(a: Record<string, TeamRole>, b: Record<string, TeamRole>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}
