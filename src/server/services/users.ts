// People who sign in: created by an admin (invitations come with teams), each with a password
// kept only as a scrypt hash, signing in for a session token that expires. A failed sign-in
// says nothing of whether the user exists, takes as long as a successful one, and is counted:
// too many for one user name (or from one address) in a short while and sign-ins are refused
// for a while, so a password cannot be guessed at the speed of the network. With a company
// directory configured (directory-users.ts), a name that is no local user's is asked there; a
// local user with a password always signs in here, so break-glass admins work with it down.
import type { Store } from '../../store/store.js';
import type { UserRecord } from '../../model/types.js';
import type { UserInfo } from '../../model/api.js';
import type { TokenAuth } from '../auth.js';
import type { EventLog } from './events.js';
import { STORE } from '../keys.js';
import { casUpdate } from '../cas.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { DECOY_HASH, hashPassword, verifyPassword } from '../passwords.js';
import { NAME } from '../../model/names.js';
import { DirectoryUnavailable } from '../directory/client.js';
import type { DirectoryUsers } from './directory-users.js';

export const DEFAULT_SESSION_MS = 12 * 3_600_000;
/**
 * Failed sign-ins a user name, or an address, may have within the window before it must wait.
 * An address gets more: many people may share one (a NAT, a proxy).
 */
const FAILURES_PER_USER = 5;
const FAILURES_PER_ADDRESS = 20;
const FAILURE_WINDOW_MS = 5 * 60_000;
/** Most names and addresses whose failures are remembered: an attacker cycling names must not grow the server's memory. */
const MAX_TRACKED = 10_000;

/** Refused before the password was even checked: too many failures lately. */
export class TooManyAttempts extends Error {
  readonly statusCode = 429;
}

/** Wrong user name or password (the same answer for both). */
export class SignInRefused extends Error {
  readonly statusCode = 401;
}

export class UserService {
  private readonly failures = new Map<string, number[]>();
  private directory: DirectoryUsers | undefined;

  constructor(
    private readonly store: Store,
    private readonly auth: TokenAuth,
    private readonly events: EventLog,
  ) {}

  /** Signs in the people of the company directory too (set once at start, when one is configured). */
  useDirectory(directory: DirectoryUsers): void {
    this.directory = directory;
  }

