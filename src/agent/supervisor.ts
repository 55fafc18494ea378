// Keeps one instance in its desired state on this node: starts it, restarts it per its
// restart policy with exponential backoff (after an exit, or when its container or process
// disappeared outside Gantry), runs its health checks and hooks, stops and removes it. Driven by
// the agent's tick with what the runtime observed; never blocks a tick, and never acts on a view
// of the runtime older than its own last action: a container it has just started would look
// missing in it, and be started a second time (its own port then looking taken).
// Actions run in the background; none of them can end in an unhandled rejection: failures are
// reported through hooks.event.
import type { GantryEvent, Instance, InstanceStatus } from '../model/types.js';
import type { Runtime, RuntimeInstance, RunSpec } from '../runtime/runtime.js';
import { isDeepStrictEqual } from 'node:util';
import { runCheck } from './health.js';
import { cpuFor } from './cpu.js';
import { PortsTakenError, takenPorts, type TakenPort } from './ports.js';

/** Marks what this node's agent started, so agents sharing one engine leave each other's alone. */
export const NODE_LABEL = 'gantry.node';

export interface SupervisorHooks {
  report(status: InstanceStatus): void;
  event(event: Omit<GantryEvent, 'time'>): void;
  /** Put a healthy instance in the service registry. */
  register(instance: Instance): void;
  /** Take it out; resolves once the registry no longer lists it, with whether it was listed. */
  withdraw(instance: Instance): Promise<boolean>;
  /** The node's shared cores now, for unbound instances. */
  sharedCpuset(): number[];
  /** Host ports another program was found holding. */
  portsTaken(ports: TakenPort[]): void;
}

/**
 * The clock observations and actions are stamped with, shared by the agent and its supervisors.
 * Monotonic: with a wall clock set back, every later listing would look older than the last
 * action and the instance would be left alone until the clock caught up.
 */
export const observationClock = (): number => performance.now();

/** Backoff is forgotten once an instance has run this long. */
const STABLE_AFTER_MS = 10_000;
const HOOK_TIMEOUT_MS = 30_000;

export class Supervisor {
  status: InstanceStatus;
  private busy = false;
  private attempt = 0;
  private nextRestartAt = 0;
  private checking = false;
  private nextCheckAt = 0;
  private failures = 0;
  /** Set when this agent started it: the after-start hook runs once it is healthy. */
  private afterStartPending = false;
  /** Stopped because the app was stopped: starting the app again starts it, whatever its restart policy. */
  private stoppedOnRequest = false;
  private pendingAction: 'rebuild' | 'restart' | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** observationClock() when the last action began or ended: a listing begun before may not show what it did. */
  private actedAt = -Infinity;
  /**
   * Why it waits in backoff after going down (an exit, a disappearance): the start that ends the
   * wait is a restart, and counted, even when its container is gone by then.
   */
  private restartWhy: string | undefined;
  /** Its restart policy let it stay down (an exit or a disappearance): nothing starts it until asked to. */
  private keptDown = false;

  constructor(
    public instance: Instance,
    private readonly runtime: Runtime,
    private readonly checkHost: string,
    private readonly hooks: SupervisorHooks,
    /** What an earlier run of the agent last saw of this instance. */
    previous?: InstanceStatus,
  ) {
    this.status = { id: instance.id, state: 'pending', healthy: null, restarts: previous?.restarts ?? 0, exitCode: previous?.exitCode ?? null, runtimeId: null, startedAt: null, message: null, updatedAt: Date.now(), release: previous?.release ?? instance.release, ip: previous?.ip ?? null };
  }

  /** A new assignment for the same instance: traffic may have been switched to or away from it. */
  reassign(instance: Instance): void {
    const previous = this.instance;
    this.instance = instance;
    // A new spec for the same instance (an in-place update) or a rebuild request: a new container
    // on this node, same ports and volumes. A restart request: the same container again.
    const specChanged = !isDeepStrictEqual({ ...instance.spec, replicas: 0 }, { ...previous.spec, replicas: 0 }) || !isDeepStrictEqual(instance.ports, previous.ports);
    if (instance.desired === 'running' && (specChanged || (instance.rebuild ?? 0) !== (previous.rebuild ?? 0))) {
      this.pendingAction = 'rebuild';
    } else if (instance.desired === 'running' && (instance.restart ?? 0) !== (previous.restart ?? 0)) {
      this.pendingAction ??= 'restart';
    }
    const was = previous.serving !== false;
    const now = instance.serving !== false;
    if (this.status.state !== 'running' || was === now) return;
    if (now) this.hooks.register(instance);
    else this.withdraw(instance);
  }

