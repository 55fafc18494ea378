// Keeps one instance in its desired state on this node, by driving its state machine
// (supervisor-machine.ts): each tick offers what is wanted, then what the runtime showed, then
// whether a backoff is over; steps (supervisor-steps.ts) run in the background and come back as
// events; health verdicts come from the instance's own health watch (health-watch.ts).
//
// What this file adds to the table: the effects, the books they keep (restarts in a row for the
// backoff, why it went down, a pending rebuild or restart request, whether its after-start hook is
// due), and what entering a phase means beyond its reported state: checks begin when it is up and
// end when it is not, and it is in the service registry exactly while running and serving.
//
// Two rules keep it from acting on a false view. A listing begun before its last step began or
// ended may not show what the step did (a container started meanwhile looks missing, and would be
// started a second time, its own port then looking taken): such a tick is ignored. And nothing in
// the background ends in an unhandled rejection: failures become outcome events or are reported
// through hooks.event.
import { isDeepStrictEqual } from 'node:util';
import type { GantryEvent, Instance, InstanceStatus, RuntimeName } from '../model/types.js';
import type { Runtime, RuntimeInstance } from '../runtime/runtime.js';
import { runCheck } from './health.js';
import { HealthWatch } from './health-watch.js';
import { PortsTakenError } from './ports.js';
import {
  CHOICES, IGNORED, IN_FLIGHT_PHASES, REPORTED, STABLE_AFTER_MS, STEP_OUTCOMES, UP_PHASES, afterDownVerdict, afterStartVerdict, afterUnhealthyVerdict,
  backoffDelay, isChoice, reaction, type Choice, type Effect, type MachineEvent, type Phase, type Step, type Transition,
} from './supervisor-machine.js';
import { PullError, SupervisorSteps, type StepHost, type SupervisorHooks } from './supervisor-steps.js';

export { NODE_LABEL, runSpec, type SupervisorHooks } from './supervisor-steps.js';

/**
 * The clock observations and steps are stamped with, shared by the agent and its supervisors.
 * Monotonic: with a wall clock set back, every later listing would look older than the last
 * step and the instance would be left alone until the clock caught up.
 */
export const observationClock = (): number => performance.now();

/** What came with an event: the runtime's view, a check's detail, a step's error. */
interface Occurrence {
  seen?: RuntimeInstance;
  detail?: string;
  error?: unknown;
  now: number;
}

/** How it went down: the status message, what its restart's event says, its exit code. */
interface WentDown {
  why: string;
  restartWhy: string;
  code: number | null;
  /** Not a clean exit (restart policy on-failure restarts only these). */
  failed: boolean;
}

export class Supervisor {
  status: InstanceStatus;
  private current: Phase = 'pending';
  /** Restarts (and failed starts) in a row since it last ran stably: the backoff doubles with each. */
  private attempt = 0;
  /** When the backoff ends (Date.now()). */
  private restartAt = Infinity;
  /** Why it last went down, until it is up again: the start that ends its backoff is then a counted restart. */
  private down: WentDown | undefined;
  private request: 'rebuild' | 'restart' | undefined;
  /** Started by this agent, not yet healthy: its after-start hook runs once it is. */
  private afterStartDue = false;
  /** observationClock() when the last step began or ended: a listing begun before may not show what it did. */
  private actedAt = -Infinity;
  private disposed = false;
  private readonly health = new HealthWatch();
  private readonly steps: SupervisorSteps;
  private readonly stepRunners: Record<Step, (seen: RuntimeInstance | undefined) => Promise<void>>;

  constructor(
    public instance: Instance,
    private readonly runtime: Runtime,
    private readonly checkHost: string,
    private readonly hooks: SupervisorHooks,
    /** What an earlier run of the agent last saw of this instance. */
    previous?: InstanceStatus,
  ) {
    this.status = { id: instance.id, state: 'pending', healthy: null, restarts: previous?.restarts ?? 0, exitCode: previous?.exitCode ?? null, runtimeId: null, startedAt: null, message: null, updatedAt: Date.now(), release: previous?.release ?? instance.release, ip: previous?.ip ?? null };
    this.steps = new SupervisorSteps(this.stepHost());
    const steps = this.steps;
    this.stepRunners = {
      start: () => steps.start(),
      startAgain: () => steps.startAgain(),
      resume: () => steps.resume(),
      restartInPlace: () => steps.restartInPlace(),
      stop: (seen) => steps.stop(seen),
      remove: () => steps.remove(),
      discard: () => steps.discard(),
    };
  }

