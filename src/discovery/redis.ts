// Publishes registry and instance changes to Redis pub/sub, for consumers such as an
// OpenResty upstream that react to pushes (Eru broadcast container state this way).
// Channels: `<prefix>:registry` and `<prefix>:registry:<app>` (likewise `instances`), each
// message the JSON of one change: { revision, type: put|delete, key, value }.
import { createClient, type RedisClientType } from 'redis';
import type { Store, Watcher } from '../store/store.js';

const FOLLOWED: Record<string, string> = { '/registry/': 'registry', '/instances/': 'instances' };

export class RedisPublisher {
  private client: RedisClientType | undefined;
  private readonly watchers: Watcher[] = [];

  constructor(
    private readonly store: Store,
    private readonly url: string,
    private readonly channelPrefix = 'gantry',
    private readonly onError: (message: string) => void = () => {},
  ) {}

  async start(): Promise<void> {
    const client: RedisClientType = createClient({ url: this.url });
    client.on('error', (err: Error) => this.onError(`redis ${this.url}: ${err.message}`));
    await client.connect();
    this.client = client;
    const from = (await this.store.revision()) + 1;
    for (const [prefix, kind] of Object.entries(FOLLOWED)) {
      this.watchers.push(
        this.store.watch(prefix, (events) => {
          for (const event of events) {
            const app = event.kv.key.slice(prefix.length).split('/')[0]!;
            const message = JSON.stringify({ revision: event.revision, type: event.type, key: event.kv.key, value: event.type === 'put' ? JSON.parse(event.kv.value) : undefined });
            // Commands queue while the connection is down and go out in order once it is back.
            for (const channel of [`${this.channelPrefix}:${kind}`, `${this.channelPrefix}:${kind}:${app}`]) {
              client.publish(channel, message).catch((err: Error) => this.onError(`publishing to ${channel}: ${err.message}`));
            }
          }
        }, { fromRevision: from }),
      );
    }
  }

  async stop(): Promise<void> {
    for (const watcher of this.watchers.splice(0)) watcher.close();
    await this.client?.quit().catch(() => {});
  }
}
