// Credentials for private image registries (`gantry registry login <host>`). The password is
// sealed before it is stored and is never answered to anyone: the API lists hosts and user
// names only. It is opened for two uses: the server resolving a tag to a digest, and the agents
// that pull from the host (sent with their assignments, kept in their memory only).
import type { Store } from '../../store/store.js';
import type { RegistryLoginRecord } from '../../model/types.js';
import type { RegistryLoginInfo } from '../../model/api.js';
import { normalRegistryHost, registryOf } from '../../model/image-ref.js';
import type { ClusterState } from '../state.js';
import type { SecretBox } from '../secret-box.js';
import type { EventLog } from './events.js';
import type { RegistryCredentials } from '../images/registry-client.js';
import { STORE } from '../keys.js';
import { casUpdate } from '../cas.js';
import { resealAll } from '../reseal.js';
import { NotFoundError } from '../errors.js';

type RegistryLoginView = RegistryLoginInfo;

export class RegistryLoginService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly box: SecretBox,
    private readonly events: EventLog,
  ) {}

  list(): RegistryLoginView[] {
    return [...this.state.registryLogins.values()].map(view).sort((a, b) => a.host.localeCompare(b.host));
  }

  async set(rawHost: string, username: string, password: string, user: string): Promise<RegistryLoginView> {
    const host = normalRegistryHost(rawHost);
    const key = STORE.registryLogins.key(host);
    const written = await casUpdate(this.store, key, STORE.registryLogins, (current) => {
      const now = Date.now();
      return {
        host,
        username,
        password: this.box.seal(password, key),
        team: current?.team ?? null,
        createdAt: current?.createdAt ?? now,
        createdBy: current?.createdBy ?? user,
        updatedAt: now,
        updatedBy: user,
      };
    }, { what: `registry login ${host}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'registry.login', message: `credentials for registry ${host} (user ${username}) ${written.value!.createdAt === written.value!.updatedAt ? 'stored' : 'replaced'} by ${user}` });
    return view(written.value!);
  }

  async remove(rawHost: string, user: string): Promise<void> {
    const host = normalRegistryHost(rawHost);
    const written = await casUpdate(this.store, STORE.registryLogins.key(host), STORE.registryLogins, (current) => {
      if (!current) throw new NotFoundError(`no credentials stored for registry ${host}`);
      return null;
    }, { what: `registry login ${host}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'registry.logout', message: `credentials for registry ${host} removed by ${user}` });
  }

  /** Seals again with the current key every password sealed with a previous one (key rotation); how many. */
  reseal(): Promise<number> {
    const stale = [...this.state.registryLogins.values()].filter((r) => !this.box.isCurrent(r.password)).map((r) => STORE.registryLogins.key(r.host));
    return resealAll(this.store, this.box, stale, STORE.registryLogins, { get: (r) => r.password, set: (r, password) => ({ ...r, password }) });
  }

  /** The opened credentials for `host`, if any are stored. Throws when they do not open (another key). */
  credentialsFor(rawHost: string): RegistryCredentials | undefined {
    const host = normalRegistryHost(rawHost);
    const record = this.state.registryLogins.get(host);
    if (!record) return undefined;
    return { username: record.username, password: this.box.open(record.password, STORE.registryLogins.key(host)) };
  }

  /**
   * Credentials for the registries `images` pull from, by host: what an agent needs for them.
   * A login that does not open is left out (the pull then fails with the registry's own
   * "unauthorized"), and said once as an event.
   */
  credentialsForImages(images: Iterable<string>): Record<string, RegistryCredentials> {
    const out: Record<string, RegistryCredentials> = {};
    if (this.state.registryLogins.size === 0) return out;
    for (const image of images) {
      const host = registryOf(image);
      if (host === undefined || Object.hasOwn(out, host)) continue;
      try {
        const found = this.credentialsFor(host);
        if (found) out[host] = found;
      } catch (err) {
        this.reportUnopened(host, err);
      }
    }
    return out;
  }

  private readonly reported = new Set<string>();

  private reportUnopened(host: string, err: unknown): void {
    if (this.reported.has(host)) return;
    this.reported.add(host);
    this.events.note({ level: 'error', type: 'registry.login_unusable', message: `the stored credentials for registry ${host} cannot be used: ${err instanceof Error ? err.message : String(err)}` });
  }
}

function view(record: RegistryLoginRecord): RegistryLoginView {
  const { password: _password, ...rest } = record;
  return rest;
}
