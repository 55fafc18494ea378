// Waiting for an app to converge (after apply / scale) or for its instances to go (after rm),
// with a progress display: redrawn in place on a terminal, printed on change otherwise.
//
// The app is read again as soon as the server's watch stream shows a change to it (see
// app-changes.ts), and every few seconds besides, in case a change was missed; when the stream
// cannot be followed (an older server, a proxy that refuses it) the wait polls instead.
//
// A wait starts once the server accepted the change, and the change goes on without the CLI: a
// server that goes away meanwhile (restarted, upgraded) is waited out, with backoff, until the
// wait's own timeout, saying once that it is gone and once that it is back. Only the command's
// own request fails fast when the server cannot be reached.
import type { AppDetailResponse, InstanceView } from '../model/api.js';
import { formatDuration } from '../model/units.js';
import { AppChanges, type Followed } from './app-changes.js';
import { ApiRequestError, ServerUnreachableError, TlsVerificationError, type GantryClient } from './client.js';
import { CliError, EXIT } from './errors.js';
import { io, oneLine, type Output } from './output.js';

export interface EntryProgress {
  name: string;
  desired: number;
  running: number;
  healthy: number;
  /** Instances of the entry still there (wanted or on their way out). */
  instances: number;
}

export interface Convergence {
  converged: boolean;
  entries: EntryProgress[];
  /** One description per entry that has not converged, e.g. "web: 1/3 running, 0/3 healthy". */
  pending: string[];
}

/** Whether an instance is still there: not removed, and not a stopped/removed one that has exited. */
export function isLive(i: InstanceView): boolean {
  const state = i.status?.state;
  if (state === 'removed') return false;
  if (i.desired !== 'running' && (state === 'exited' || state === 'failed')) return false;
  if (i.desired === 'removed' && !i.status) return false;
  return true;
}

/**
 * Converged: for every entry running == healthy == desired (the server counts an instance without
 * health check as healthy when running), and no instance beyond the desired count remains
 * (e.g. of an older release, or of an entry that is no longer in the spec).
 */
export function convergence(detail: AppDetailResponse): Convergence {
  const stopped = detail.summary.stopped || detail.app.stopped;
  const live = detail.instances.filter(isLive);
  const count = (entry: string) => live.filter((i) => i.entry === entry).length;
  const entries: EntryProgress[] = detail.summary.entries.map((e) => ({
    name: e.name,
    desired: stopped ? 0 : e.desired,
    running: e.running,
    healthy: e.healthy,
    instances: count(e.name),
  }));
  const pending: string[] = [];
  for (const e of entries) {
    const problems: string[] = [];
    if (e.running !== e.desired) problems.push(`${e.running}/${e.desired} running`);
    if (e.healthy !== e.desired) problems.push(`${e.healthy}/${e.desired} healthy`);
    if (e.instances > e.desired) problems.push(`${e.instances - e.desired} extra instance${e.instances - e.desired === 1 ? '' : 's'}`);
    if (problems.length > 0) pending.push(`${e.name}: ${problems.join(', ')}`);
  }
  const known = new Set(entries.map((e) => e.name));
  const orphans = new Map<string, number>();
  for (const i of live) if (!known.has(i.entry)) orphans.set(i.entry, (orphans.get(i.entry) ?? 0) + 1);
  for (const [entry, n] of orphans) pending.push(`${entry}: ${n} instance${n === 1 ? '' : 's'} of a removed entry`);
  return { converged: pending.length === 0, entries, pending };
}

/** The per-entry progress lines: "web     3/3 running  3/3 healthy". */
export function progressLines(state: Convergence): string[] {
  const width = Math.max(0, ...state.entries.map((e) => e.name.length));
  return state.entries.map((e) => {
    const extra = e.instances > e.desired ? `  (${e.instances - e.desired} old stopping)` : '';
    return `${e.name.padEnd(width)}  ${e.running}/${e.desired} running  ${e.healthy}/${e.desired} healthy${extra}`;
  });
}

/**
 * "pulling 3/5 nodes, 120 MiB/300 MiB": of the nodes that get instances of the app's release and
 * do not run them yet, those pulling an image now, and the bytes of their pulls (one per node
 * and image, however many instances wait for it). Undefined when nothing is pulled.
 */
