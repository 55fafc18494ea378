// The upstream renderer: what confd / consul-template do, for Gantry's registry. A Handlebars
// template (e.g. an nginx `upstream` block per app/env/entry) is rendered from the registered
// endpoints on every change, written atomically, validated by a check command (`nginx -t`)
// and only then followed by the reload command (`nginx -s reload`).
//
// Guarantees:
// - Unchanged output (the rendered text equals the file on disk): no write, no check, no reload.
// - The file is replaced atomically: written to a temp file in the same directory, fsynced,
//   renamed over the output. The previous file is kept as a hard link (a backup) until the
//   check has passed; a failing check (non-zero exit, timeout, command not found) renames the
//   backup back, so the previous file is restored byte for byte (same inode, same mode), or
//   removes the new file when there was none before. The outcome carries the check's stderr.
// - The reload command runs only after a passing check. So nginx only ever loads a config
//   that passed `nginx -t`: a rejected render never reaches the running nginx, which keeps
//   serving with the config it has. A failed reload leaves the (checked) new file in place,
//   reports ok=false, and the reload is retried on the next render even if the text is the same.
// - A template that fails at runtime (strict mode: a missing variable; a helper throwing)
//   leaves the file alone and reports ok=false with the error; it never throws out of the
//   renderer. At start() the same errors throw instead (a configuration error).
// - Bursts are coalesced: a change schedules a render after `debounceMs` (the first change of
//   a burst starts the timer; later ones ride along), renders never overlap, and changes that
//   arrive during a render cause exactly one more render after it.
// - Install + check + reload of every renderer in this process run one at a time (a
//   process-wide lock), so two renderers feeding the same nginx never check each other's
//   half-installed files.
//
// Template data (Handlebars, compiled with `strict: true` and `noEscape: true`: a reference to
// a missing variable is an error, and nothing is HTML-escaped):
//
//   {
//     apps: [                               // sorted by app, then env
//       { app, env,
//         entries: [                        // sorted by entry
//           { entry,
//             endpoints: [                  // sorted by id, then address
//               { id, address, node, ports: { name: port }, release, labels }
//             ] } ] } ],
//     endpoints: Endpoint[],                // every endpoint, sorted by app/env/entry/id
//     revision: number,                     // store revision (changes on every change: printing
//                                           // it makes every render a new file and a reload)
//     vars: { ... },                        // RendererConfig.vars, as given ({} by default)
//   }
//
// `node` and `release` are null when absent (outside services), `ports` and `labels` have their
// keys sorted, so the same registry state always renders the same text. There is deliberately
// no timestamp (it would change the file, hence reload nginx, on every render). An entry is
// listed only while it has at least one endpoint, but an endpoint may have no ports: use
// `withPort` and an `{{else}}` branch so an upstream never ends up empty (nginx refuses an
// `upstream` block with no `server`), see examples/nginx-upstreams.hbs.
//
// Helpers:
//   {{upstreamName app env entry}}  → gantry_app_env_entry, every non-alphanumeric char → `_`
//   {{port this "http"}}            → the endpoint's port named "http", else its first port (by
//                                     name); empty when it has none. {{port this}}: first port.
//   {{addr this "http"}}            → address:port as above, IPv6 addresses in brackets
//   {{#each (withPort endpoints)}}  → the endpoints that have at least one port
//   {{label this "key" "default"}}  → a label's value, or the default ("" if none given)
//
// Handlebars gotcha for nginx configs: `}}}` closes a triple-stache, so `{{/each}}}` does not
// parse; put nginx's `}` on its own line (block tags on their own lines leave no blank lines).
//
// Values are inserted verbatim: addresses and labels reach the config file as registered, so
// the registry must only accept sane addresses (an API-registered service could otherwise
// inject nginx directives; `nginx -t` catches broken syntax, not valid-but-hostile config).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isIPv6 } from 'node:net';
import Handlebars from 'handlebars';
import type { Endpoint } from '../model/registry.js';
import type { EndpointSource } from './source.js';