  get runtimeName(): string {
    return this.runtime.name;
  }

  isBusy(): boolean {
    return this.busy;
  }

  /**
   * One look at the instance: `observed` is what the runtime's listing showed of it (undefined:
   * not there), `listedAt` the observationClock() reading taken right before that listing began.
   * A listing begun before this supervisor's last action began or ended may not show what the
   * action did (a container started meanwhile looks missing), so it is ignored and the next tick
   * brings a newer one. Without `listedAt` the observation is taken to be current.
   */
  tick(observed: RuntimeInstance | undefined, listedAt?: number, now = Date.now()): void {
    if (this.busy) return;
    if (listedAt !== undefined && listedAt <= this.actedAt) return;
    if (this.pendingAction && this.instance.desired === 'running') {
      const action = this.pendingAction;
      this.pendingAction = undefined;
      return this.act(() => (action === 'rebuild' ? this.rebuildNow(observed) : this.restartInPlace(observed)));
    }
    const desired = this.instance.desired;
    if (desired === 'removed') return this.act(() => this.removeNow(observed));
    if (desired === 'stopped') {
      this.stoppedOnRequest = true;
      this.keptDown = false; // started again on request, whatever happened before
      if (observed?.state === 'running') return this.act(() => this.stopNow('stopped'));
      if (this.status.state !== 'exited') this.set({ state: 'exited', healthy: null, message: 'stopped' });
      return;
    }
    if (!observed) {
      if (this.isUp() && this.status.runtimeId) return this.onVanished(this.status.runtimeId, now);
      if (this.keptDown) return;
      if (this.status.state === 'failed' && this.attempt === 0) return; // given up (maxRetries)
      if (now < this.nextRestartAt) return;
      const why = this.restartWhy;
      if (why !== undefined) return this.act(() => this.restartNow(undefined, why));
      return this.act(() => this.startNow());
    }
    if (observed.state === 'exited' && this.stoppedOnRequest) return this.act(() => this.resumeNow());
    this.stoppedOnRequest = false;
    if (observed.state === 'exited') return this.onExited(observed, now);
    this.onRunning(observed, now);
  }

  private isUp(): boolean {
    return ['starting', 'running', 'unhealthy'].includes(this.status.state);
  }

  private onExited(observed: RuntimeInstance, now: number): void {
    const wasUp = ['starting', 'running', 'unhealthy', 'pending'].includes(this.status.state);
    if (wasUp) {
      const code = observed.exitCode;
      const why = observed.oomKilled ? 'killed for exceeding its memory limit (OOM)' : `exited with code ${code ?? 'unknown'}`;
      this.hooks.event({ level: code === 0 ? 'info' : 'warning', type: 'instance.exited', ...this.about(), message: `${this.instance.id} ${why}`, data: { exitCode: code, oomKilled: observed.oomKilled } });
      this.wentDown(why, `exit code ${code ?? 'unknown'}`, code, code !== 0, now);
      return;
    }
    if (this.status.state === 'backoff' && now >= this.nextRestartAt) return this.act(() => this.restartNow(observed, this.restartWhy));
  }

  /**
   * Its container or process is gone while it was up, and Gantry did not remove it (someone ran
   * `docker rm -f`, or deleted its process record): as an exit, with no exit code, that counts
   * as a failure; restarted per its policy after the backoff, and that restart is counted.
   */
  private onVanished(runtimeId: string, now: number): void {
    const what = this.runtime.name === 'docker' ? `container ${runtimeId.slice(0, 12)}` : `process ${runtimeId}`;
    const why = `${what} disappeared outside Gantry (removed by hand?)`;
    this.hooks.event({ level: 'warning', type: 'instance.vanished', ...this.about(), message: `${what} of instance ${this.instance.id} disappeared outside Gantry (removed by hand?)`, data: { runtimeId } });
    this.wentDown(why, why, null, true, now);
  }

