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
// This file holds the renderer itself (scheduling, coalescing, one render from template to
// reload). The template data, helpers and validation are in renderer-template.ts (which
// documents what a template sees); file install, rollback and commands in renderer-install.ts.
import type { EndpointSource } from './source.js';
import { compileTemplate, templateData, type CompiledTemplate, type TemplateData } from './renderer-template.js';
import { exclusive, install, readIfExists, runCommand } from './renderer-install.js';

export { templateData, validateTemplate, type TemplateData, type TemplateEndpoint } from './renderer-template.js';

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
  /** Endpoints left out and labels dropped as unsafe to write into the file, when that changed since the last render. */
  refused?: string[];
}

const DEFAULT_DEBOUNCE_MS = 50;
const DEFAULT_TIMEOUT_MS = 10_000;

export class UpstreamRenderer {
  private template: CompiledTemplate | undefined;
  private readonly debounceMs: number;
  private readonly timeoutMs: number;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private dirty = false;
  private waiters: ((outcome: RenderOutcome) => void)[] = [];
  /** The unsafe entries the last render left out, to report them only when they change. */
  private lastRefused = '';
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
    this.compiled().render(templateData(this.source.list(), this.source.revision, this.config.vars ?? {}));
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
      // Never rejects: every render ends in an outcome (see drain), handed to onOutcome.
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
        let outcome: RenderOutcome;
        try {
          outcome = await this.renderOnce();
        } catch (err) {
          // renderOnce makes an outcome of every failure it knows of; whatever else goes wrong
          // must be one too, or its waiters would never hear and stop() would reject.
          outcome = { name: this.config.name, revision: this.source.revision, changed: false, ok: false, error: (err as Error).message, durationMs: 0 };
        }
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

  private data(): { data: TemplateData; refused?: string[] } {
    const refused: string[] = [];
    const data = templateData(this.source.list(), this.source.revision, this.config.vars ?? {}, (what) => refused.push(what));
    // Said once per change, not on every render while the same entries stay refused.
    const key = refused.join('\n');
    if (key === this.lastRefused) return { data };
    this.lastRefused = key;
    return { data, refused };
  }

  private async renderOnce(): Promise<RenderOutcome> {
    const started = Date.now();
    const revision = this.source.revision;
    const outcome = (o: Omit<RenderOutcome, 'name' | 'revision' | 'durationMs'>): RenderOutcome => ({ name: this.config.name, revision, ...o, ...(refused ? { refused } : {}), durationMs: Date.now() - started });
    let text: string;
    let refused: string[] | undefined;
    try {
      const prepared = this.data();
      refused = prepared.refused?.length ? prepared.refused : undefined;
      text = this.compiled().render(prepared.data);
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