  get phase(): Phase {
    return this.current;
  }

  get runtimeName(): RuntimeName {
    return this.runtime.name;
  }

  /** A step is under way: the supervisor is not to be forgotten yet. */
  isBusy(): boolean {
    return IN_FLIGHT_PHASES.has(this.current);
  }

  /** A new assignment for the same instance: a new spec, a rebuild or restart asked for, traffic switched. */
  reassign(instance: Instance): void {
    const previous = this.instance;
    this.instance = instance;
    // A new spec for the same instance (an in-place update) or a rebuild request: a new container
    // on this node, same ports and volumes. A restart request: the same container again.
    const specChanged = !isDeepStrictEqual({ ...instance.spec, replicas: 0 }, { ...previous.spec, replicas: 0 }) || !isDeepStrictEqual(instance.ports, previous.ports);
    // Same spec, new release (the entry did not change in it): the instance joins the release as
    // it runs, and says so, or the rollout would wait for it to be started anew.
    if (!specChanged && instance.release !== previous.release && this.status.release !== undefined && this.status.release !== instance.release) this.update({ release: instance.release });
    if (instance.desired === 'running' && (specChanged || (instance.rebuild ?? 0) !== (previous.rebuild ?? 0))) {
      this.request = 'rebuild';
    } else if (instance.desired === 'running' && (instance.restart ?? 0) !== (previous.restart ?? 0)) {
      this.request ??= 'restart';
    }
    const was = previous.serving !== false;
    const now = instance.serving !== false;
    if (this.status.state !== 'running' || was === now) return;
    if (now) this.hooks.register(instance);
    else this.withdraw(instance);
  }

  /**
   * One look at the instance: `observed` is what the runtime's listing showed of it (undefined:
   * not there), `listedAt` the observationClock() reading taken right before that listing began.
   * A listing begun before this supervisor's last step began or ended is ignored; the next tick
   * brings a newer one. Without `listedAt` the observation is taken to be current.
   */
  tick(observed: RuntimeInstance | undefined, listedAt?: number, now = Date.now()): void {
    if (this.disposed || this.isBusy()) return;
    if (listedAt !== undefined && listedAt <= this.actedAt) return;
    const seen: MachineEvent = !observed ? 'seen.missing' : observed.state === 'running' ? 'seen.running' : 'seen.exited';
    const events: MachineEvent[] = [this.wish(), seen];
    if (now >= this.restartAt) events.push('backoff.elapsed');
    this.offer(events, { seen: observed, now });
  }

  /** Stops its health checks and keeps it from acting again: the supervisor is no longer needed. */
  dispose(): void {
    this.disposed = true;
    this.health.end();
  }

  /** The first of `events` the current phase reacts to is taken; the rest are not. */
  private offer(events: readonly MachineEvent[], occurrence: Occurrence): void {
    for (const event of events) {
      const cell = reaction(this.current, event);
      if (cell === IGNORED) continue;
      this.apply(cell.effects, occurrence);
      const transition = isChoice(cell) ? this.choose(cell.choose) : cell;
      if (isChoice(cell)) this.apply(transition.effects, occurrence);
      this.enter(transition.to);
      if (transition.step) this.run(transition.step, occurrence.seen);
      return;
    }
  }

  private choose(choice: Choice): Transition {
    const { spec } = this.instance;
    if (choice === 'afterStart') return CHOICES.afterStart[afterStartVerdict(spec.health)];
    if (choice === 'afterDown') return CHOICES.afterDown[afterDownVerdict(spec.restart, this.attempt, this.down?.failed ?? true)];
    return CHOICES.afterUnhealthy[afterUnhealthyVerdict(spec.restart)];
  }

  private wish(): MachineEvent {
    const { desired } = this.instance;
    if (desired === 'removed') return 'want.removed';
    if (desired === 'stopped') return 'want.stopped';
    if (this.request === 'rebuild') return 'want.rebuild';
    if (this.request === 'restart') return 'want.restart';
    return 'want.running';
  }

  private enter(next: Phase): void {
    const was = this.current;
    this.current = next;
    if (!UP_PHASES.has(next)) this.health.end();
    else if (next === 'warming' && was !== 'warming') this.watchHealth();
    this.set(REPORTED[next]);
  }