export interface RendererConfig {
  /** Names the renderer in outcomes and errors, e.g. "nginx". */
  name: string;
  /** Handlebars source. */
  template: string;
  /** Path of the rendered file. */
  output: string;
  /** argv run after the new file is in place, e.g. ['nginx','-t','-p',dir,'-c',conf]; non-zero → roll back. */
  check?: string[];
  /** argv run after a successful check, e.g. ['nginx','-s','reload',...]. */
  reload?: string[];
  /** Coalesce bursts of changes (default 50). */
  debounceMs?: number;
  /** Per command (default 10 s). */
  timeoutMs?: number;
  /** Extra values for the template as `vars` (e.g. listen address, domain). */
  vars?: Record<string, unknown>;
}

export interface RenderOutcome {
  name: string;
  /** Source revision the render reflects. */
  revision: number;
  /** The rendered text differed from the file, so it was installed (and maybe rolled back). */
  changed: boolean;
  ok: boolean;
  error?: string;
  durationMs: number;
  /** When the reload command succeeded (ms since epoch). */
  reloadedAt?: number;
}

export interface TemplateEndpoint {
  id: string;
  address: string;
  node: string | null;
  ports: Record<string, number>;
  release: number | null;
  labels: Record<string, string>;
}

export interface TemplateData {
  apps: { app: string; env: string; entries: { entry: string; endpoints: TemplateEndpoint[] }[] }[];
  endpoints: (Omit<Endpoint, 'node' | 'release'> & { node: string | null; release: number | null })[];
  revision: number;
  vars: Record<string, unknown>;
}

const DEFAULT_DEBOUNCE_MS = 50;
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_ERROR_CHARS = 4000;

// ---------------------------------------------------------------------------------------------
// Template data and helpers

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(record).sort(cmp)) out[key] = record[key]!;
  return out;
}

/** The data a template sees, sorted so that the same endpoints always render the same text. */
export function templateData(endpoints: readonly Endpoint[], revision: number, vars: Record<string, unknown> = {}): TemplateData {
  const normalised = endpoints
    .map((e) => ({ ...e, node: e.node ?? null, release: e.release ?? null, ports: sortedRecord(e.ports ?? {}), labels: sortedRecord(e.labels ?? {}) }))
    .sort((a, b) => cmp(a.app, b.app) || cmp(a.env, b.env) || cmp(a.entry, b.entry) || cmp(a.id, b.id) || cmp(a.address, b.address));
  const apps: TemplateData['apps'] = [];
  for (const e of normalised) {
    let app = apps.at(-1);
    if (!app || app.app !== e.app || app.env !== e.env) apps.push((app = { app: e.app, env: e.env, entries: [] }));
    let entry = app.entries.at(-1);
    if (!entry || entry.entry !== e.entry) app.entries.push((entry = { entry: e.entry, endpoints: [] }));
    entry.endpoints.push({ id: e.id, address: e.address, node: e.node, ports: e.ports, release: e.release, labels: e.labels });
  }
  return { apps, endpoints: normalised, revision, vars };
}

type HelperArgs = unknown[];
/** Drops the Handlebars options object that every helper gets last. */
const argsOf = (args: HelperArgs): unknown[] => args.slice(0, -1);

function isEndpoint(value: unknown): value is { address: string; ports: Record<string, number> } {
  return typeof value === 'object' && value !== null && typeof (value as { address?: unknown }).address === 'string' && typeof (value as { ports?: unknown }).ports === 'object';
}

function portOf(endpoint: unknown, name?: unknown): number | undefined {
  if (!isEndpoint(endpoint)) throw new Error('port/addr: the first argument must be an endpoint (e.g. `this` inside {{#each endpoints}})');
  const ports = endpoint.ports ?? {};
  if (typeof name === 'string' && typeof ports[name] === 'number') return ports[name];
  const first = Object.keys(ports).sort(cmp)[0];
  return first === undefined ? undefined : ports[first];
}

