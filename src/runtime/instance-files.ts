// Files an instance is given (a team secret's value, mounted read-only): written by the agent
// into a directory only it can enter (0700), each file with the mode its spec asks for. The
// docker runtime bind-mounts each file read-only at its path in the container; the process
// runtime keeps them in the instance's own directory, under GANTRY_FILES. They live as long as
// the instance does, so a restart (the same container or process record) finds them again
// without the server.
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ensurePrivateDirAsync, PRIVATE_DIR_MODE, writePrivateFileAtomicAsync } from '../host/private-files.js';

/** A file as the runtime gets it: where the instance sees it, its content and mode. */
export interface RunFile {
  path: string;
  content: string;
  mode: number;
}

/** One file written on the host: `source` on the host, `target` where the instance sees it. */
export interface WrittenFile {
  source: string;
  target: string;
}

/**
 * Writes `files` into `dir` (made 0700): flat, by position, for bind mounts (`nested` false), or
 * at their own paths below `dir` (the process runtime). Each is written whole, then given its mode.
 */
export async function writeInstanceFiles(dir: string, files: readonly RunFile[], nested: boolean): Promise<WrittenFile[]> {
  await ensurePrivateDirAsync(dir);
  const written: WrittenFile[] = [];
  for (const [i, file] of files.entries()) {
    if (!file.path.startsWith('/') || file.path.split('/').includes('..')) throw new Error(`file path ${file.path}: expected an absolute path without ".."`);
    const source = nested ? join(dir, file.path) : join(dir, String(i));
    if (nested) await mkdir(dirname(source), { recursive: true, mode: PRIVATE_DIR_MODE });
    await writePrivateFileAtomicAsync(source, file.content);
    await chmod(source, file.mode);
    written.push({ source, target: file.path });
  }
  return written;
}

export async function removeInstanceFiles(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Writes new contents into files written before, in place (same inode: a bind-mounted file
 * sees the change; a rename would leave the container with the old one). A reader may see a
 * short file for a moment: the instance is told (signal, hook) only once the write is done.
 */
export async function rewriteInstanceFiles(dir: string, files: readonly RunFile[], nested: boolean): Promise<void> {
  for (const [i, file] of files.entries()) {
    const source = nested ? join(dir, file.path) : join(dir, String(i));
    await writeFile(source, file.content);
    await chmod(source, file.mode);
  }
}