  /**
   * It stopped running without Gantry stopping it: restarted per its restart policy after the
   * backoff (`restartWhy` then names the cause in the restart's event), or left down (exited, or
   * failed once maxRetries is reached).
   */
  private wentDown(why: string, restartWhy: string, code: number | null, failed: boolean, now: number): void {
    if (now - (this.status.startedAt ?? now) >= STABLE_AFTER_MS) this.attempt = 0;
    const policy = this.instance.spec.restart;
    const restart = policy.policy === 'always' || (policy.policy === 'on-failure' && failed);
    if (!restart) {
      this.keptDown = true;
      return this.set({ state: 'exited', healthy: null, exitCode: code, message: why });
    }
    if (policy.maxRetries !== undefined && this.attempt >= policy.maxRetries) {
      this.attempt = 0;
      this.hooks.event({ level: 'error', type: 'instance.failed', ...this.about(), message: `${this.instance.id} ${why}; gave up after ${policy.maxRetries} restarts` });
      return this.set({ state: 'failed', healthy: null, exitCode: code, message: `${why}; gave up after ${policy.maxRetries} restarts` });
    }
    const delay = Math.min(policy.backoff.initial * 2 ** this.attempt, policy.backoff.max);
    this.nextRestartAt = now + delay;
    this.restartWhy = restartWhy;
    this.set({ state: 'backoff', healthy: null, exitCode: code, message: `${why}; restarting in ${Math.round(delay / 100) / 10}s` });
  }

  private onRunning(observed: RuntimeInstance, now: number): void {
    this.adopt(observed);
    if (this.status.startedAt && now - this.status.startedAt >= STABLE_AFTER_MS) this.attempt = 0;
    const health = this.instance.spec.health;
    if (!health) {
      if (this.afterStartPending) this.runAfterStart();
      return;
    }
    // Checks run on their own timer at the spec's interval, not at the agent's tick.
    if (!this.checking && !this.checkTimer) this.scheduleCheck(Math.max(0, this.nextCheckAt - now));
  }