function createEnvironment(): typeof Handlebars {
  const hb = Handlebars.create();
  hb.registerHelper('upstreamName', (...raw: HelperArgs) => {
    const parts = argsOf(raw);
    if (parts.length === 0 || parts.some((p) => typeof p !== 'string' && typeof p !== 'number')) throw new Error('upstreamName expects strings, e.g. {{upstreamName app env entry}}');
    return `gantry_${parts.join('_').replace(/[^A-Za-z0-9]/g, '_')}`;
  });
  hb.registerHelper('port', (...raw: HelperArgs) => {
    const [endpoint, name] = argsOf(raw);
    return portOf(endpoint, name) ?? '';
  });
  hb.registerHelper('addr', (...raw: HelperArgs) => {
    const [endpoint, name] = argsOf(raw);
    const port = portOf(endpoint, name);
    if (port === undefined) return '';
    const { address } = endpoint as { address: string };
    return `${isIPv6(address) ? `[${address}]` : address}:${port}`;
  });
  hb.registerHelper('withPort', (...raw: HelperArgs) => {
    const [endpoints] = argsOf(raw);
    if (!Array.isArray(endpoints)) throw new Error('withPort expects a list of endpoints, e.g. (withPort endpoints)');
    return endpoints.filter((e) => isEndpoint(e) && Object.keys(e.ports ?? {}).length > 0);
  });
  hb.registerHelper('label', (...raw: HelperArgs) => {
    const [endpoint, key, fallback] = argsOf(raw);
    const labels = (endpoint as { labels?: Record<string, string> } | undefined)?.labels ?? {};
    return typeof key === 'string' && Object.hasOwn(labels, key) ? labels[key] : (fallback ?? '');
  });
  return hb;
}

const COMPILE_OPTIONS = { strict: true, noEscape: true } as const;

/** Rewrites a Handlebars error into one that names the template and the line. */
function templateError(name: string, err: unknown, phase: 'invalid' | 'render'): Error {
  const raw = err instanceof Error ? err.message : String(err);
  const what = phase === 'invalid' ? `invalid template "${name}"` : `template "${name}" failed to render`;
  // Parse errors already say "Parse error on line N:" followed by the excerpt.
  if (/^Parse error on line \d+/.test(raw)) return new Error(`${what}: ${raw}`);
  const located = /^([\s\S]*?) - (\d+):(\d+)$/.exec(raw);
  if (located) {
    const message = located[1]!.replace(/^("[^"]*") not defined in .*$/s, '$1 is not defined (strict mode)');
    return new Error(`${what} (line ${located[2]}, column ${Number(located[3]) + 1}): ${message}`);
  }
  return new Error(`${what}: ${raw}`);
}

interface CompiledTemplate {
  render(data: TemplateData): string;
}

function compileTemplate(name: string, template: string): CompiledTemplate {
  const hb = createEnvironment();
  try {
    hb.precompile(template, COMPILE_OPTIONS); // surfaces syntax errors now (compile() is lazy)
  } catch (err) {
    throw templateError(name, err, 'invalid');
  }
  const compiled = hb.compile<TemplateData>(template, COMPILE_OPTIONS);
  return {
    render(data) {
      try {
        return compiled(data);
      } catch (err) {
        throw templateError(name, err, 'render');
      }
    },
  };
}

/**
 * Throws an Error naming the template (and line, column) when `template` does not compile, or
 * fails against an empty registry (a top-level reference to a missing variable). References
 * inside loops are only checked once there are endpoints to loop over.
 */
export function validateTemplate(name: string, template: string, vars: Record<string, unknown> = {}): void {
  compileTemplate(name, template).render(templateData([], 0, vars));
}

// ---------------------------------------------------------------------------------------------
// Files and commands

let installLock: Promise<unknown> = Promise.resolve();
/** Runs fn after every earlier call has finished (process-wide). */
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = installLock.then(fn, fn);
  installLock = run.catch(() => undefined);
  return run;
}

