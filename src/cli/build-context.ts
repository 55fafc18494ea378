// Where an image build's files come from, for image-build.ts: a local directory (with the git
// commit it is at, when it is in a work tree), or a git URL cloned into a temp dir; and the build
// context as the Docker Engine takes it, a tar stream of the directory less what .dockerignore
// leaves out. Everything here happens before the engine is asked for anything, and every problem
// is a BuildInputError naming what is wrong (the CLI exits 2).
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, posix, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';

/** The Docker CLI's own limit on a context is the disk; ours keeps a stray home directory out. */
export const MAX_CONTEXT_BYTES = 2 * 1024 ** 3;

/** A problem with what the user asked to build: bad paths, a missing Dockerfile, a failed clone. */
export class BuildInputError extends Error {
  override name = 'BuildInputError';
}

export interface BuildSource {
  /** The directory the context is packed from. */
  dir: string;
  /** What the build record says it came from: the directory's name, or the URL without credentials. */
  source: string;
  ref?: string;
  commit?: string;
  /** Uncommitted changes under the context directory. */
  dirty?: boolean;
  /** Removes the clone of a git URL; nothing for a local directory. */
  cleanup(): Promise<void>;
}

/** `https://…`, `http://…`, `ssh://…`, `git://…`, `git@host:path`, or anything ending in `.git`. */
export function isGitUrl(source: string): boolean {
  return /^(?:https?|ssh|git):\/\//.test(source) || source.startsWith('git@') || /\.git\/?$/.test(source);
}

/** A URL as it may be shown and stored: without a user name and password (or token) in it. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

export async function openSource(source: string, options: { ref?: string } = {}): Promise<BuildSource> {
  if (isGitUrl(source)) return cloneSource(source, options.ref);
  if (options.ref !== undefined) throw new BuildInputError(`--ref applies to a git URL; ${source} is a directory`);
  const dir = resolve(source);
  const found = await stat(dir).catch(() => undefined);
  if (!found) throw new BuildInputError(`build context ${source} does not exist`);
  if (!found.isDirectory()) throw new BuildInputError(`build context ${source} is not a directory`);
  return { dir, source: basename(dir), ...(await workTreeState(dir)), cleanup: async () => {} };
}

async function cloneSource(url: string, ref: string | undefined): Promise<BuildSource> {
  const shown = withoutCredentials(url);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-build-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const cloned = await git(['clone', '--quiet', '--depth', '1', ...(ref !== undefined ? ['--branch', ref] : []), '--', url, dir]);
    if (cloned.code !== 0) {
      // git may echo the URL as given: never its credentials.
      const why = cloned.stderr.split(url).join(shown).replace(/(:\/\/)[^/@\s]*@/g, '$1').trim().split('\n').slice(-3).join(' ');
      throw new BuildInputError(`cannot clone ${shown}${ref !== undefined ? ` at ${ref}` : ''}: ${why || `git exited with ${cloned.code}`}`);
    }
    const head = await git(['rev-parse', 'HEAD'], dir);
    return { dir, source: shown, ...(ref !== undefined ? { ref } : {}), ...(head.code === 0 ? { commit: head.stdout.trim() } : {}), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The commit a local directory is at, and whether it has changes, when it is in a git work tree (and git is there). */
async function workTreeState(dir: string): Promise<{ commit?: string; dirty?: boolean }> {
  const inside = await git(['rev-parse', '--is-inside-work-tree'], dir).catch(() => undefined);
  if (inside?.code !== 0 || inside.stdout.trim() !== 'true') return {};
  const head = await git(['rev-parse', 'HEAD'], dir);
  if (head.code !== 0) return {}; // a repository without commits yet
  const status = await git(['status', '--porcelain', '--', '.'], dir);
  return { commit: head.stdout.trim(), ...(status.code === 0 ? { dirty: status.stdout.trim() !== '' } : {}) };
}

function git(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    // No prompt for a password: a build must fail, not wait for a terminal nobody watches.
    const child = spawn('git', args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new BuildInputError('git is not installed (it is needed to clone a git URL)') : err));
    child.once('close', (code) => resolvePromise({ code: code ?? 128, stdout, stderr }));
  });
}

