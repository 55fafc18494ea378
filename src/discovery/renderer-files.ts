// Per-app output of the upstream renderer (renderer.ts): an `output` whose file name holds
// `{app}` and/or `{env}` (e.g. /etc/nginx/conf.d/gantry-{app}-{env}.conf) names one file per
// app/env, so a change rewrites the files of the apps it touched and not the whole registry.
//
// Every file in that directory whose name the pattern could have made belongs to the renderer:
// one whose app is gone is removed (also at start, for apps removed while Gantry was down). So
// the file name must have a fixed part of its own besides the placeholders and the extension
// (`gantry-{app}-{env}.conf`, not `{app}.conf`), which keeps the operator's files out of reach.
// Placeholders stand for names (lower-case letters, digits, "-"), so a file never lands
// elsewhere; two app/envs the pattern gives the same name (a-b/c and a/b-c with `{app}-{env}`)
// share that file.
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { NAME } from '../model/names.js';
import { install, remove, type Installed } from './renderer-install.js';

const PLACEHOLDER = /\{([^{}]*)\}/g;
const NAME_PART = NAME.source.replace(/^\^|\$$/g, '');

export interface OutputPattern {
  /** The directory of the files. */
  dir: string;
  /** The file of one app/env. */
  path(app: string, env: string): string;
  /** Whether `path` (in dir) is a file this pattern could have made. */
  owns(path: string): boolean;
}

/**
 * The per-app pattern of `output`, or undefined when it names a single file. Throws an Error
 * saying what is wrong with a pattern that cannot be used.
 */
export function outputPattern(output: string): OutputPattern | undefined {
  const placeholders = [...output.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  if (placeholders.length === 0 && !/[{}]/.test(output)) return undefined;
  const unknown = placeholders.find((p) => p !== 'app' && p !== 'env');
  if (unknown !== undefined || /[{}]/.test(output.replace(PLACEHOLDER, ''))) throw new Error(`only {app} and {env} may stand in braces${unknown !== undefined ? ` (not {${unknown}})` : ''}`);
  const dir = dirname(output);
  const name = basename(output);
  if (/[{}]/.test(dir)) throw new Error('{app} and {env} may only appear in the file name, not in the directory');
  if (name.startsWith('.')) throw new Error('the file name must not start with "." (the renderer\'s temp and backup files do)');
  if (!/[A-Za-z0-9]/.test(name.replace(PLACEHOLDER, '').replace(/\.[^.]*$/, ''))) {
    throw new Error(`the file name needs a fixed part besides {app}, {env} and its extension (e.g. gantry-{app}-{env}.conf): every file in ${dir} that the pattern could name is the renderer's to remove`);
  }
  const escaped = name.split(PLACEHOLDER).map((piece, i) => (i % 2 === 1 ? NAME_PART : piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const own = new RegExp(`^${escaped.join('')}$`);
  return {
    dir,
    path: (app, env) => join(dir, name.replace(PLACEHOLDER, (_m, p: string) => (p === 'app' ? app : env))),
    owns: (path) => dirname(path) === dir && own.test(basename(path)),
  };
}

/** Which app/env groups (renderer-view.ts ids) each per-app file is rendered from. */
export class FileGroups {
  private readonly files = new Map<string, Set<string>>();
  constructor(private readonly pattern: OutputPattern) {}

  /** Notes whether group `id` of `app`/`env` has endpoints; returns its file. */
  note(id: string, app: string, env: string, present: boolean): string {
    const path = this.pattern.path(app, env);
    let ids = this.files.get(path);
    if (present) {
      if (!ids) this.files.set(path, (ids = new Set()));
      ids.add(id);
    } else if (ids) {
      ids.delete(id);
      if (ids.size === 0) this.files.delete(path);
    }
    return path;
  }

  /** The groups of a file (none: the file is to go). */
  of(path: string): string[] {
    return [...(this.files.get(path) ?? [])];
  }

  paths(): IterableIterator<string> {
    return this.files.keys();
  }
}

/** Files of the pattern in its directory now (none when the directory does not exist). */
export async function existingFiles(pattern: OutputPattern): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(pattern.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.map((n) => join(pattern.dir, n)).filter((path) => pattern.owns(path));
}

/** A file to write (`text`) or to remove (`text` undefined). */
export interface FileChange {
  path: string;
  text: string | undefined;
}

/** Prefixes an error with the file it concerns. */
export async function about<T>(path: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Installs (or removes) every file, each atomically with a backup. When one fails, those done
 * are rolled back and it throws: the set goes in whole or not at all.
 */
export async function installAll(changes: readonly FileChange[]): Promise<Installed> {
  const done: Installed[] = [];
  try {
    for (const { path, text } of changes) done.push(await about(path, text === undefined ? remove(path) : install(path, text)));
  } catch (err) {
    for (const installed of done.reverse()) await installed.rollback().catch(() => undefined);
    throw err;
  }
  const paths = changes.map((c) => c.path);
  return {
    async rollback() {
      for (let i = done.length - 1; i >= 0; i--) await about(paths[i]!, done[i]!.rollback());
    },
    async commit() {
      for (let i = 0; i < done.length; i++) await about(paths[i]!, done[i]!.commit());
    },
  };
}
