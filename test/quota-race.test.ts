// Two servers on one store, each with its own cluster cache, admitting changes to one team at
// once: the one whose cache had not yet seen the other's write must not land over the quota.
// The per-team lock of one server cannot see the other server; the guard key in the store
// does. The second server's cache is held back (as a slow watch would be) at the worst moment:
// after it read the guard, before it writes, until its first write attempt is answered. Real
// store, real services, no HTTP: one embedded store serves one HTTP server, so this race
// cannot be staged through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type Store, type WatchEvent } from '../src/store/index.js';
import { ClusterState } from '../src/server/state.js';
import { EventLog } from '../src/server/services/events.js';
import { AppService } from '../src/server/services/apps.js';
import { QuotaService } from '../src/server/services/quotas.js';
import { TeamService } from '../src/server/services/teams.js';
import { STORE } from '../src/server/keys.js';

interface Hooks {
  held: boolean;
  /** Runs before a read of a key. */
  beforeGet?: (key: string) => Promise<void>;
  /** Runs once a transaction was answered. */
  afterTxn?: (succeeded: boolean) => void;
}

/** The store as a server whose watch lags sees it: events wait while `held`. */
function laggingView(store: Store, hooks: Hooks): { view: Store; release: () => void } {
  const waiting: Array<() => void> = [];
  const view = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'watch') {
        return (prefix: string, onEvents: (events: WatchEvent[]) => void, options?: object) =>
          target.watch(prefix, (events) => (hooks.held ? waiting.push(() => onEvents(events)) : onEvents(events)), options);
      }
      if (prop === 'get') {
        return async (key: string) => {
          await hooks.beforeGet?.(key);
          return target.get(key);
        };
      }
      if (prop === 'txn') {
        return async (request: Parameters<Store['txn']>[0]) => {
          const result = await target.txn(request);
          hooks.afterTxn?.(result.succeeded);
          return result;
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { view, release: () => {
    hooks.held = false;
    for (const deliver of waiting.splice(0)) deliver();
  } };
}

const app = (name: string) => ({ app: name, team: 'shop', entrypoints: { web: { command: ['sleep', '3600'], replicas: 1 } } });

test('two servers racing for the last instance of a quota: the one with the stale cache is refused, never stored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-quota-race-'));
  const store = openSqliteStore(join(dir, 'store.db'));
  const hooks: Hooks = { held: false };
  const lagging = laggingView(store, hooks);
  const serverA = await ClusterState.load(store);
  const serverB = await ClusterState.load(lagging.view);
  try {
    const events = new EventLog(store);
    const quotasA = new QuotaService(store, serverA, events);
    const appsA = new AppService(store, serverA, events, new Set(), undefined, quotasA);
    const appsB = new AppService(lagging.view, serverB, events, new Set(), undefined, new QuotaService(lagging.view, serverB, events));
    await new TeamService(store, serverA, events, async () => true).create('shop', undefined, 'admin');
    await quotasA.set('shop', { env: 'default' }, { instances: 1 }, 'admin');

    // B has read the quota and the guard; now, before B reads its app and writes it, A takes the
    // last instance, and B's cache does not hear of it until B's first write was answered.
    let raced = false;
    const answers: boolean[] = [];
    hooks.beforeGet = async (key) => {
      if (key !== STORE.apps.key('b-app') || raced) return;
      raced = true;
      hooks.held = true;
      await appsA.apply(app('a-app'), 'alice');
      hooks.afterTxn = (succeeded) => {
        answers.push(succeeded);
        lagging.release();
      };
    };
    await assert.rejects(appsB.apply(app('b-app'), 'bob'), /^Error: app b-app refused: team shop, env default: instances 1 of 1 used, this change needs 1 more$/);
    assert.ok(raced, 'the race was staged');
    assert.deepEqual(answers.slice(0, 1), [false], "B's write on its stale check was refused by the store");
    assert.equal(await store.get(STORE.apps.key('b-app')), undefined, 'nothing stored over the quota');
  } finally {
    lagging.release();
    serverA.close();
    serverB.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
