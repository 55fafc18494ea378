// API tokens: random, shown once, stored only as a SHA-256 hash. An admin token may do
// everything; an agent token may only open the agent connection.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';

export type Role = 'admin' | 'agent';

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

  async create(role: Role, name: string, token = newToken()): Promise<string> {
    const record: TokenRecord = { hash: hash(token), role, name, createdAt: Date.now() };
    await this.store.put(`${PREFIX}${record.hash.slice(0, 16)}`, JSON.stringify(record));
    await this.reload();
    return token;
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
