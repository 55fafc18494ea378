// The upstream renderer: what confd / consul-template do, for Gantry's registry. A Handlebars
// template (e.g. an nginx `upstream` block per app/env/entry) is rendered from the registered
// endpoints on every change, written atomically, validated by a check command (`nginx -t`)
// and only then followed by the reload command (`nginx -s reload`).
//
// Two modes. One file (`output` a plain path): the template sees the whole registry, so every
// render renders and writes all of it (the template data itself is kept current per change,
// renderer-view.ts). Per app (`{app}`/`{env}` in the output's file name, renderer-files.ts):
// one file per app/env, the template seeing that app/env only; a render renders the files of
// the apps that changed since the last one, writes those whose text differs, removes those of
// apps that are gone, and runs one check and one reload for all of them. A check that fails
// for several files rolls them all back, then tries them one at a time, so one app's bad file
// does not hold back the others (it is tried again when its app changes).
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
import type { EndpointChange, EndpointSource } from './source.js';
import { compileTemplate, type CompiledTemplate } from './renderer-template.js';
import { TemplateView, groupOf } from './renderer-view.js';
import { FileGroups, about, existingFiles, installAll, outputPattern, type FileChange, type OutputPattern } from './renderer-files.js';
import { exclusive, readIfExists, runCommand } from './renderer-install.js';

export { templateData, validateTemplate, type TemplateData, type TemplateEndpoint } from './renderer-template.js';

export interface RendererConfig {
  /** Names the renderer in outcomes and errors, e.g. "nginx". */
  name: string;
  /** Handlebars source. */
  template: string;
  /**
   * Path of the rendered file; with `{app}` and/or `{env}` in the file name, one file per
   * app/env, each rendered from that app/env only (see renderer-files.ts).
   */
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
  /** Per-app mode: the files this render wrote or removed (and kept). */
  files?: string[];
}

const DEFAULT_DEBOUNCE_MS = 50;
const DEFAULT_TIMEOUT_MS = 10_000;