  async list(): Promise<UserInfo[]> {
    const { kvs } = await this.store.range(STORE.users.prefix);
    return kvs.map((kv) => view(STORE.users.decode(kv.value))).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One user (without the password hash), or undefined when there is none by that name. */
  async find(name: string): Promise<UserInfo | undefined> {
    const kv = await this.store.get(STORE.users.key(name));
    return kv ? view(STORE.users.decode(kv.value)) : undefined;
  }

  async create(name: string, password: string, role: UserRecord['role'], by: string): Promise<UserInfo> {
    const passwordHash = await hashPassword(password);
    const now = Date.now();
    const written = await casUpdate(this.store, STORE.users.key(name), STORE.users, (current) => {
      if (current) throw new ConflictError(`a user named "${name}" exists already`);
      return { name, passwordHash, role, createdAt: now, createdBy: by, updatedAt: now };
    }, { attempts: 1, what: `user ${name}` });
    this.events.note({ level: 'info', type: 'user.created', message: `user ${name} (${role}) created by ${by}` });
    return view(written.value!);
  }

  /** A new password (and role, if given); every session of the user ends. */
  async update(name: string, change: { password?: string; role?: UserRecord['role'] }, by: string): Promise<UserInfo> {
    const passwordHash = change.password === undefined ? undefined : await hashPassword(change.password);
    const written = await casUpdate(this.store, STORE.users.key(name), STORE.users, (current) => {
      if (!current) throw new NotFoundError(`no user named "${name}"`);
      if (passwordHash && current.source === 'directory') throw new ConflictError(`${name} signs in through the company directory: their password is set there, not in Gantry`);
      return { ...current, ...(passwordHash ? { passwordHash } : {}), ...(change.role ? { role: change.role } : {}), updatedAt: Date.now() };
    }, { what: `user ${name}` });
    const ended = await this.auth.endSessionsOf(name);
    this.events.note({ level: 'info', type: 'user.updated', message: `user ${name}: ${[change.password !== undefined ? 'password' : '', change.role ? `role ${change.role}` : ''].filter(Boolean).join(', ')} changed by ${by}${ended ? `; ${ended} session(s) ended` : ''}` });
    return view(written.value!);
  }

  async remove(name: string, by: string): Promise<void> {
    await casUpdate(this.store, STORE.users.key(name), STORE.users, (current) => {
      if (!current) throw new NotFoundError(`no user named "${name}"`);
      return null;
    }, { what: `user ${name}` });
    const ended = await this.auth.endSessionsOf(name);
    this.events.note({ level: 'warning', type: 'user.removed', message: `user ${name} removed by ${by}${ended ? `; ${ended} session(s) ended` : ''}` });
  }

  /** Checks the password and opens a session; TooManyAttempts or SignInRefused otherwise. */
  async signIn(name: string, password: string, from: string, ttlMs = DEFAULT_SESSION_MS): Promise<{ user: string; role: UserRecord['role']; token: string; expiresAt: number }> {
    const keys = [`user:${name}`, `address:${from}`];
    if (this.recentFailures(keys[0]!) >= FAILURES_PER_USER || this.recentFailures(keys[1]!) >= FAILURES_PER_ADDRESS) {
      this.events.note({ level: 'warning', type: 'auth.login_refused', message: `sign-in as ${name} from ${from} refused: too many failed attempts in ${FAILURE_WINDOW_MS / 60_000} minutes` });
      throw new TooManyAttempts(`too many failed sign-ins for this user or from this address: try again in a few minutes`);
    }
    // Any text may be tried as a name (it is escaped for the directory), but only a valid one is a store key.
    const kv = NAME.test(name) ? await this.store.get(STORE.users.key(name)) : undefined;
    const record = kv ? STORE.users.decode(kv.value) : undefined;
    let signedIn: Pick<UserRecord, 'name' | 'role'> | undefined;
    let refusal = '';
    if (this.directory && record?.passwordHash === undefined) {
      try {
        const answer = await this.directory.signIn(name, password);
        if ('user' in answer) signedIn = answer.user;
        else refusal = ` (company directory: ${answer.refused})`;
      } catch (err) {
        if (!(err instanceof DirectoryUnavailable)) throw err;
        this.events.note({ level: 'error', type: 'auth.directory_unavailable', message: `sign-in as ${name} from ${from} not decided: ${err.message}` });
        throw new DirectoryUnavailable(`the company directory at ${this.directory.url} did not answer: sign-in is not possible for directory users now (local users are not affected)`);
      }
    } else {
      // An unknown user costs a hash too: the answer's timing must not tell who exists.
      const matches = await verifyPassword(password, record?.passwordHash ?? (await DECOY_HASH));
      if (record?.passwordHash !== undefined && matches) signedIn = record;
    }
    if (!signedIn) {
      for (const key of keys) this.fail(key);
      this.events.note({ level: 'warning', type: 'auth.login_failed', message: `failed sign-in as ${name} from ${from}${refusal}` });
      throw new SignInRefused('wrong user name or password');
    }
    for (const key of keys) this.failures.delete(key);
    const session = await this.auth.createSession(signedIn.name, signedIn.role, ttlMs);
    this.events.note({ level: 'info', type: 'auth.login', message: `${signedIn.name} signed in from ${from}${record?.passwordHash === undefined && this.directory ? ' through the company directory' : ''}` });
    return { user: signedIn.name, role: signedIn.role, ...session };
  }

  /**
   * For other ways in than a password (an invitation's code): refuses, with TooManyAttempts,
   * an address that failed too often lately, counting the failures sign-ins count.
   */
  refuseIfFailingFrom(from: string): void {
    if (this.recentFailures(`address:${from}`) >= FAILURES_PER_ADDRESS) throw new TooManyAttempts('too many failed attempts from this address: try again in a few minutes');
  }

  failedFrom(from: string): void {
    this.fail(`address:${from}`);
  }

  private recentFailures(key: string): number {
    const since = Date.now() - FAILURE_WINDOW_MS;
    const times = (this.failures.get(key) ?? []).filter((t) => t > since);
    if (times.length === 0) this.failures.delete(key);
    else this.failures.set(key, times);
    return times.length;
  }

  private fail(key: string): void {
    if (!this.failures.has(key) && this.failures.size >= MAX_TRACKED) {
      // Forget the oldest name first (a Map iterates in insertion order).
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(key, [...(this.failures.get(key) ?? []), Date.now()].slice(-FAILURES_PER_ADDRESS));
  }
}

function view(record: UserRecord): UserInfo {
  const { passwordHash: _hash, ...rest } = record;
  return { ...rest, source: record.source ?? 'local' };
}
