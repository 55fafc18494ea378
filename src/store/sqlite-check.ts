// What the server checks of an SQLite store file before it trusts it. An empty file (a store
// wiped, truncated, restored from the wrong place) would otherwise look like a first start: a
// new cluster with nothing in it, whose agents would then be told to run nothing. A file with
// damaged pages would start silently and accept writes. Both are refused with a message that
// says what to do; an operator who really wants a new cluster says so with --init.
import { statSync, openSync, closeSync, constants } from 'node:fs';
import Database from 'better-sqlite3';

export class StoreRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreRefusedError';
  }
}

/**
 * Throws StoreRefusedError unless `path` is absent (a first start), or a readable SQLite
 * database that passes `pragma quick_check`, or empty and `init` is set.
 */
export function checkSqliteFile(path: string, options: { init?: boolean } = {}): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StoreRefusedError(`cannot read the store ${path}: ${(err as Error).message}`);
  }
  try {
    closeSync(openSync(path, constants.O_RDONLY));
  } catch (err) {
    throw new StoreRefusedError(`cannot read the store ${path}: ${(err as Error).message}`);
  }
  if (size === 0) {
    if (options.init) return;
    throw new StoreRefusedError(
      `the store ${path} is an empty file. If it held a cluster, it was wiped or truncated: restore it from a backup (see docs/operations.md). ` +
        'To begin a new, empty cluster in its place, start with --init; agents then keep what they run and report it for adoption (gantry node adopt).',
    );
  }
  let problems: string[];
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      problems = (db.pragma('quick_check(5)') as { quick_check: string }[]).map((row) => row.quick_check).filter((line) => line !== 'ok');
    } finally {
      db.close();
    }
  } catch (err) {
    throw new StoreRefusedError(`the store ${path} cannot be opened as a database (${(err as Error).message}): restore it from a backup (see docs/operations.md)`);
  }
  if (problems.length > 0) {
    throw new StoreRefusedError(`the store ${path} is damaged (SQLite quick_check: ${problems.join('; ')}): restore it from a backup (see docs/operations.md); the server will not write to it`);
  }
}