export class UpstreamRenderer {
  private template: CompiledTemplate | undefined;
  private readonly debounceMs: number;
  private readonly timeoutMs: number;
  /** Per-app mode's file names; undefined in single-file mode. */
  private readonly pattern: OutputPattern | undefined;
  /** The template data, kept current by the source's changes while following them. */
  private view: TemplateView | undefined;
  /** Per-app mode: the groups of each file, and the files whose apps changed since they were rendered. */
  private files: FileGroups | undefined;
  private readonly dirtyFiles = new Set<string>();
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
    try {
      this.pattern = outputPattern(config.output);
    } catch (err) {
      throw new Error(`renderer ${config.name}: output ${config.output}: ${(err as Error).message}`);
    }
  }

  /**
   * Validates the template (compile + a render against the current endpoints): throws an Error
   * naming the template and line if it does not compile or render. Then renders for real
   * (check, reload as usual; a failing check is an outcome with ok=false, not a throw) and
   * follows the source's changes until stop().
   */
  async start(): Promise<RenderOutcome> {
    if (this.started) throw new Error(`renderer ${this.config.name} already started`);
    const view = this.resync();
    const vars = this.config.vars ?? {};
    if (this.files) for (const path of this.files.paths()) this.compiled().render(view.data(this.source.revision, vars, this.files.of(path)));
    else this.compiled().render(view.data(this.source.revision, vars));
    this.started = true;
    this.view = view;
    this.unsubscribe = this.source.subscribe((_revision, changes) => this.changed(changes));
    // Files of apps that went while nobody was looking go too (an unreadable directory will
    // fail the install, which says why).
    if (this.pattern) for (const path of await existingFiles(this.pattern).catch(() => [])) this.dirtyFiles.add(path);
    return this.renderNow();
  }

  /** Stops following changes and waits for a render in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.view = undefined;
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

  private changed(changes: readonly EndpointChange[]): void {
    const view = this.view!;
    const touched = view.apply(changes);
    if (this.files) {
      for (const id of touched) {
        const { app, env } = groupOf(id);
        this.dirtyFiles.add(this.files.note(id, app, env, view.group(id) !== undefined));
      }
    }
    this.schedule();
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

  /**
   * A view built afresh from the whole source, with every file marked for rendering: at start,
   * and for a render while not following the source (before start(), after stop()).
   */
  private resync(): TemplateView {
    const view = new TemplateView(this.source.entries());
    if (this.pattern) {
      this.files = new FileGroups(this.pattern);
      for (const id of view.groupIds()) {
        const { app, env } = view.group(id)!;
        this.dirtyFiles.add(this.files.note(id, app, env, true));
      }
    }
    return view;
  }

  /** The files to render now, each with the groups it is rendered from. */
  private targets(view: TemplateView): Map<string, string[]> {
    if (!this.files) return new Map([[this.config.output, [...view.groupIds()]]]);
    const targets = new Map<string, string[]>();
    for (const path of this.dirtyFiles) targets.set(path, this.files.of(path));
    this.dirtyFiles.clear();
    return targets;
  }

  /** The unsafe entries to report with this render: only when they changed since the last. */
  private refusedNow(view: TemplateView): string[] | undefined {
    const refused = view.refused();
    const key = refused.join('\n');
    if (key === this.lastRefused) return undefined;
    this.lastRefused = key;
    return refused.length > 0 ? refused : undefined;
  }

  private async renderOnce(): Promise<RenderOutcome> {
    const started = Date.now();
    const revision = this.source.revision;
    const vars = this.config.vars ?? {};
    const view = this.unsubscribe && this.view ? this.view : this.resync();
    const refused = this.refusedNow(view);
    const outcome = (o: Omit<RenderOutcome, 'name' | 'revision' | 'durationMs'>): RenderOutcome => ({ name: this.config.name, revision, ...o, ...(refused ? { refused } : {}), durationMs: Date.now() - started });

    // Render every target first: a template error keeps that file as it is.
    const rendered: FileChange[] = [];
    const problems: string[] = [];
    for (const [path, ids] of this.targets(view)) {
      if (this.pattern && ids.length === 0) {
        rendered.push({ path, text: undefined }); // its apps are gone
        continue;
      }
      try {
        rendered.push({ path, text: this.compiled().render(view.data(revision, vars, ids)) });
      } catch (err) {
        problems.push(this.pattern ? `${path}: ${(err as Error).message}` : (err as Error).message);
      }
    }
    if (!this.pattern && problems.length > 0) return outcome({ changed: false, ok: false, error: problems[0] });

    return exclusive(async () => {
      const files: string[] = [];
      const result = (changed: boolean, reloaded?: { error?: string; reloadedAt?: number }): RenderOutcome => {
        if (reloaded?.error) problems.push(reloaded.error);
        return outcome({
          changed,
          ok: problems.length === 0,
          ...(problems.length > 0 ? { error: problems.join('\n') } : {}),
          ...(reloaded?.reloadedAt ? { reloadedAt: reloaded.reloadedAt } : {}),
          ...(this.pattern ? { files } : {}),
        });
      };
      try {
        const changes: FileChange[] = [];
        for (const file of rendered) if ((await about(file.path, readIfExists(file.path))) !== file.text) changes.push(file);
        if (changes.length === 0) return result(false, this.reloadOwed ? await this.reload() : undefined);
        const installed = await installAll(changes);
        const failed = this.config.check ? await runCommand('check', this.config.check, this.timeoutMs) : undefined;
        if (failed) {
          await installed.rollback();
          if (changes.length > 1) files.push(...(await this.isolate(changes, failed, problems)));
          else problems.push(failed);
          return result(true, files.length > 0 ? await this.reload() : undefined);
        }
        await installed.commit();
        files.push(...changes.map((c) => c.path));
        return result(true, await this.reload());
      } catch (err) {
        // A file system failure (the message names the file): try these files again next time.
        if (this.files) for (const { path } of rendered) this.dirtyFiles.add(path);
        return outcome({ changed: false, ok: false, error: (err as Error).message });
      }
    });
  }

  /**
   * After a failed check of several files (rolled back): finds the files at fault by halves,
   * installing the others; returns those installed. When the check fails even without any of
   * them, the fault is elsewhere: nothing is installed and all are tried again next time.
   */
  private async isolate(changes: readonly FileChange[], failed: string, problems: string[]): Promise<string[]> {
    const check = () => runCommand('check', this.config.check!, this.timeoutMs);
    if (await check()) {
      problems.push(failed);
      for (const { path } of changes) this.dirtyFiles.add(path);
      return [];
    }
    const passed: string[] = [];
    const attempt = async (batch: readonly FileChange[]): Promise<void> => {
      const installed = await installAll(batch);
      const why = await check();
      if (!why) {
        await installed.commit();
        passed.push(...batch.map((c) => c.path));
        return;
      }
      await installed.rollback();
      if (batch.length === 1) return void problems.push(`${batch[0]!.path}: ${why}`);
      const half = Math.ceil(batch.length / 2);
      await attempt(batch.slice(0, half));
      await attempt(batch.slice(half));
    };
    const half = Math.ceil(changes.length / 2);
    await attempt(changes.slice(0, half));
    await attempt(changes.slice(half));
    return passed;
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
