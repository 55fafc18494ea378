// Invitations: a way to become a user without an admin typing your password. An admin (any
// platform role, any team) or a team's owner (into their own team, as a member) makes a one-time
// code; whoever holds it picks a name and a password, becomes that user, joins the team, and is
// signed in, in one store transaction that also uses the code up. The code is random, shown
// once, and kept only as its SHA-256 hash (like tokens); a wrong, used or expired one gets one
// answer, and failures are counted with failed sign-ins, so codes cannot be guessed either.
import { createHash, randomBytes } from 'node:crypto';
import type { Store, TxnOp } from '../../store/store.js';
import type { InvitationRecord, TeamRole, UserRecord } from '../../model/types.js';
import type { InvitationView, LoginResponse } from '../../model/api.js';
import type { Caller, TokenAuth } from '../auth.js';
import type { ClusterState } from '../state.js';
import type { EventLog } from './events.js';
import { DEFAULT_SESSION_MS, type UserService } from './users.js';
import { STORE } from '../keys.js';
import { casUpdate } from '../cas.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { hashPassword } from '../passwords.js';

export const DEFAULT_INVITATION_MS = 7 * 24 * 3_600_000;
export const MIN_INVITATION_MS = 5 * 60_000;
export const MAX_INVITATION_MS = 30 * 24 * 3_600_000;
/** Open invitations at most: each is a way in, and the list is read whole. */
const MAX_OPEN = 1000;
const CODE_PREFIX = 'gti_';

/** A caller refused by who may invite whom. */
export class InvitationRefused extends Error {
  readonly statusCode = 403;
}

/** The one answer for a code that is unknown, used up or expired: it must not tell which. */
export class InvalidInvitation extends Error {
  readonly statusCode = 403;
  constructor() {
    super('this invitation code is not valid: it is unknown, used up or expired (ask whoever invited you for a new one)');
  }
}

export interface InvitationRequest {
  team?: string;
  role?: TeamRole;
  platformRole?: UserRecord['role'];
  expiresInMs?: number;
}

const nameTaken = (name: string) => new ConflictError(`a user named "${name}" exists already: pick another name`);
const hashOf = (code: string) => createHash('sha256').update(code).digest('hex');