/**
 * .dockerignore as the Docker CLI reads it, minimally: one pattern a line, `#` comments, `*` and
 * `?` within a path segment, `**` across segments, `!` exceptions (the last matching line wins),
 * and a pattern that matches a directory leaves out everything under it. Not supported:
 * character classes (`[a-z]`) and backslash escapes, which are taken literally.
 */
export function dockerignore(text: string): { excluded(path: string): boolean; hasExceptions: boolean } {
  const rules = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .flatMap((line) => {
      const negate = line.startsWith('!');
      const pattern = posix.normalize((negate ? line.slice(1) : line).trim()).replace(/^\/+/, '').replace(/\/+$/, '');
      return pattern === '' || pattern === '.' ? [] : [{ negate, regex: patternRegex(pattern), depth: pattern.split('/').length }];
    });
  return {
    hasExceptions: rules.some((r) => r.negate),
    excluded(path) {
      const parents = path.split('/').slice(0, -1);
      let out = false;
      for (const rule of rules) {
        const matches = rule.regex.test(path) || (rule.depth <= parents.length && rule.regex.test(parents.slice(0, rule.depth).join('/')));
        if (matches) out = !rule.negate;
      }
      return out;
    },
  };
}

function patternRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        out += '(?:.*/)?';
      } else out += '.*';
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

export interface PackedContext {
  stream: Readable;
  bytes: number;
  files: number;
}

/**
 * The context of `dir` as a tar stream, `dockerfile` (a path inside it) checked first. The files
 * are walked once before packing, so a missing Dockerfile or a context over MAX_CONTEXT_BYTES is
 * said before anything is sent. Owners are root and modes as they are, as the Docker CLI sends them.
 */
export async function packContext(dir: string, dockerfile: string): Promise<PackedContext> {
  const inside = posix.normalize(dockerfile.replace(/\\/g, '/'));
  if (isAbsolute(inside) || inside === '..' || inside.startsWith('../')) throw new BuildInputError(`the Dockerfile ${dockerfile} must be a path inside the build context`);
  const found = await stat(join(dir, inside)).catch(() => undefined);
  if (!found?.isFile()) throw new BuildInputError(`no Dockerfile at ${inside} in the build context ${dir}`);
  const ignoreText = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => '');
  // The Dockerfile and .dockerignore go to the engine even when .dockerignore names them, as with docker build.
  const walked = await walkContext(dir, dockerignore(ignoreText), new Set([inside, '.dockerignore']));
  const { pack } = await import('tar-fs');
  const stream = pack(dir, {
    // The top-level entries rather than ".": the context's own directory is no entry of it.
    entries: [...walked.included].filter((path) => !path.includes('/')).sort(),
    ignore: (name) => !walked.included.has(relative(dir, name)),
    umask: 0,
    strict: false,
    sort: true,
    map: (header) => ({ ...header, uid: 0, gid: 0 }),
  });
  return { stream, bytes: walked.bytes, files: walked.files };
}

async function walkContext(root: string, rules: ReturnType<typeof dockerignore>, keep: Set<string>): Promise<{ included: Set<string>; bytes: number; files: number }> {
  const included = new Set<string>();
  let bytes = 0;
  let files = 0;
  const keepsSomethingUnder = (dir: string) => [...keep].some((path) => path.startsWith(`${dir}/`));
  // Whether anything under relDir is sent; an excluded directory is entered only when an
  // exception or a kept file could bring something under it back.
  const walk = async (relDir: string): Promise<boolean> => {
    let any = false;
    for (const name of await readdir(join(root, relDir))) {
      const rel = relDir ? `${relDir}/${name}` : name;
      const info = await lstat(join(root, rel));
      const out = rules.excluded(rel) && !keep.has(rel);
      if (info.isDirectory()) {
        if (out && !rules.hasExceptions && !keepsSomethingUnder(rel)) continue;
        if ((await walk(rel)) || !out) {
          included.add(rel);
          any = true;
        }
        continue;
      }
      if (out || !(info.isFile() || info.isSymbolicLink())) continue; // sockets and FIFOs: tar holds none
      included.add(rel);
      any = true;
      if (!info.isFile()) continue;
      files++;
      bytes += info.size;
      if (bytes > MAX_CONTEXT_BYTES) {
        throw new BuildInputError(`the build context ${root} is over 2 GiB, the limit: leave out what the image does not need with a .dockerignore file`);
      }
    }
    return any;
  };
  await walk('');
  return { included, bytes, files };
}