  /**
   * Runs one step in the background; its outcome comes back as an event, and then, if it worked,
   * what is wanted is offered again (it may have changed meanwhile, or ask for more: a removal
   * after its stop).
   * Stamped when it begins and ends: see tick().
   */
  private run(step: Step, seen: RuntimeInstance | undefined): void {
    const { done, failed } = STEP_OUTCOMES[step];
    this.actedAt = observationClock();
    Promise.resolve()
      .then(() => this.stepRunners[step](seen))
      .then(() => ({ event: done, error: undefined as unknown }), (error: unknown) => ({ event: failed, error }))
      .then(({ event, error }) => {
        this.actedAt = observationClock();
        // Disposed meanwhile (the agent is stopping, the instance forgotten): nothing follows.
        if (this.disposed) return;
        this.offer([event], { error, now: Date.now() });
        // After a failed step the next tick offers the wish again: at once, a failing stop or
        // removal would be retried in a tight loop.
        if (event === done && !this.isBusy()) this.offer([this.wish()], { now: Date.now() });
      })
      .catch((err: unknown) => this.reportError(`${this.instance.id}: ${describe(err)}`, describe(err)));
  }

  private apply(effects: readonly Effect[] | undefined, occurrence: Occurrence): void {
    for (const effect of effects ?? []) this.effects[effect](occurrence);
  }

  private readonly effects: Record<Effect, (o: Occurrence) => void> = {
    adopt: (o) => this.adopt(o.seen!),
    noteExit: (o) => {
      const { exitCode: code, oomKilled } = o.seen!;
      const why = oomKilled ? 'killed for exceeding its memory limit (OOM)' : `exited with code ${code ?? 'unknown'}`;
      this.event(code === 0 ? 'info' : 'warning', 'instance.exited', `${this.instance.id} ${why}`, { exitCode: code, oomKilled });
      this.wentDown({ why, restartWhy: `exit code ${code ?? 'unknown'}`, code, failed: code !== 0 }, o.now);
    },
    // Gone while it was up, and Gantry did not remove it (`docker rm -f`, a deleted process
    // record): as an exit with no exit code, which counts as a failure.
    noteVanished: (o) => {
      const runtimeId = this.status.runtimeId ?? 'unknown';
      const what = this.runtime.name === 'docker' ? `container ${runtimeId.slice(0, 12)}` : `process ${runtimeId}`;
      const why = `${what} disappeared outside Gantry (removed by hand?)`;
      this.event('warning', 'instance.vanished', `${what} of instance ${this.instance.id} disappeared outside Gantry (removed by hand?)`, { runtimeId });
      this.wentDown({ why, restartWhy: why, code: null, failed: true }, o.now);
    },
    noteUnhealthy: (o) => {
      const detail = o.detail ?? 'health check failed';
      this.event('warning', 'instance.unhealthy', `${this.instance.id} failed ${this.instance.spec.health?.retries ?? 1} health checks: ${detail}`);
      this.update({ message: detail });
      this.wentDown({ why: detail, restartWhy: `failed health checks: ${detail}`, code: null, failed: true }, o.now);
    },
    noteHealthy: (o) => {
      this.event('info', 'instance.healthy', `${this.instance.id} is healthy (${o.detail ?? 'check passed'})`);
      this.update({ message: null });
      this.runAfterStartIfDue();
    },
    afterStartHook: () => this.runAfterStartIfDue(),
    scheduleRestart: (o) => {
      const delay = backoffDelay(this.instance.spec.restart.backoff, this.attempt);
      this.restartAt = o.now + delay;
      this.update({ exitCode: this.down?.code ?? null, message: `${this.down?.why}; restarting in ${Math.round(delay / 100) / 10}s` });
    },
    keepDown: () => this.update({ exitCode: this.down?.code ?? null, message: this.down?.why ?? null }),
    giveUp: () => {
      const why = `${this.down?.why}; gave up after ${this.instance.spec.restart.maxRetries} restarts`;
      this.attempt = 0;
      this.event('error', 'instance.failed', `${this.instance.id} ${why}`);
      this.update({ exitCode: this.down?.code ?? null, message: why });
    },
    failStart: (o) => {
      const message = describe(o.error);
      const delay = backoffDelay(this.instance.spec.restart.backoff, this.attempt);
      this.attempt++;
      this.restartAt = Date.now() + delay;
      // A failed pull has said so in its own event.
      if (!(o.error instanceof PullError)) this.event('error', 'instance.start_failed', `${this.instance.id} could not start: ${message}`);
      this.update({ message: `could not start: ${message}`, portsTaken: o.error instanceof PortsTakenError ? o.error.ports : undefined });
    },
    noteFailure: (o) => this.reportError(`${this.instance.id}: ${describe(o.error)}`, describe(o.error)),
  };

