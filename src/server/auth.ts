// API tokens: random, shown once, stored only as a SHA-256 hash. An admin token may do
// everything; an agent token speaks for one node only (Kubernetes' NodeRestriction: the server
// enforces it, not the agent's good manners); a join token connects a new node once, and that
// node is given an agent token of its own.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { ScopedTokenInfo, TokenInfo } from '../model/api.js';
import { ConflictError, NotFoundError } from './errors.js';
import { UNCHANGED, casUpdate } from './cas.js';
import { STORE, type TokenRecord } from './keys.js';

export { TOKEN_NAME } from '../model/names.js';

export type Role = TokenInfo['role'];

/** Who presented a token. */
export interface Caller {
  role: Role;
  /** The token's name, or the user's of a session (for "by <name>" in events, and to close its connections when revoked). */
  name: string;
  /** For agent tokens: the one node it may speak for. */
  node?: string;
  /** For sessions and personal tokens: the signed-in user. */
  user?: string;
  /** A personal or robot token's scope (policy.ts SCOPE_ITEM): what it may do at most. Absent: all its holder may. */
  scope?: readonly string[];
  /** A team's robot token (for CI): acts in that team only, with that role. */
  robot?: { team: string; role: RobotRole };
}

export type RobotRole = 'developer' | 'viewer';

const PREFIX = STORE.tokens.prefix;

function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return `gty_${randomBytes(24).toString('base64url')}`;
}

export class TokenAuth {
  /** By hash: a lookup reveals nothing, since the hash of an unknown token says nothing of a known one. */
  private byHash = new Map<string, TokenRecord & { key: string }>();
  /** Tokens that live only as long as this process (the embedded agent of `gantry up`). */
  private readonly ephemeral = new Map<string, TokenRecord>();

  /**
   * `csrfKey`: what a session's CSRF value is keyed with (every server of a cluster needs the
   * same, so it is derived from the cluster's secret key); a random one lasts this process.
   */
  constructor(private readonly store: Store, private readonly csrfKey: Buffer = randomBytes(32)) {}

  /**
   * The value a browser session must echo in X-Gantry-CSRF (session-cookie.ts): derived from its
   * token, so nothing more is stored, and useless without the token's own secrecy being broken.
   */
  csrfOf(token: string): string {
    return createHmac('sha256', this.csrfKey).update(token).digest('base64url');
  }

  /**
   * Loads the stored tokens; on the very first start creates the admin token (or takes the
   * one given, for scripted set-ups) and returns it so the caller can show it once.
   */
  async init(bootstrapToken?: string): Promise<string | undefined> {
    await this.reload();
    if ([...this.byHash.values()].some((r) => r.user === undefined)) return undefined;
    const token = bootstrapToken ?? newToken();
    await this.create({ role: 'admin', name: 'admin' }, token);
    return token;
  }

  /** Stores a new named token and returns it (the only time it is seen). Names are unique. */
  async create(spec: { role: Role; name: string; node?: string; expiresAt?: number }, token = newToken()): Promise<string> {
    await this.reload();
    const records = [...this.byHash.values()].filter((r) => r.user === undefined);
    if (records.some((r) => r.name === spec.name)) throw new ConflictError(`a token named "${spec.name}" exists already; revoke it first or pick another name`);
    if (spec.role === 'agent' && spec.node === undefined) throw new Error('an agent token needs the node it speaks for');
    const record: TokenRecord = { hash: hash(token), role: spec.role, name: spec.name, createdAt: Date.now() };
    if (spec.role === 'agent') record.node = spec.node;
    if (spec.expiresAt !== undefined) record.expiresAt = spec.expiresAt;
    // Created, never overwritten: a record already at this key (a hash prefix collision) is a conflict.
    await casUpdate(this.store, STORE.tokens.key(record.hash.slice(0, 16)), STORE.tokens, (current) => {
      if (current) throw new ConflictError('a token with the same hash prefix exists; create it again');
      return record;
    }, { attempts: 1, what: `token ${spec.name}` });
    await this.reload();
    return token;
  }

  /** Whether some stored agent token already speaks for this node (a join token may not claim it). */
  async nodeHasToken(node: string): Promise<boolean> {
    await this.reload();
    return [...this.byHash.values()].some((r) => r.role === 'agent' && boundNode(r) === node);
  }

