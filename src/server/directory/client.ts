// Asks the company directory (LDAP, Active Directory) whether a name and password are a person's,
// and which groups they are in. One connection per sign-in, closed after it: the service account
// looks the person up (exactly one entry, or nobody), the person's own bind checks the password,
// and the service account reads their groups. What the person typed goes into the search filter
// only escaped (RFC 4515), so "*" or ")(uid=*" is a name like any other, not a wildcard.
import { BusyError, Client, Filter, InvalidCredentialsError, ResultCodeError, SizeLimitExceededError, UnavailableError, type Entry } from 'ldapts';
import type { DirectoryConfig } from './config.js';

/** The directory could not be asked (down, unreachable, too slow, refused the service account). */
export class DirectoryUnavailable extends Error {
  readonly statusCode = 503;
}

export type Authentication =
  | { ok: true; dn: string; groups: string[] }
  /** `reason` is for the event log only: the person is told nothing more than "wrong user name or password". */
  | { ok: false; reason: string; unknown?: boolean };

export class CompanyDirectory {
  constructor(private readonly config: DirectoryConfig) {}

  get url(): string {
    return this.config.url;
  }

  async authenticate(user: string, password: string): Promise<Authentication> {
    // An LDAP simple bind with a DN and no password is an "unauthenticated bind", which servers
    // answer with success: it must never reach the directory.
    if (password === '') return { ok: false, reason: 'empty password' };
    const client = this.client();
    try {
      if (this.config.startTls) await this.ask(() => client.startTLS(this.tls()), 'StartTLS');
      await this.serviceBind(client);
      const person = await this.findPerson(client, user);
      if (!person) return { ok: false, reason: 'not found in the directory', unknown: true };
      try {
        await this.ask(() => client.bind(person.dn, password), 'bind');
      } catch (err) {
        if (err instanceof InvalidCredentialsError) return { ok: false, reason: 'wrong password' };
        if (err instanceof DirectoryUnavailable) throw err;
        return { ok: false, reason: `the directory refused the bind: ${(err as Error).message}` };
      }
      const groups = await this.groupsOf(client, person);
      if (groups === undefined) return { ok: false, reason: `in more than ${this.config.groups.limit} groups (groups.limit)` };
      return { ok: true, dn: person.dn, groups };
    } finally {
      await client.unbind().catch(() => {});
    }
  }

  private client(): Client {
    return new Client({
      url: this.config.url,
      timeout: this.config.timeout,
      connectTimeout: this.config.timeout,
      ...(this.config.url.startsWith('ldaps:') ? { tlsOptions: this.tls() } : {}),
    });
  }

  private tls() {
    // `host` names whom the certificate must name: a StartTLS upgrade has only the socket, and
    // Node would check the certificate against "localhost".
    const host = new URL(this.config.url).hostname.replace(/^\[(.*)\]$/, '$1');
    return { host, minVersion: 'TLSv1.2' as const, ...(this.config.ca !== undefined ? { ca: this.config.ca } : {}) };
  }

  private async serviceBind(client: Client): Promise<void> {
    try {
      await this.ask(() => client.bind(this.config.bind.dn, this.config.bind.password), 'bind');
    } catch (err) {
      if (err instanceof DirectoryUnavailable) throw err;
      throw new DirectoryUnavailable(`the company directory at ${this.config.url} refused Gantry's service account (bind.dn ${this.config.bind.dn}): ${(err as Error).message}`);
    }
  }

  /** The one entry the filter finds; undefined for none or several (a name must say who). */
  private async findPerson(client: Client, user: string): Promise<Entry | undefined> {
    const filter = this.config.users.filter.replaceAll('{user}', Filter.escape(user));
    const attributes = this.config.groups.attribute !== undefined ? [this.config.groups.attribute] : ['1.1'];
    try {
      const { searchEntries } = await this.ask(() => client.search(this.config.users.base, { scope: 'sub', filter, attributes, sizeLimit: 2 }), 'search');
      return searchEntries.length === 1 ? searchEntries[0] : undefined;
    } catch (err) {
      if (err instanceof SizeLimitExceededError) return undefined;
      throw err;
    }
  }

  /** The DNs of the person's groups; undefined when there are more than groups.limit. */
  private async groupsOf(client: Client, person: Entry): Promise<string[] | undefined> {
    const { attribute, search, limit } = this.config.groups;
    if (attribute !== undefined) {
      const key = Object.keys(person).find((k) => k.toLowerCase() === attribute.toLowerCase());
      const value = key === undefined ? [] : person[key]!;
      const values = (Array.isArray(value) ? value : [value]).map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
      return values.length > limit ? undefined : values;
    }
    // Read as the service account: the person may not be allowed to read group entries.
    await this.serviceBind(client);
    const filter = search!.filter.replaceAll('{dn}', Filter.escape(person.dn));
    try {
      const { searchEntries } = await this.ask(() => client.search(search!.base, { scope: 'sub', filter, attributes: ['1.1'], sizeLimit: limit }), 'search');
      return searchEntries.map((e) => e.dn);
    } catch (err) {
      if (err instanceof SizeLimitExceededError) return undefined;
      throw err;
    }
  }

  /**
   * Runs one LDAP operation. An answer of the directory's (a result code) is the caller's to
   * judge; anything else (refused connection, timeout, TLS failure, a busy server) means the
   * directory did not answer.
   */
  private async ask<T>(operation: () => Promise<T>, what: string): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      if (err instanceof ResultCodeError && !(err instanceof BusyError) && !(err instanceof UnavailableError)) throw err;
      throw new DirectoryUnavailable(`the company directory at ${this.config.url} did not answer (${what}: ${(err as Error).message || (err as NodeJS.ErrnoException).code || 'no answer'})`);
    }
  }
}
