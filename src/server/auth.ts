// API tokens: random, shown once, stored only as a SHA-256 hash. An admin token may do
// everything; an agent token may only open the agent connection.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { TokenInfo } from '../model/api.js';
import { ConflictError, NotFoundError } from './services/apps.js';

export type Role = TokenInfo['role'];

export const TOKEN_NAME = /^[a-z0-9]([a-z0-9._-]{0,62})$/;

interface TokenRecord {
  hash: string;
  role: Role;
  name: string;
  createdAt: number;
}

const PREFIX = '/auth/tokens/';

function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return `gty_${randomBytes(24).toString('base64url')}`;
}

export class TokenAuth {
  private cache = new Map<string, TokenRecord>();
  /** Tokens that live only as long as this process (the embedded agent of `gantry up`). */
  private readonly ephemeral = new Map<string, TokenRecord>();

  constructor(private readonly store: Store) {}

  /**
   * Loads the stored tokens; on the very first start creates the admin token (or takes the
   * one given, for scripted set-ups) and returns it so the caller can show it once.
   */
  async init(bootstrapToken?: string): Promise<string | undefined> {
    await this.reload();
    if (this.cache.size > 0) return undefined;
    const token = bootstrapToken ?? newToken();
    await this.create('admin', 'admin', token);
    return token;
  }

  /** Stores a new named token and returns it (the only time it is seen). Names are unique. */
  async create(role: Role, name: string, token = newToken()): Promise<string> {
    await this.reload();
    if ([...this.cache.values()].some((r) => r.name === name)) throw new ConflictError(`a token named "${name}" exists already; revoke it first or pick another name`);
    const record: TokenRecord = { hash: hash(token), role, name, createdAt: Date.now() };
    await this.store.put(`${PREFIX}${record.hash.slice(0, 16)}`, JSON.stringify(record));
    await this.reload();
    return token;
  }

  async list(): Promise<TokenInfo[]> {
    await this.reload();
    return [...this.cache.values()].map(({ name, role, createdAt }) => ({ name, role, createdAt })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Deletes the named token: it stops working at once (an agent using it is refused when it reconnects). */
  async revoke(name: string): Promise<TokenInfo> {
    await this.reload();
    const found = [...this.cache].find(([, r]) => r.name === name);
    if (!found) throw new NotFoundError(`no token named "${name}"`);
    const [key, record] = found;
    if (record.role === 'admin' && [...this.cache.values()].filter((r) => r.role === 'admin').length === 1) {
      throw new ConflictError(`"${name}" is the last admin token: create another admin token before revoking it`);
    }
    await this.store.delete(key);
    await this.reload();
    return { name: record.name, role: record.role, createdAt: record.createdAt };
  }

  ephemeralToken(role: Role, name: string): string {
    const token = newToken();
    const record: TokenRecord = { hash: hash(token), role, name, createdAt: Date.now() };
    this.ephemeral.set(record.hash, record);
    return token;
  }

  /** The role of a presented token, or undefined when it is not one of ours. */
  verify(token: string | undefined): { role: Role; name: string } | undefined {
    if (!token) return undefined;
    const presented = Buffer.from(hash(token), 'hex');
    for (const record of [...this.cache.values(), ...this.ephemeral.values()]) {
      const stored = Buffer.from(record.hash, 'hex');
      if (stored.length === presented.length && timingSafeEqual(stored, presented)) return { role: record.role, name: record.name };
    }
    return undefined;
  }

  private async reload(): Promise<void> {
    const { kvs } = await this.store.range(PREFIX);
    this.cache = new Map(kvs.map((kv) => [kv.key, JSON.parse(kv.value) as TokenRecord]));
  }
}

export function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}
