// API tokens: random, shown once, stored only as a SHA-256 hash. An admin token may do
// everything; an agent token speaks for one node only (Kubernetes' NodeRestriction: the server
// enforces it, not the agent's good manners); a join token connects a new node once, and that
// node is given an agent token of its own.
import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { TokenInfo } from '../model/api.js';
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
  /** For sessions: the signed-in user. */
  user?: string;
}

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

  constructor(private readonly store: Store) {}

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
    if (!record || record.user === undefined) return false;
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
  verify(token: string | undefined): Caller | undefined {
    if (!token || token.length > 512) return undefined;
    const digest = hash(token);
    const record = this.byHash.get(digest) ?? this.ephemeral.get(digest);
    if (!record || (record.expiresAt !== undefined && record.expiresAt <= Date.now())) return undefined;
    const caller: Caller = { role: record.role, name: record.name };
    if (record.role === 'agent') caller.node = boundNode(record);
    if (record.user !== undefined) caller.user = record.user;
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