export function pullLine(detail: AppDetailResponse): string | undefined {
  const waiting = detail.instances.filter((i) => i.desired === 'running' && i.release === detail.app.release && i.status?.state !== 'running');
  const pulls = new Map<string, { doneBytes: number; totalBytes: number }>();
  for (const i of waiting) if (i.status?.state === 'pulling' && i.status.pull) pulls.set(`${i.node}\0${i.status.pull.image}`, i.status.pull);
  if (pulls.size === 0) return undefined;
  const pulling = new Set([...pulls.keys()].map((key) => key.split('\0')[0]));
  let done = 0;
  let total = 0;
  for (const pull of pulls.values()) {
    done += pull.doneBytes;
    total += pull.totalBytes;
  }
  const nodes = new Set(waiting.map((i) => i.node));
  const mib = (bytes: number) => `${Math.round(bytes / 1048576)} MiB`;
  return `pulling ${pulling.size}/${nodes.size} node${nodes.size === 1 ? '' : 's'}${total > 0 ? `, ${mib(done)}/${mib(total)}` : ''}`;
}

export interface Notice {
  key: string;
  text: string;
}

/** Things worth telling once: entries that cannot be placed, instances failed or backing off. */
export function noticesOf(detail: AppDetailResponse): Notice[] {
  const notices: Notice[] = [];
  for (const u of detail.unplaced) {
    if (u.count <= 0) continue;
    notices.push({ key: `unplaced:${u.entry}:${u.reason}`, text: `${u.entry}: ${u.count} instance${u.count === 1 ? '' : 's'} cannot be placed: ${u.reason}` });
  }
  for (const i of detail.instances) {
    const s = i.status;
    if (!s || i.desired !== 'running' || (s.state !== 'failed' && s.state !== 'backoff')) continue;
    const exit = s.exitCode !== null ? ` (exit code ${s.exitCode})` : '';
    const message = s.message ? `: ${oneLine(s.message)}` : '';
    notices.push({ key: `${i.id}:${s.state}:${s.restarts}:${s.message ?? ''}`, text: `${i.entry}/${i.id} ${s.state}${exit}${message}` });
  }
  return notices;
}

/** Notices printed once above a block of lines that is redrawn (TTY) or reprinted when it changes. */
export class ProgressDisplay {
  private drawn = 0;
  private last: string | undefined;
  private lines: string[] = [];
  private notes = 0;
  private readonly seen = new Set<string>();

  constructor(private readonly out: Output = io.out) {}

  /** A line said once, above the block (which a terminal redraws below it). */
  note(text: string): void {
    this.update(this.lines, [{ key: `note:${++this.notes}`, text }]);
  }

  update(lines: string[], notices: Notice[] = []): void {
    const fresh = notices.filter((n) => !this.seen.has(n.key));
    for (const n of fresh) this.seen.add(n.key);
    this.lines = lines;
    const block = lines.join('\n');
    const changed = block !== this.last;
    this.last = block;
    if (this.out.isTTY) {
      if (!changed && fresh.length === 0) return;
      const width = this.out.columns && this.out.columns > 1 ? this.out.columns - 1 : Infinity;
      let text = this.drawn > 0 ? `\x1b[${this.drawn}A\x1b[0J` : '';
      for (const n of fresh) text += `${n.text}\n`;
      for (const line of lines) text += `${line.length > width ? line.slice(0, width) : line}\n`;
      this.out.write(text);
      this.drawn = lines.length;
    } else {
      let text = fresh.map((n) => `${n.text}\n`).join('');
      if (changed) text += lines.map((l) => `${l}\n`).join('');
      if (text) this.out.write(text);
    }
  }
}

export interface WaitOptions {
  timeoutMs: number;
  /** Between reads when the watch stream cannot be followed (default 500 ms). */
  intervalMs?: number;
  /** Between reads while it is followed, changes or not: the safety net (default 5 s). */
  rereadMs?: number;
  out?: Output;
  /** Delay before the first retry of a server that went away, doubling up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
}

/**
 * The least time between two reads: a burst of changes (ten instances turning healthy one after
 * another) costs the server a few reads, not one per change.
 */
const MIN_READ_GAP_MS = 50;

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

/**
 * Whether a failed request means the server is away for a while (restarting; or a proxy in front
 * of it answering 502-504), which is worth waiting out. A certificate that cannot be verified is
 * not: retrying will not change it.
 */
export function serverAway(err: unknown): boolean {
  if (err instanceof TlsVerificationError) return false;
  if (err instanceof ServerUnreachableError) return true;
  return err instanceof ApiRequestError && [502, 503, 504].includes(err.status);
}

/** Runs the requests of one wait, riding out a server that is away until the wait's deadline. */
class OutageRetrier {
  private awaySince: number | undefined;

  constructor(
    private readonly client: GantryClient,
    private readonly display: ProgressDisplay,
    private readonly waitingFor: string,
    private readonly deadline: number,
    private readonly options: WaitOptions,
  ) {}