export class InvitationService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly auth: TokenAuth,
    private readonly users: UserService,
    private readonly events: EventLog,
  ) {}

  async create(caller: Caller, request: InvitationRequest): Promise<{ invitation: InvitationView; code: string }> {
    const platformRole = request.platformRole ?? 'member';
    const teamRole = request.team === undefined ? undefined : (request.role ?? 'developer');
    this.mayInvite(caller, request.team, platformRole);
    if (request.team !== undefined && !this.state.teams.has(request.team)) throw new NotFoundError(`no team named "${request.team}"`);
    const open = await this.openInvitations();
    if (open.length >= MAX_OPEN) throw new ConflictError(`${MAX_OPEN} invitations are open already: revoke some first (gantry user invitations)`);
    const code = `${CODE_PREFIX}${randomBytes(24).toString('base64url')}`;
    const codeHash = hashOf(code);
    const now = Date.now();
    const record: InvitationRecord = {
      id: codeHash.slice(0, 16),
      codeHash,
      platformRole,
      ...(request.team !== undefined ? { team: request.team, teamRole } : {}),
      createdBy: caller.name,
      createdAt: now,
      expiresAt: now + (request.expiresInMs ?? DEFAULT_INVITATION_MS),
    };
    await casUpdate(this.store, STORE.invitations.key(record.id), STORE.invitations, (current) => {
      if (current) throw new ConflictError('an invitation with the same id exists; create it again');
      return record;
    }, { attempts: 1, what: `invitation ${record.id}` });
    this.events.note({ level: 'info', type: 'invitation.created', message: `invitation ${record.id} (${describe(record)}) created by ${caller.name}, valid until ${new Date(record.expiresAt).toISOString()}` });
    return { invitation: view(record), code };
  }

  /** Open invitations the caller may see: all for admins, those into teams they own for owners. */
  async list(caller: Caller): Promise<InvitationView[]> {
    return (await this.openInvitations()).filter((i) => caller.role === 'admin' || (i.team !== undefined && this.ownerOf(i.team, caller))).map(view);
  }

  async revoke(id: string, caller: Caller): Promise<InvitationView> {
    const kv = await this.store.get(STORE.invitations.key(id));
    const record = kv ? STORE.invitations.decode(kv.value) : undefined;
    // Someone who may not see an invitation learns nothing of whether it exists.
    if (!record || !(caller.role === 'admin' || (record.team !== undefined && this.ownerOf(record.team, caller)))) throw new NotFoundError(`no invitation ${id} of yours`);
    await casUpdate(this.store, STORE.invitations.key(id), STORE.invitations, (current) => {
      if (!current) throw new NotFoundError(`no invitation ${id} of yours`);
      return null;
    }, { what: `invitation ${id}` });
    this.events.note({ level: 'info', type: 'invitation.revoked', message: `invitation ${id} (${describe(record)}) revoked by ${caller.name}` });
    return view(record);
  }

  /**
   * Makes the user, adds their membership and uses the code up, all in one transaction (two
   * accepts of one code: one wins, the other finds it used), then opens a session.
   */
  async accept(code: string, name: string, password: string, from: string): Promise<LoginResponse> {
    this.users.refuseIfFailingFrom(from);
    const id = hashOf(code).slice(0, 16);
    const refuse = (): never => {
      this.users.failedFrom(from);
      this.events.note({ level: 'warning', type: 'invitation.refused', message: `an invalid invitation code was tried from ${from}` });
      throw new InvalidInvitation();
    };
    const valid = (record: InvitationRecord | undefined): record is InvitationRecord => record !== undefined && record.codeHash === hashOf(code) && record.expiresAt > Date.now();
    const first = await this.store.get(STORE.invitations.key(id));
    if (!code.startsWith(CODE_PREFIX) || !valid(first ? STORE.invitations.decode(first.value) : undefined)) return refuse();
    // Only someone holding a valid code learns whether a name is taken.
    if (await this.store.get(STORE.users.key(name))) throw nameTaken(name);
    const passwordHash = await hashPassword(password);
    const { invitation, revision } = await this.useUp(id, name, passwordHash, valid, refuse);
    await this.state.waitFor(revision);
    this.events.note({ level: 'info', type: 'user.created', message: `user ${name} (${invitation.platformRole}) joined by invitation ${invitation.id} of ${invitation.createdBy}${invitation.team ? `, ${invitation.teamRole} of team ${invitation.team}` : ''}` });
    const session = await this.auth.createSession(name, invitation.platformRole, DEFAULT_SESSION_MS);
    this.events.note({ level: 'info', type: 'auth.login', message: `${name} signed in from ${from}` });
    return { user: name, role: invitation.platformRole, ...session };
  }

  /** One transaction: the code used up, the user made (if the name is still free), the membership added (if the team did not change meanwhile). */
  private async useUp(id: string, name: string, passwordHash: string, valid: (r: InvitationRecord | undefined) => r is InvitationRecord, refuse: () => never): Promise<{ invitation: InvitationRecord; revision: number }> {
    for (let attempt = 1; ; attempt++) {
      const kv = await this.store.get(STORE.invitations.key(id));
      const invitation = kv ? STORE.invitations.decode(kv.value) : undefined;
      if (!valid(invitation)) return refuse();
      const teamKv = invitation.team !== undefined ? await this.store.get(STORE.teams.key(invitation.team)) : undefined;
      if (invitation.team !== undefined && !teamKv) throw new ConflictError(`team ${invitation.team} is gone since the invitation was made: ask for a new one`);
      try {
        const written = await casUpdate(this.store, STORE.invitations.key(id), STORE.invitations, (current) => (valid(current) ? null : refuse()), {
          attempts: 1,
          what: `invitation ${id}`,
          compare: () => [{ key: STORE.users.key(name), target: 'version', op: '==', value: 0 }, ...(teamKv ? [{ key: teamKv.key, target: 'modRevision' as const, op: '==' as const, value: teamKv.modRevision }] : [])],
          also: () => joinWrites(invitation, name, passwordHash, teamKv?.value),
        });
        return { invitation, revision: written.revision! };
      } catch (err) {
        // Lost a race: the name was taken, the team changed, or another accept used the code (the next read finds it used).
        if (!(err instanceof ConflictError)) throw err;
        if (await this.store.get(STORE.users.key(name))) throw nameTaken(name);
        if (attempt >= 5) throw err;
      }
    }
  }

  private mayInvite(caller: Caller, team: string | undefined, platformRole: UserRecord['role']): void {
    if (caller.role === 'admin') return;
    if (platformRole !== 'member') throw new InvitationRefused(`${caller.name} (${caller.role}) may not invite an ${platformRole}: only admins invite anyone but members`);
    if (team === undefined) throw new InvitationRefused(`${caller.name} (${caller.role}) may invite only into a team they own: name it (team)`);
    if (!this.ownerOf(team, caller)) throw new InvitationRefused(`${caller.name} (${caller.role}) may not invite into team ${team}: only its owners (and admins) may`);
  }

  private ownerOf(team: string, caller: Caller): boolean {
    const record = this.state.teams.get(team);
    return caller.user !== undefined && record !== undefined && Object.hasOwn(record.members, caller.user) && record.members[caller.user] === 'owner';
  }

  /** Invitations not used and not expired; expired ones are deleted on the way. */
  private async openInvitations(): Promise<InvitationRecord[]> {
    const { kvs } = await this.store.range(STORE.invitations.prefix);
    const now = Date.now();
    const all = kvs.map((kv) => ({ key: kv.key, record: STORE.invitations.decode(kv.value) }));
    const expired = all.filter(({ record }) => record.expiresAt <= now);
    if (expired.length > 0) await this.store.txn({ compare: [], success: expired.map(({ key }) => ({ type: 'delete' as const, key })) });
    return all.filter(({ record }) => record.expiresAt > now).map(({ record }) => record);
  }
}

/** The user an invitation makes, and their team with them in it. */
function joinWrites(invitation: InvitationRecord, name: string, passwordHash: string, teamText: string | undefined): TxnOp[] {
  const now = Date.now();
  const user: UserRecord = { name, passwordHash, role: invitation.platformRole, createdAt: now, createdBy: `invitation of ${invitation.createdBy}`, updatedAt: now };
  const ops: TxnOp[] = [{ type: 'put', key: STORE.users.key(name), value: STORE.users.encode(user) }];
  if (teamText !== undefined && invitation.team !== undefined) {
    const team = STORE.teams.decode(teamText);
    ops.push({ type: 'put', key: STORE.teams.key(team.name), value: STORE.teams.encode({ ...team, members: { ...team.members, [name]: invitation.teamRole ?? 'developer' }, updatedAt: now }) });
  }
  return ops;
}

function describe(record: InvitationRecord): string {
  return `${record.platformRole}${record.team ? `, ${record.teamRole} of team ${record.team}` : ''}`;
}

function view(record: InvitationRecord): InvitationView {
  const { codeHash: _hash, ...rest } = record;
  return rest;
}
