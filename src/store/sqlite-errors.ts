// What the embedded store (sqlite.ts) makes of SQLite's errors. A full disk, a failing disk, a
// file another process holds locked or a read-only file are conditions of the host, not bugs
// of the caller: they become StoreFullError / StoreUnavailableError (503 at the API, with a
// message that says what to do) instead of an opaque "database or disk is full" 500.
//
// SQLite reports no space as SQLITE_FULL from its writes, but as an SQLITE_IOERR_* variant
// from some paths (growing the -shm wal-index, fsync, truncate), where the code alone does not
// say why. For those, the file system is asked: with (nearly) no space or no inode left, the
// error is a full store too.
import { statfsSync } from 'node:fs';
import { StoreFullError, StoreUnavailableError } from './store.js';

/** Below this many free bytes, an I/O error on the store's file system is taken for a full disk. */
const NEARLY_FULL_BYTES = 1024 * 1024;

/** Codes (primary, before any `_` variant) that mean the store cannot be used now, but may be later. */
const UNAVAILABLE = new Set(['SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_CANTOPEN', 'SQLITE_NOMEM', 'SQLITE_PROTOCOL', 'SQLITE_NOLFS']);

function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Whether the file system holding `dir` has (nearly) no room left; false when it cannot be asked. */
export function nearlyFull(dir: string): boolean {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize < NEARLY_FULL_BYTES || (fs.files > 0 && fs.ffree === 0);
  } catch {
    return false;
  }
}

/**
 * The error to throw for an error SQLite raised on the store whose files live in `dir`: a
 * StoreFullError, a StoreUnavailableError, or `error` itself (a constraint, a bug: a 500).
 */
export function storeErrorOf(error: unknown, dir: string): unknown {
  if (error instanceof StoreUnavailableError) return error;
  const code = sqliteCode(error);
  if (code === undefined) return error;
  if (code === 'SQLITE_FULL') return new StoreFullError(dir, { cause: error });
  const primary = code.split('_').slice(0, 2).join('_');
  if (!UNAVAILABLE.has(primary)) return error;
  if (primary === 'SQLITE_IOERR' && nearlyFull(dir)) return new StoreFullError(dir, { cause: error });
  return new StoreUnavailableError(`store unavailable: ${(error as Error).message} (${code}) on ${dir}`, { cause: error });
}