  async request<T>(send: () => Promise<T>): Promise<T> {
    let delay = this.options.retryDelayMs ?? 250;
    for (;;) {
      try {
        const answer = await send();
        if (this.awaySince !== undefined) {
          this.display.note(`the Gantry server at ${this.client.server} is back (away for ${formatDuration(Date.now() - this.awaySince)})`);
          this.awaySince = undefined;
        }
        return answer;
      } catch (err) {
        if (!serverAway(err)) throw err;
        const reason = err instanceof ApiRequestError ? `it answered ${err.status}: ${err.message}` : (err as ServerUnreachableError).code;
        if (this.awaySince === undefined) {
          this.awaySince = Date.now();
          this.display.note(`lost the Gantry server at ${this.client.server} (${reason}); retrying until the timeout (${formatDuration(Math.max(0, this.deadline - Date.now()))} left)`);
        }
        const left = this.deadline - Date.now();
        if (left <= 0) {
          throw new CliError(EXIT.unreachable, `gave up waiting for ${this.waitingFor} after ${formatDuration(this.options.timeoutMs)}: the Gantry server at ${this.client.server} has been unreachable for ${formatDuration(Date.now() - this.awaySince)} (${reason}); the change it accepted goes on when it is back`);
        }
        await sleep(Math.min(delay, left));
        delay = Math.min(delay * 2, this.options.maxRetryDelayMs ?? 5000);
      }
    }
  }
}

/**
 * Reads the app after every change until it has converged, then stops. The reads go through the
 * retrier; between them, the wait for a change (or for the next poll) is bounded by the deadline.
 */
async function readUntil(client: GantryClient, app: string, followed: Followed[], options: WaitOptions, read: (changes: AppChanges) => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const changes = new AppChanges(client, app, followed, options);
  try {
    for (;;) {
      const readAt = Date.now();
      changes.clear();
      if (await read(changes)) return;
      const left = () => Math.max(0, deadline - Date.now());
      await changes.next(Math.min(changes.live ? (options.rereadMs ?? 5000) : (options.intervalMs ?? 500), left()));
      await sleep(Math.min(readAt + MIN_READ_GAP_MS - Date.now(), left()));
    }
  } finally {
    changes.close();
  }
}

/**
 * Reads GET /v1/apps/:app until it converges; throws CliError(3) on timeout, CliError(4) when the
 * server is still away at the timeout. `quietIfConverged`: a first read that finds the app
 * converged draws nothing (a re-apply of an unchanged spec).
 */
export async function waitForConvergence(client: GantryClient, app: string, options: WaitOptions & { quietIfConverged?: boolean }): Promise<{ tookMs: number; alreadyConverged: boolean }> {
  const started = Date.now();
  const display = new ProgressDisplay(options.out);
  const server = new OutageRetrier(client, display, `app ${app} to converge`, started + options.timeoutMs, options);
  let reads = 0;
  let alreadyConverged = false;
  await readUntil(client, app, ['instances', 'status'], options, async (changes) => {
    const detail = await server.request(() => client.getApp(app));
    changes.watchInstances(detail.instances.map((i) => i.id));
    const state = convergence(detail);
    alreadyConverged = ++reads === 1 && state.converged;
    const pulling = pullLine(detail);
    if (!(alreadyConverged && options.quietIfConverged)) display.update([...progressLines(state), ...(pulling ? [pulling] : [])], noticesOf(detail));
    if (state.converged) return true;
    if (Date.now() - started >= options.timeoutMs) {
      throw new CliError(EXIT.timeout, `timed out after ${formatDuration(options.timeoutMs)} waiting for app ${app} to converge: ${state.pending.join('; ')}`);
    }
    return false;
  });
  return { tookMs: Date.now() - started, alreadyConverged };
}

/** Reads the app's instances until none is left; throws CliError(3) on timeout, CliError(4) when the server is still away then. */
export async function waitForRemoval(client: GantryClient, app: string, options: WaitOptions): Promise<number> {
  const started = Date.now();
  const display = new ProgressDisplay(options.out);
  const server = new OutageRetrier(client, display, `the instances of ${app} to be removed`, started + options.timeoutMs, options);
  await readUntil(client, app, ['instances'], options, async () => {
    // Gone means the server forgot them, which it does once their agent confirmed the removal.
    const live = (await server.request(() => client.listInstances({ app }))).instances.filter((i) => i.app === app);
    if (live.length === 0) return true;
    display.update([`waiting for ${live.length} instance${live.length === 1 ? '' : 's'} to stop`]);
    if (Date.now() - started >= options.timeoutMs) {
      const which = live.map((i) => `${i.id} (${i.status?.state ?? 'pending'})`).join(', ');
      throw new CliError(EXIT.timeout, `timed out after ${formatDuration(options.timeoutMs)} waiting for the instances of ${app} to be removed: ${which}`);
    }
    return false;
  });
  return Date.now() - started;
}