  /** API tokens (sessions are the users', not listed here). */
  async list(): Promise<TokenInfo[]> {
    await this.reload();
    return [...this.byHash.values()].filter((r) => r.user === undefined).map(info).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * A new sign-in session of `user`, valid for `ttlMs`: a random token stored, like every
   * token, only as its hash. Sessions that have expired are deleted on the way.
   */
  async createSession(user: string, role: 'admin' | 'operator' | 'member', ttlMs: number): Promise<{ token: string; expiresAt: number }> {
    await this.reload();
    const now = Date.now();
    const expired = [...this.byHash.values()].filter((r) => r.user !== undefined && r.expiresAt !== undefined && r.expiresAt <= now);
    if (expired.length > 0) await this.store.txn({ compare: [], success: expired.map((r) => ({ type: 'delete' as const, key: r.key })) });
    const token = newToken();
    const record: TokenRecord = { hash: hash(token), role, name: user, user, createdAt: now, expiresAt: now + ttlMs };
    await casUpdate(this.store, STORE.tokens.key(record.hash.slice(0, 16)), STORE.tokens, (current) => {
      if (current) throw new ConflictError('a token with the same hash prefix exists; sign in again');
      return record;
    }, { attempts: 1, what: `session of ${user}` });
    await this.reload();
    return { token, expiresAt: record.expiresAt! };
  }

  /** Ends the session `token` is (logout); false when it is not a session. */
  async endSession(token: string): Promise<boolean> {
    await this.reload();
    const record = this.byHash.get(hash(token));
    if (!record || record.user === undefined || record.purpose !== undefined) return false;
    await casUpdate(this.store, record.key, STORE.tokens, (current) => (current ? null : UNCHANGED), { what: 'session' });
    await this.reload();
    return true;
  }

  /** Ends every session of `user` (removed, or their password changed); how many there were. */
  async endSessionsOf(user: string): Promise<number> {
    await this.reload();
    const sessions = [...this.byHash.values()].filter((r) => r.user === user);
    if (sessions.length > 0) await this.store.txn({ compare: [], success: sessions.map((r) => ({ type: 'delete' as const, key: r.key })) });
    await this.reload();
    return sessions.length;
  }

  /**
   * A personal token of a user (acting as them, with the role they have now) or a team's robot
   * token (acting in that team only): named, scoped, maybe expiring. Shown this once, kept as
   * its hash like every token. Names are unique per user and per team.
   */
  async createScoped(owner: ScopedOwner, label: string, scope: string[], expiresAt?: number): Promise<{ token: string; info: ScopedTokenInfo }> {
    await this.reload();
    if (this.scopedOf(owner).some((r) => labelOf(r) === label)) throw new ConflictError(`${describe(owner)} has a token named "${label}" already; revoke it first or pick another name`);
    if (this.scopedOf(owner).length >= MAX_SCOPED_TOKENS) throw new ConflictError(`${describe(owner)} has ${MAX_SCOPED_TOKENS} tokens, the most one may have; revoke some first`);
    const token = newToken();
    const record: TokenRecord =
      owner.purpose === 'personal'
        ? { hash: hash(token), role: owner.role, name: `${owner.user}/${label}`, user: owner.user, purpose: 'personal', scope, createdAt: Date.now() }
        : { hash: hash(token), role: 'member', name: `@${owner.team}/${label}`, purpose: 'robot', team: owner.team, teamRole: owner.teamRole, scope, createdAt: Date.now() };
    if (expiresAt !== undefined) record.expiresAt = expiresAt;
    await casUpdate(this.store, STORE.tokens.key(record.hash.slice(0, 16)), STORE.tokens, (current) => {
      if (current) throw new ConflictError('a token with the same hash prefix exists; create it again');
      return record;
    }, { attempts: 1, what: `token ${record.name}` });
    await this.reload();
    return { token, info: scopedInfo(record) };
  }

  /** A user's personal tokens, or a team's robot tokens (never the tokens themselves). */
  async listScoped(owner: Pick<ScopedOwner, 'purpose'> & { user?: string; team?: string }): Promise<ScopedTokenInfo[]> {
    await this.reload();
    return this.scopedOf(owner).map(scopedInfo).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Revokes a personal or robot token by its name; it stops working at once. */
  async revokeScoped(owner: Pick<ScopedOwner, 'purpose'> & { user?: string; team?: string }, label: string): Promise<ScopedTokenInfo> {
    await this.reload();
    const record = this.scopedOf(owner).find((r) => labelOf(r) === label);
    if (!record) throw new NotFoundError(`${describe(owner)} has no token named "${label}"`);
    await casUpdate(this.store, record.key, STORE.tokens, (current) => (current ? null : UNCHANGED), { what: `token ${record.name}` });
    await this.reload();
    return scopedInfo(record);
  }

  /** Revokes every robot token of a team (the team is being removed); how many there were. */
  async revokeTeamTokens(team: string): Promise<number> {
    await this.reload();
    const robots = this.scopedOf({ purpose: 'robot', team });
    if (robots.length > 0) await this.store.txn({ compare: [], success: robots.map((r) => ({ type: 'delete' as const, key: r.key })) });
    await this.reload();
    return robots.length;
  }

  private scopedOf(owner: Pick<ScopedOwner, 'purpose'> & { user?: string; team?: string }): (TokenRecord & { key: string })[] {
    return [...this.byHash.values()].filter((r) => r.purpose === owner.purpose && (owner.purpose === 'personal' ? r.user === owner.user : r.team === owner.team));
  }

  /** Deletes the named token: it stops working at once (an agent using it is refused when it reconnects). */
  async revoke(name: string): Promise<TokenInfo> {
    await this.reload();
    const tokens = [...this.byHash.values()].filter((r) => r.user === undefined);
    const record = tokens.find((r) => r.name === name);
    if (!record) throw new NotFoundError(`no token named "${name}"`);
    if (record.role === 'admin' && tokens.filter((r) => r.role === 'admin').length === 1) {
      throw new ConflictError(`"${name}" is the last admin token: create another admin token before revoking it`);
    }
    await casUpdate(this.store, record.key, STORE.tokens, (current) => (current ? null : UNCHANGED), { what: `token ${name}` });
    await this.reload();
    return info(record);
  }

  ephemeralToken(role: Role, name: string, node?: string): string {
    const token = newToken();
    const record: TokenRecord = { hash: hash(token), role, name, node, createdAt: Date.now() };
    this.ephemeral.set(record.hash, record);
    return token;
  }

  /** Who presented this token, or undefined when it is not one of ours (or has expired). */
  /** Whether `token` is a person's sign-in session: the only kind the console's cookie may carry. */
  isSession(token: string): boolean {
    const record = this.byHash.get(hash(token));
    return record !== undefined && record.user !== undefined && record.purpose === undefined;
  }

  verify(token: string | undefined): Caller | undefined {
    if (!token || token.length > 512) return undefined;
    const digest = hash(token);
    const record = this.byHash.get(digest) ?? this.ephemeral.get(digest);
    if (!record || (record.expiresAt !== undefined && record.expiresAt <= Date.now())) return undefined;
    const caller: Caller = { role: record.role, name: record.name };
    if (record.role === 'agent') caller.node = boundNode(record);
    if (record.user !== undefined) caller.user = record.user;
    if (record.scope) caller.scope = record.scope;
    if (record.purpose === 'robot') caller.robot = { team: record.team!, role: record.teamRole! };
    return caller;
  }

  private async reload(): Promise<void> {
    const { kvs } = await this.store.range(PREFIX);
    const next = new Map<string, TokenRecord & { key: string }>();
    for (const kv of kvs) {
      const record = STORE.tokens.decode(kv.value);
      next.set(record.hash, { ...record, key: kv.key });
    }
    this.byHash = next;
  }
}

/**
 * Agent tokens made before tokens were bound to nodes carry no node: they speak for the node
 * named like the token (what `gantry token create <node>` suggested), and for no other.
 */
function boundNode(record: TokenRecord): string {
  return record.node ?? record.name;
}

/** Whose a scoped token is: a user's own (with the role they have), or a team's robot. */
export type ScopedOwner = { purpose: 'personal'; user: string; role: Role } | { purpose: 'robot'; team: string; teamRole: RobotRole };

/** Personal or robot tokens one user or team may hold. */
const MAX_SCOPED_TOKENS = 50;


function labelOf(record: TokenRecord): string {
  return record.name.slice(record.name.indexOf('/') + 1);
}

function describe(owner: Pick<ScopedOwner, 'purpose'> & { user?: string; team?: string }): string {
  return owner.purpose === 'personal' ? `user ${owner.user}` : `team ${owner.team}`;
}

function scopedInfo(record: TokenRecord): ScopedTokenInfo {
  const out: ScopedTokenInfo = { name: labelOf(record), scope: record.scope ?? [], createdAt: record.createdAt };
  if (record.expiresAt !== undefined) out.expiresAt = record.expiresAt;
  if (record.teamRole !== undefined) out.teamRole = record.teamRole;
  return out;
}

function info(record: TokenRecord): TokenInfo {
  const out: TokenInfo = { name: record.name, role: record.role, createdAt: record.createdAt };
  if (record.role === 'agent') out.node = boundNode(record);
  if (record.expiresAt !== undefined) out.expiresAt = record.expiresAt;
  return out;
}

export function bearer(header: string | undefined): string | undefined {
  if (header === undefined || header.length > 600) return undefined;
  const match = /^Bearer +(\S+)$/i.exec(header);
  return match?.[1];
}
