// A Store that times each call it passes on: the server installs it around its store (main.ts)
// so that every read and write it makes is measured in one place, whoever makes it. It knows
// nothing of Prometheus: `observe` gets the operation's name and its duration in seconds.
import type { Store } from './store.js';

/** The calls timed: each one a round trip to the store. watch and close are passed on as they are. */
export type StoreOperation = 'get' | 'range' | 'put' | 'delete' | 'txn' | 'grantLease' | 'keepAlive' | 'revokeLease' | 'leaseTimeToLive' | 'revision' | 'compact';

export function timedStore(store: Store, observe: (operation: StoreOperation, seconds: number) => void): Store {
  const timed = <A extends unknown[], R>(operation: StoreOperation, call: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    const started = performance.now();
    try {
      return await call(...args);
    } finally {
      // A failed call took its time too (a locked file, a full disk): counted, not lost.
      observe(operation, (performance.now() - started) / 1000);
    }
  };
  return {
    get: timed('get', (key) => store.get(key)),
    range: timed('range', (prefix, options) => store.range(prefix, options)),
    put: timed('put', (key, value, options) => store.put(key, value, options)),
    delete: timed('delete', (key) => store.delete(key)),
    txn: timed('txn', (request) => store.txn(request)),
    grantLease: timed('grantLease', (ttlMs) => store.grantLease(ttlMs)),
    keepAlive: timed('keepAlive', (lease) => store.keepAlive(lease)),
    revokeLease: timed('revokeLease', (lease) => store.revokeLease(lease)),
    leaseTimeToLive: timed('leaseTimeToLive', (lease) => store.leaseTimeToLive(lease)),
    revision: timed('revision', () => store.revision()),
    compact: timed('compact', (revision) => store.compact(revision)),
    watch: (prefix, onEvents, options) => store.watch(prefix, onEvents, options),
    close: () => store.close(),
  };
}