  /** Backoff is forgotten once it has run STABLE_AFTER_MS. */
  private wentDown(down: WentDown, now: number): void {
    if (now - (this.status.startedAt ?? now) >= STABLE_AFTER_MS) this.attempt = 0;
    this.down = down;
  }

  /** Found running when this supervisor had not seen it so (after an agent restart, say). */
  private adopt(found: RuntimeInstance): void {
    this.down = undefined;
    this.update({ runtimeId: found.runtimeId, startedAt: found.startedAt, message: null, ip: found.ip ?? this.status.ip ?? null });
  }

  private runAfterStartIfDue(): void {
    if (!this.afterStartDue) return;
    this.afterStartDue = false;
    this.steps.afterStart();
  }

  private watchHealth(): void {
    const spec = this.instance.spec.health;
    if (!spec || this.disposed) return;
    const verdict = (event: MachineEvent) => (detail: string) => this.offer([this.wish(), event], { detail, now: Date.now() });
    this.health.begin({
      spec,
      probe: () => runCheck(spec, this.instance.ports, this.checkHost, this.runtime, this.instance.id),
      stillRunning: async () => (await this.runtime.inspect(this.instance.id).catch(() => undefined))?.state === 'running',
      startedAt: () => this.status.startedAt,
      passed: verdict('health.passed'),
      failed: verdict('health.failed'),
      broke: (err) => this.reportError(`health check of ${this.instance.id} could not run: ${describe(err)}`),
    });
  }

  /** What the steps may see and do of this supervisor. */
  private stepHost(): StepHost {
    const self = this;
    return {
      get instance() {
        return self.instance;
      },
      get status() {
        return self.status;
      },
      runtime: this.runtime,
      hooks: this.hooks,
      update: (change) => this.update(change),
      event: (level, type, message, data) => this.event(level, type, message, data),
      adopt: (found) => this.adopt(found),
      recordStart: (started, change = {}) => {
        this.down = undefined;
        this.afterStartDue = true;
        this.update({ runtimeId: started.runtimeId, startedAt: started.startedAt ?? Date.now(), exitCode: null, message: null, release: this.instance.release, ip: started.ip ?? null, portsTaken: undefined, ...change });
      },
      get restartCause() {
        return self.down?.restartWhy;
      },
      countAttempt: () => void this.attempt++,
      takeRequest: (kind) => {
        if (this.request === kind) this.request = undefined;
        return () => void (this.request ??= kind);
      },
      stopReason: () => {
        if (this.current === 'recycling') return 'unhealthy';
        const wish = this.wish();
        return wish === 'want.removed' ? 'removing' : wish === 'want.rebuild' ? 'rebuilding in place' : wish === 'want.restart' ? 'restarting' : 'stopped';
      },
      pulling: (progress) => {
        if (progress) this.set({ state: 'pulling', pull: progress, message: `pulling ${progress.image}${progress.totalBytes > 0 ? `: ${mib(progress.doneBytes)}/${mib(progress.totalBytes)}` : ''}` });
        else if (this.status.state === 'pulling') this.set({ ...REPORTED[this.current], message: null });
      },
    };
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
      this.event('error', 'instance.error', message);
      if (statusMessage !== undefined) this.update({ message: statusMessage });
    } catch {
      // The agent's own reporting failed: there is nobody left to tell, and the next tick goes on.
    }
  }

  private update(change: Omit<Partial<InstanceStatus>, 'state' | 'healthy'>): void {
    this.set(change);
  }

  /** Every status change is reported; entering and leaving `running` registers and withdraws. */
  private set(change: Partial<InstanceStatus>): void {
    const was = this.status.state;
    const now = Date.now();
    this.status = { ...this.status, ...change, updatedAt: now };
    if (this.status.state !== 'pulling') delete this.status.pull;
    if (this.status.state !== 'running') this.status.healthySince = null;
    else if (was !== 'running') this.status.healthySince = now;
    this.hooks.report(this.status);
    if (this.status.state === 'running' && was !== 'running' && this.instance.desired === 'running' && this.instance.serving !== false) this.hooks.register(this.instance);
    // A stop withdraws it itself: it drains only if the instance was listed.
    if (this.status.state !== 'running' && was === 'running' && this.current !== 'stopping') this.withdraw(this.instance);
  }

  private event(level: GantryEvent['level'], type: string, message: string, data?: Record<string, unknown>): void {
    this.hooks.event({ level, type, app: this.instance.app, entry: this.instance.entry, instance: this.instance.id, message, ...(data ? { data } : {}) });
  }
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MiB`;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
