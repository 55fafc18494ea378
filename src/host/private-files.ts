// Files and directories holding Gantry's state are private to the user Gantry runs as: the store,
// the agent's cache and the process runtime's records hold env values, i.e. secrets. This module
// owns those modes: directories 0700, files 0600, on creation and, for state an older version left
// 0755/0644, when Gantry starts (makePrivate, ensurePrivateDir). Files are replaced atomically
// (a temp file created 0600, then renamed over the old one), so a failed write leaves the previous
// file intact. The process umask is never changed: it would reach the processes Gantry starts.
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

const code = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** mkdir -p with 0700 (every directory it creates), and chmod 0700 of `path` when it existed. */
export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  if ((statSync(path).mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(path, PRIVATE_DIR_MODE);
}

export async function ensurePrivateDirAsync(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (((await stat(path)).mode & 0o777) !== PRIVATE_DIR_MODE) await chmod(path, PRIVATE_DIR_MODE);
}

/**
 * chmod 0700 (a directory) or 0600 (anything else) when it exists and has another mode; nothing
 * when it does not exist. Follows symlinks. Other errors (e.g. EPERM: not the owner) are thrown.
 */
export function makePrivate(path: string): void {
  try {
    const st = statSync(path);
    const wanted = st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
    if ((st.mode & 0o777) !== wanted) chmodSync(path, wanted);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err; // also when it went between stat and chmod
  }
}

export async function makePrivateAsync(path: string): Promise<void> {
  try {
    const st = await stat(path);
    const wanted = st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
    if ((st.mode & 0o777) !== wanted) await chmod(path, wanted);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err; // also when it went between stat and chmod
  }
}

/** Creates `path` empty with 0600 when it does not exist; an existing one is made 0600, content kept. */
export function ensurePrivateFile(path: string): void {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
  makePrivate(path);
}

export async function ensurePrivateFileAsync(path: string): Promise<void> {
  await (await open(path, 'a', PRIVATE_FILE_MODE)).close();
  await makePrivateAsync(path);
}

/**
 * Replaces `path` with `data`: written to `<path>.tmp` (created 0600, O_EXCL: never an existing file
 * or a symlink), then renamed over it. Throws on failure, after which the previous file is intact.
 * The temp name is fixed, so a stale one from a crash is simply replaced: only one synchronous writer
 * per path and process (synchronous writes of one process never interleave).
 */
export function writePrivateFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp`;
  try {
    unlinkSync(tmp);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
  }
  try {
    const fd = openSync(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      fchmodSync(fd, PRIVATE_FILE_MODE); // whatever the umask
      writeFileSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // gone already, or the cause of the failure keeps it: the next write replaces it
    }
    throw err;
  }
}

/**
 * The asynchronous writePrivateFileAtomic. Its temp file has a unique name (<path>.<random>.tmp), so
 * concurrent writes of one path do not mix: the last rename wins, each file whole.
 */
export async function writePrivateFileAtomicAsync(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      await fh.chmod(PRIVATE_FILE_MODE);
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