  private scheduleCheck(delayMs: number): void {
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      const health = this.instance.spec.health;
      const checkable = health && !this.busy && this.instance.desired === 'running' && ['starting', 'running', 'unhealthy'].includes(this.status.state);
      if (!checkable || this.disposed) return; // the next tick schedules again when it should
      const started = Date.now();
      this.checking = true;
      this.nextCheckAt = started + health.interval;
      runCheck(health, this.instance.ports, this.checkHost, this.runtime, this.instance.id)
        .then(async (result) => {
          // A check that fails because the instance has just exited is not a health problem:
          // the exit (and its code) is, and the next tick reports it.
          if (!result.ok && (await this.runtime.inspect(this.instance.id).catch(() => undefined))?.state !== 'running') return;
          this.onCheck(result.ok, result.detail, started);
        })
        .catch((err: unknown) => this.reportError(`health check of ${this.instance.id} could not run: ${describe(err)}`))
        .finally(() => {
          this.checking = false;
          if (!this.checkTimer && !this.disposed) this.scheduleCheck(Math.max(0, this.nextCheckAt - Date.now()));
        });
    }, delayMs);
    this.checkTimer.unref();
  }

  /** Stops its timers: the supervisor is no longer needed. */
  dispose(): void {
    this.disposed = true;
    clearTimeout(this.checkTimer);
    this.checkTimer = undefined;
  }

  private onCheck(ok: boolean, detail: string, checkedAt: number): void {
    if (this.busy || this.instance.desired !== 'running' || !['starting', 'running', 'unhealthy'].includes(this.status.state)) return;
    const health = this.instance.spec.health!;
    if (ok) {
      this.failures = 0;
      if (this.status.state !== 'running') {
        this.hooks.event({ level: 'info', type: 'instance.healthy', ...this.about(), message: `${this.instance.id} is healthy (${detail})` });
        this.set({ state: 'running', healthy: true, message: null });
      }
      if (this.afterStartPending) this.runAfterStart();
      return;
    }
    if (this.status.startedAt && checkedAt - this.status.startedAt < health.startPeriod) return;
    this.failures++;
    if (this.failures < health.retries) return;
    this.failures = 0;
    this.hooks.event({ level: 'warning', type: 'instance.unhealthy', ...this.about(), message: `${this.instance.id} failed ${health.retries} health checks: ${detail}` });
    this.set({ state: 'unhealthy', healthy: false, message: detail });
    if (this.instance.spec.restart.policy !== 'never') {
      this.act(async () => {
        await this.stopNow('unhealthy');
        await this.restartNow(undefined, `failed health checks: ${detail}`);
      });
    }
  }

  private async startNow(): Promise<void> {
    const own = await this.runningAlready();
    if (own) return this.adopt(own);
    this.set({ state: 'starting', healthy: null, message: null, release: this.instance.release });
    try {
      await this.checkPorts();
      if (!(await this.runInit())) return;
      const { instance, warnings } = await this.runtime.start(runSpec(this.instance, this.hooks.sharedCpuset(), this.status.ip));
      for (const warning of warnings) this.hooks.event({ level: 'warning', type: 'instance.limits', ...this.about(), message: warning });
      this.started(instance, { message: warnings.join('; ') || null });
      this.hooks.event({ level: 'info', type: 'instance.started', ...this.about(), message: `${this.instance.id} started on ${this.runtime.name} (${instance.runtimeId.slice(0, 12)})` });
    } catch (err) {
      this.failStart(err);
    }
  }

  /** The init step, if any; false (and the start stopped, with an event) when it fails. */
  private async runInit(): Promise<boolean> {
    const init = this.instance.spec.init;
    if (!init) return true;
    const result = await this.runtime.runInit(runSpec(this.instance, this.hooks.sharedCpuset(), this.status.ip), { image: init.image, command: init.command, timeoutMs: init.timeout });
    if (result.exitCode === 0) return true;
    const tail = result.output.trim().split('\n').slice(-5).join(' | ');
    this.hooks.event({ level: 'error', type: 'instance.init_failed', ...this.about(), message: `init step of ${this.instance.id} exited ${result.exitCode}${tail ? `: ${tail}` : ''}; not starting it`, data: { exitCode: result.exitCode } });
    this.failStart(new Error(`init step exited ${result.exitCode}${tail ? `: ${tail}` : ''}`));
    return false;
  }

  /** Same node, ports and volumes; a new container or process with the instance's current spec. */
  private async rebuildNow(observed: RuntimeInstance | undefined): Promise<void> {
    if (observed?.state === 'running') await this.stopNow('rebuilding in place');
    await this.runtime.remove(this.instance.id, { keepVolumes: true });
    this.hooks.event({ level: 'info', type: 'instance.rebuilt', ...this.about(), message: `${this.instance.id} rebuilt in place with release ${this.instance.release}` });
    await this.startNow();
  }

  /** Only a restart was asked for: the previous container again, not a new one. */
  private async restartInPlace(observed: RuntimeInstance | undefined): Promise<void> {
    if (observed?.state === 'running') await this.stopNow('restarting');
    this.started(await this.restartOrStart(), {});
    this.hooks.event({ level: 'info', type: 'instance.restarted', ...this.about(), message: `${this.instance.id} restarted on request (same ${this.runtime.name === 'docker' ? 'container' : 'process record'})` });
  }

  private async resumeNow(): Promise<void> {
    this.stoppedOnRequest = false;
    this.started(await this.restartOrStart(), {});
    this.hooks.event({ level: 'info', type: 'instance.started', ...this.about(), message: `${this.instance.id} started again on ${this.runtime.name}` });
  }

  private async restartNow(observed: RuntimeInstance | undefined, reason?: string): Promise<void> {
    const why = reason ?? `exit code ${observed?.exitCode ?? 'unknown'}`;
    try {
      const own = await this.runningAlready();
      if (own) return this.adopt(own);
      this.attempt++;
      this.started(await this.restartOrStart(), { restarts: this.status.restarts + 1 });
      this.hooks.event({ level: 'warning', type: 'instance.restarted', ...this.about(), message: `${this.instance.id} restarted after ${why} (restart ${this.status.restarts})`, data: { restarts: this.status.restarts } });
    } catch (err) {
      this.failStart(err);
    }
  }

  /**
   * The previous container or process again (keeps its files); a fresh one if it is gone. One
   * running already is returned as it is, as the engine answers a start of a running container.
   */
  private async restartOrStart(): Promise<RuntimeInstance> {
    const own = await this.runningAlready();
    if (own) return own;
    await this.checkPorts();
    try {
      return await this.runtime.restart(this.instance.id);
    } catch {
      return (await this.runtime.start(runSpec(this.instance, this.hooks.sharedCpuset(), this.status.ip))).instance;
    }
  }

  /**
   * The instance's own run, if the runtime has it running now. Asked right before starting it:
   * whatever led to the start, a running instance is not started again, and the ports it holds
   * are its own, never "taken by another program".
   */
  private async runningAlready(): Promise<RuntimeInstance | undefined> {
    const own = await this.runtime.inspect(this.instance.id);
    return own?.state === 'running' ? own : undefined;
  }

  /** Found running when this supervisor had not seen it so: adopted (after an agent restart, say). */
  private adopt(observed: RuntimeInstance): void {
    if (this.isUp()) return;
    this.restartWhy = undefined;
    const checked = Boolean(this.instance.spec.health);
    this.set({ state: checked ? 'starting' : 'running', runtimeId: observed.runtimeId, startedAt: observed.startedAt, healthy: checked ? null : true, message: null, ip: observed.ip ?? this.status.ip ?? null });
  }

  /**
   * Starting on a host port another program holds would fail (or worse, seem to work) again and
   * again. Only called once runningAlready() said the instance itself is not running.
   */
  private async checkPorts(): Promise<void> {
    const taken = await takenPorts(this.instance.ports);
    if (taken.length === 0) return;
    this.hooks.portsTaken(taken);
    throw new PortsTakenError(taken);
  }

  /** Health is checked from now on; until it passes the instance is 'starting'. */
  private started(instance: RuntimeInstance, change: Partial<InstanceStatus>): void {
    const checked = Boolean(this.instance.spec.health);
    this.restartWhy = undefined;
    this.afterStartPending = true;
    this.nextCheckAt = 0;
    this.failures = 0;
    this.set({ state: checked ? 'starting' : 'running', healthy: checked ? null : true, runtimeId: instance.runtimeId, startedAt: instance.startedAt ?? Date.now(), exitCode: null, message: null, release: this.instance.release, ip: instance.ip ?? null, portsTaken: undefined, ...change });
  }

  private failStart(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const backoff = this.instance.spec.restart.backoff;
    const delay = Math.min(backoff.initial * 2 ** this.attempt, backoff.max);
    this.attempt++;
    this.nextRestartAt = Date.now() + delay;
    this.hooks.event({ level: 'error', type: 'instance.start_failed', ...this.about(), message: `${this.instance.id} could not start: ${message}` });
    this.set({ state: 'backoff', healthy: null, message: `could not start: ${message}`, portsTaken: err instanceof PortsTakenError ? err.ports : undefined });
  }

  private async stopNow(why: string): Promise<void> {
    const { signal, grace, drain } = this.instance.spec.stop;
    // Traffic goes elsewhere before the instance hears of its end: out of the registry, then a
    // moment for nginx reloads and DNS caches to follow while it still answers.
    if ((await this.hooks.withdraw(this.instance)) && drain > 0) await new Promise((resolve) => setTimeout(resolve, drain));
    if (this.status.state !== 'unhealthy') this.set({ state: 'stopping', message: why });
    const beforeStop = this.instance.spec.hooks.beforeStop;
    if (beforeStop) await this.runHook('beforeStop', beforeStop, grace);
    await this.runtime.stop(this.instance.id, signal, grace);
    this.set({ state: 'exited', healthy: null, message: why });
    this.hooks.event({ level: 'info', type: 'instance.stopped', ...this.about(), message: `${this.instance.id} stopped (${why})` });
  }

  private async removeNow(observed: RuntimeInstance | undefined): Promise<void> {
    if (this.status.state === 'removed') return;
    if (observed?.state === 'running') await this.stopNow('removing');
    await this.runtime.remove(this.instance.id);
    this.set({ state: 'removed', healthy: null, message: null });
  }

  private runAfterStart(): void {
    this.afterStartPending = false;
    const afterStart = this.instance.spec.hooks.afterStart;
    if (afterStart) this.runHook('afterStart', afterStart, HOOK_TIMEOUT_MS).catch((err: unknown) => this.reportError(`afterStart hook of ${this.instance.id} could not run: ${describe(err)}`));
  }

  private async runHook(name: string, command: string[], timeoutMs: number): Promise<void> {
    try {
      const result = await this.runtime.exec(this.instance.id, command, timeoutMs);
      if (result.exitCode !== 0) throw new Error(`exited ${result.exitCode}: ${result.output.trim().slice(-300)}`);
      this.hooks.event({ level: 'info', type: `instance.hook`, ...this.about(), message: `${name} hook of ${this.instance.id} succeeded` });
    } catch (err) {
      this.hooks.event({ level: 'warning', type: 'instance.hook_failed', ...this.about(), message: `${name} hook of ${this.instance.id} failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  /**
   * Runs one action in the background, one at a time; a failure is reported (instance.error and
   * the status message), never thrown. Stamped when it begins and ends: see tick().
   */
  private act(action: () => Promise<void>): void {
    this.busy = true;
    this.keptDown = false; // whatever was asked for, the instance is no longer left down as its policy had it
    this.actedAt = observationClock();
    action()
      .catch((err: unknown) => this.reportError(`${this.instance.id}: ${describe(err)}`, describe(err)))
      .finally(() => {
        this.busy = false;
        this.actedAt = observationClock();
      });
  }

  /** Out of the registry in the background; a failure is reported, not left unhandled. */
  private withdraw(instance: Instance): void {
    this.hooks.withdraw(instance).catch((err: unknown) => this.reportError(`could not withdraw ${instance.id} from the service registry: ${describe(err)}`));
  }

  /**
   * An instance.error event, and `statusMessage` in the status when given. Never throws: it is
   * the last catch of background work, which must not end in an unhandled rejection.
   */
  private reportError(message: string, statusMessage?: string): void {
    try {
      this.hooks.event({ level: 'error', type: 'instance.error', ...this.about(), message });
      if (statusMessage !== undefined) this.set({ message: statusMessage });
    } catch {
      // The agent's own reporting failed: there is nobody left to tell, and the next tick goes on.
    }
  }

  private set(change: Partial<InstanceStatus>): void {
    const was = this.status.state;
    const now = Date.now();
    this.status = { ...this.status, ...change, updatedAt: now };
    if (this.status.state !== 'running') this.status.healthySince = null;
    else if (was !== 'running') this.status.healthySince = now;
    this.hooks.report(this.status);
    if (this.status.state === 'running' && was !== 'running' && this.instance.desired === 'running' && this.instance.serving !== false) this.hooks.register(this.instance);
    if (this.status.state !== 'running' && was === 'running') this.withdraw(this.instance);
  }

  private about(): Pick<GantryEvent, 'app' | 'entry' | 'instance'> {
    return { app: this.instance.app, entry: this.instance.entry, instance: this.instance.id };
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `ip`: the address the instance had, to keep it (a managed Docker network). */
export function runSpec(instance: Instance, sharedCpuset: number[], ip?: string | null): RunSpec {
  return {
    instanceId: instance.id,
    app: instance.app,
    appEnv: instance.env,
    entry: instance.entry,
    release: instance.release,
    image: instance.spec.image,
    command: instance.spec.command,
    args: instance.spec.args,
    env: { ...instance.spec.env, GANTRY_APP: instance.app, GANTRY_ENV: instance.env, GANTRY_ENTRY: instance.entry, GANTRY_INSTANCE: instance.id, GANTRY_RELEASE: String(instance.release) },
    workdir: instance.spec.workdir,
    cpu: instance.spec.resources.cpu,
    ...cpuFor(instance, sharedCpuset),
    memoryBytes: instance.spec.resources.memory,
    ports: instance.ports,
    volumes: instance.spec.volumes,
    labels: { ...instance.spec.labels, [NODE_LABEL]: instance.node },
    ...(ip ? { ip } : {}),
  };
}