async function readIfExists(path: string): Promise<string | undefined> {
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

interface Installed {
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
async function install(output: string, text: string): Promise<Installed> {
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

/** Runs argv (no shell); resolves with an error message, or undefined on success. */
function runCommand(what: string, argv: string[], timeoutMs: number): Promise<string | undefined> {
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

// ---------------------------------------------------------------------------------------------
// The renderer

export class UpstreamRenderer {
  private template: CompiledTemplate | undefined;
  private readonly debounceMs: number;
  private readonly timeoutMs: number;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private dirty = false;
  private waiters: ((outcome: RenderOutcome) => void)[] = [];
  /** A reload failed: run it again on the next render even if the text is unchanged. */
  private reloadOwed = false;
  private started = false;
  private stopped = false;

  constructor(
    private readonly source: EndpointSource,
    private readonly config: RendererConfig,
    private readonly onOutcome?: (o: RenderOutcome) => void,
  ) {
    this.debounceMs = config.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Validates the template (compile + a render against the current endpoints): throws an Error
   * naming the template and line if it does not compile or render. Then renders for real
   * (check, reload as usual; a failing check is an outcome with ok=false, not a throw) and
   * follows the source's changes until stop().
   */
  async start(): Promise<RenderOutcome> {
    if (this.started) throw new Error(`renderer ${this.config.name} already started`);
    this.compiled().render(this.data());
    this.started = true;
    this.unsubscribe = this.source.subscribe(() => this.schedule());
    return this.renderNow();
  }

  /** Stops following changes and waits for a render in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.loop;
  }

  /**
   * Renders now; resolves with the outcome. During a render, resolves with the outcome of the
   * one render that follows it (shared by every call and change that came in meanwhile).
   */
  renderNow(): Promise<RenderOutcome> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.dirty = true;
      this.loop ??= this.drain();
    });
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.renderNow();
    }, this.debounceMs);
  }

  private async drain(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        // This render reads the latest state: a pending debounce has nothing left to add.
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        const waiters = this.waiters.splice(0);
        const outcome = await this.renderOnce();
        try {
          this.onOutcome?.(outcome);
        } catch {
          // a listener's failure is not the renderer's
        }
        for (const resolve of waiters) resolve(outcome);
      }
    } finally {
      this.loop = undefined;
    }
  }

  /** Compiled on first use (start() compiles it, so its errors throw from there). */
  private compiled(): CompiledTemplate {
    return (this.template ??= compileTemplate(this.config.name, this.config.template));
  }

  private data(): TemplateData {
    return templateData(this.source.list(), this.source.revision, this.config.vars ?? {});
  }

  private async renderOnce(): Promise<RenderOutcome> {
    const started = Date.now();
    const revision = this.source.revision;
    const outcome = (o: Omit<RenderOutcome, 'name' | 'revision' | 'durationMs'>): RenderOutcome => ({ name: this.config.name, revision, ...o, durationMs: Date.now() - started });
    let text: string;
    try {
      text = this.compiled().render(this.data());
    } catch (err) {
      return outcome({ changed: false, ok: false, error: (err as Error).message });
    }
    return exclusive(async () => {
      try {
        const current = await readIfExists(this.config.output);
        if (current === text) {
          if (!this.reloadOwed) return outcome({ changed: false, ok: true });
          const reloaded = await this.reload();
          return outcome({ changed: false, ...reloaded });
        }
        const installed = await install(this.config.output, text);
        if (this.config.check) {
          const failed = await runCommand('check', this.config.check, this.timeoutMs);
          if (failed) {
            await installed.rollback();
            return outcome({ changed: true, ok: false, error: failed });
          }
        }
        await installed.commit();
        return outcome({ changed: true, ...(await this.reload()) });
      } catch (err) {
        return outcome({ changed: false, ok: false, error: `${this.config.output}: ${(err as Error).message}` });
      }
    });
  }

  private async reload(): Promise<{ ok: boolean; error?: string; reloadedAt?: number }> {
    if (!this.config.reload) {
      this.reloadOwed = false;
      return { ok: true };
    }
    const failed = await runCommand('reload', this.config.reload, this.timeoutMs);
    this.reloadOwed = failed !== undefined;
    return failed ? { ok: false, error: failed } : { ok: true, reloadedAt: Date.now() };
  }
}
