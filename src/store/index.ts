// Opens the store named by a URL. Today only the embedded SQLite store exists.
import type { Store } from './store.js';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite.js';

export * from './store.js';
export { checkSqliteFile, StoreRefusedError } from './sqlite-check.js';
export { SqliteStore, openSqliteStore, LeaseNotFoundError, prefixEnd, type SqliteStoreOptions } from './sqlite.js';

/**
 * `sqlite:<path>`, `sqlite://<path>` (so `sqlite:///var/lib/gantry/store.db` is absolute),
 * `sqlite::memory:` or a plain file path → the embedded SQLite store.
 * `etcd://...` is reserved for the etcd store, which is not built yet.
 */
export function openStore(url: string, options?: SqliteStoreOptions): Store {
  return openSqliteStore(sqlitePathOf(url), options);
}

/** The SQLite file a store URL names (`:memory:` for an in-memory store); throws for other stores. */
export function sqlitePathOf(url: string): string {
  const trimmed = url.trim();
  if (trimmed === '') throw new Error('store URL is empty');
  if (/^etcd(\+[a-z]+)?:/i.test(trimmed)) {
    throw new Error(`the etcd store is not built yet (got ${url}); use sqlite:<path> or a file path`);
  }
  let path: string;
  if (/^sqlite:/i.test(trimmed)) {
    path = trimmed.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new Error(`unsupported store URL ${url}: use sqlite:<path> or a file path`);
  } else {
    path = trimmed;
  }
  if (path === '') throw new Error(`store URL ${url} has no path`);
  return path;
}
