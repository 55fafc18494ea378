// Files and commands of the upstream renderer (renderer.ts): installing a rendered file
// atomically with a backup to roll back to (and removing one the same way), running the check
// and reload commands, and the process-wide lock that install + check + reload run under.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const MAX_ERROR_CHARS = 4000;

let installLock: Promise<unknown> = Promise.resolve();
/** Runs fn after every earlier call has finished (process-wide). */
export function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = installLock.then(fn, fn);
  installLock = run.catch(() => undefined);
  return run;
}

export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function unlinkQuietly(path: string): Promise<void> {
  await fs.unlink(path).catch(() => undefined);
}

async function syncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // best effort: some file systems refuse to fsync a directory
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

export interface Installed {
  /** Puts the previous file back (or removes the new one when there was none). */
  rollback(): Promise<void>;
  /** Drops the backup. */
  commit(): Promise<void>;
}

/**
 * Writes `text` to a temp file next to `output` (dot-prefixed, ending in .tmp, so an
 * `include dir/*.conf` never picks it up), fsyncs it, hard-links the current file to a backup,
 * and renames the temp file over `output`.
 */
export async function install(output: string, text: string): Promise<Installed> {
  const dir = dirname(output);
  const base = basename(output);
  const tmp = join(dir, `.${base}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const backup = join(dir, `.${base}.gantry-prev`);
  let mode = 0o644;
  try {
    mode = (await fs.stat(output)).mode & 0o7777;
  } catch {
    // no previous file
  }
  let hasBackup = false;
  try {
    const handle = await fs.open(tmp, 'wx', mode);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.chmod(mode); // the umask may have narrowed it
      await handle.sync();
    } finally {
      await handle.close();
    }
    await unlinkQuietly(backup);
    try {
      await fs.link(output, backup);
      hasBackup = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') {
        // a file system without hard links: a copy does as well
        await fs.copyFile(output, backup);
        hasBackup = true;
      }
    }
    await fs.rename(tmp, output);
    await syncDir(dir);
  } catch (err) {
    await unlinkQuietly(tmp);
    if (hasBackup) await unlinkQuietly(backup);
    throw err;
  }
  return {
    async rollback() {
      if (hasBackup) await fs.rename(backup, output);
      else await unlinkQuietly(output);
      await syncDir(dir);
    },
    async commit() {
      if (hasBackup) await unlinkQuietly(backup);
    },
  };
}

/**
 * Removes `output` (a per-app file whose app is gone) by renaming it to the backup, so a
 * failing check can put the very same file back. Nothing to do when it does not exist.
 */
export async function remove(output: string): Promise<Installed> {
  const dir = dirname(output);
  const backup = join(dir, `.${basename(output)}.gantry-prev`);
  await unlinkQuietly(backup);
  try {
    await fs.rename(output, backup);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { rollback: async () => {}, commit: async () => {} };
  }
  await syncDir(dir);
  return {
    async rollback() {
      await fs.rename(backup, output);
      await syncDir(dir);
    },
    async commit() {
      await unlinkQuietly(backup);
    },
  };
}

/** Runs argv (no shell); resolves with an error message, or undefined on success. */
export function runCommand(what: string, argv: string[], timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (!file) return resolve(`${what} command is empty`);
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(undefined);
      const output = (String(stderr ?? '').trim() || String(stdout ?? '').trim()).slice(-MAX_ERROR_CHARS);
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: string | number | null };
      let why: string;
      if (e.code === 'ENOENT') why = `command not found: ${file}`;
      else if (e.killed && e.signal) why = `timed out after ${timeoutMs}ms`;
      else if (typeof e.code === 'number') why = `exit code ${e.code}`;
      else if (e.signal) why = `killed by ${e.signal}`;
      else why = e.message;
      resolve(`${what} (${argv.join(' ')}) failed: ${why}${output ? `: ${output}` : ''}`);
    });
  });
}
