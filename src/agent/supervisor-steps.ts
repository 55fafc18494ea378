// The background steps of a supervisor (see supervisor-machine.ts): what starting, stopping and
// removing one instance asks of its runtime, in order, with the events that tell the server about
// it. A step resolves when its work is done and throws when it failed; the supervisor turns that
// into the step's outcome event and keeps the books (restart counts, backoff) through StepHost.
import type { GantryEvent, Instance, InstanceStatus, PullProgress } from '../model/types.js';
import { entryImages } from '../model/spec.js';
import type { EnsureOutcome, PullPolicy, PullWatcher } from './images.js';
import type { Runtime, RuntimeInstance, RunSpec } from '../runtime/runtime.js';
import { cpuFor } from './cpu.js';
import { PortsTakenError, takenPorts, type TakenPort } from './ports.js';
import { resolveValues, type NodeValueLookup } from './instance-values.js';

/** Marks what this node's agent started, so agents sharing one engine leave each other's alone. */
export const NODE_LABEL = 'gantry.node';
const HOOK_TIMEOUT_MS = 30_000;

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
  /**
   * The image is on the node when this resolves (pulled if the policy says so); throws with the
   * cause. `use`: the app and release that run from it (recorded for image clean-up).
   */
  ensureImage(image: string, policy: PullPolicy, watcher: PullWatcher, use?: { app: string; release: number }): Promise<EnsureOutcome>;
  /** The value of secret `team/name` as the server last sent it (undefined: not received). */
  secret?(ref: string): string | undefined;
  /** The current version of config `team/name` as the server last sent it. */
  config?(ref: string): { text?: string; values?: Record<string, string> } | undefined;
}

/** A pull that failed: its event is out already, the start fails with it. */
export class PullError extends Error {}

/** What the steps need of the supervisor they work for. */
export interface StepHost {
  readonly instance: Instance;
  readonly status: InstanceStatus;
  readonly runtime: Runtime;
  readonly hooks: SupervisorHooks;
  /** Status fields (never the state: the phase decides it). */
  update(change: Partial<InstanceStatus>): void;
  event(level: GantryEvent['level'], type: string, message: string, data?: Record<string, unknown>): void;
  /** Found running already: taken as it is, not started again (its after-start hook is not due). */
  adopt(found: RuntimeInstance): void;
  /** Started by this agent: its after-start hook is due once it is healthy. */
  recordStart(started: RuntimeInstance, change?: Partial<InstanceStatus>): void;
  /** Why it went down, when the start that ends its backoff is a restart (counted). */
  readonly restartCause: string | undefined;
  countAttempt(): void;
  /** The rebuild or restart request the step carries out; given back if the step fails. */
  takeRequest(kind: 'rebuild' | 'restart'): () => void;
  /** What the stop under way is for ("removing", "unhealthy", ...): its message and event. */
  stopReason(): string;
  /** While an image is pulled for it: reported as `pulling`, with the pull's progress; null when done. */
  pulling(progress: PullProgress | null): void;
}

export class SupervisorSteps {
  constructor(private readonly host: StepHost) {}

  /** A new container or process (after its init step), unless it already runs. */
  async start(): Promise<void> {
    const { host } = this;
    const own = await this.runningAlready();
    if (own) return host.adopt(own);
    host.update({ message: null, release: host.instance.release });
    await this.checkPorts();
    await this.pullImages();
    await this.runInit();
    const { instance: started, warnings } = await host.runtime.start(this.spec());
    for (const warning of warnings) host.event('warning', 'instance.limits', warning);
    host.recordStart(started, { message: warnings.join('; ') || null });
    host.event('info', 'instance.started', `${host.instance.id} started on ${host.runtime.name} (${started.runtimeId.slice(0, 12)})`);
  }

  /**
   * The start that ends a backoff: a counted restart of the previous container or process when it
   * went down; a fresh start when it was a start that failed.
   */
  async startAgain(): Promise<void> {
    const { host } = this;
    const why = host.restartCause;
    if (why === undefined) return this.start();
    const own = await this.runningAlready();
    if (own) return host.adopt(own);
    host.countAttempt();
    host.recordStart(await this.restartOrStart(), { restarts: host.status.restarts + 1 });
    host.event('warning', 'instance.restarted', `${host.instance.id} restarted after ${why} (restart ${host.status.restarts})`, { restarts: host.status.restarts });
  }

  /** Stopped on request and wanted again: the same container or process, or a fresh one if it is gone. */
  async resume(): Promise<void> {
    const { host } = this;
    const own = await host.runtime.inspect(host.instance.id);
    if (own?.state === 'running') return host.adopt(own);
    if (!own) return this.start();
    host.recordStart(await this.restartOrStart(), {});
    host.event('info', 'instance.started', `${host.instance.id} started again on ${host.runtime.name}`);
  }

  /** Only a restart was asked for: the previous container again, not a new one. */
  async restartInPlace(): Promise<void> {
    const { host } = this;
    host.takeRequest('restart');
    host.recordStart(await this.restartOrStart(), {});
    host.event('info', 'instance.restarted', `${host.instance.id} restarted on request (same ${host.runtime.name === 'docker' ? 'container' : 'process record'})`);
  }

  /**
   * Traffic goes elsewhere before the instance hears of its end: out of the registry, then a moment
   * (stop.drain) for nginx reloads and DNS caches to follow while it still answers; then its
   * before-stop hook, its stop signal and grace. One seen not running is only withdrawn.
   */
  async stop(seen: RuntimeInstance | undefined): Promise<void> {
    const { host } = this;
    const why = host.stopReason();
    // Nothing to stop when it is not there (never started: its ports were taken, say) or not
    // running; when the runtime cannot say, the stop is tried and its failure reported.
    const current = seen ?? (await host.runtime.inspect(host.instance.id).catch(() => 'unknown' as const));
    if (current === undefined || (current !== 'unknown' && current.state !== 'running')) {
      await host.hooks.withdraw(host.instance).catch(() => false);
      return host.update({ message: why });
    }
    const { signal, grace, drain } = host.instance.spec.stop;
    if ((await host.hooks.withdraw(host.instance)) && drain > 0) await new Promise((resolve) => setTimeout(resolve, drain));
    const beforeStop = host.instance.spec.hooks.beforeStop;
    if (beforeStop) await this.runHook('beforeStop', beforeStop, grace);
    await host.runtime.stop(host.instance.id, signal, grace);
    host.update({ message: why });
    host.event('info', 'instance.stopped', `${host.instance.id} stopped (${why})`);
  }

  async remove(): Promise<void> {
    await this.host.runtime.remove(this.host.instance.id);
    this.host.update({ message: null });
  }

  /** For a rebuild in place: the container or process record goes, its volumes stay for the new one. */
  async discard(): Promise<void> {
    const { host } = this;
    const giveBack = host.takeRequest('rebuild');
    try {
      await host.runtime.remove(host.instance.id, { keepVolumes: true });
    } catch (err) {
      giveBack();
      throw err;
    }
    host.event('info', 'instance.rebuilt', `${host.instance.id} rebuilt in place with release ${host.instance.release}`);
  }

  /** The after-start hook, in the background; its failure is an event, never a rejection. */
  afterStart(): void {
    const afterStart = this.host.instance.spec.hooks.afterStart;
    // runHook reports its own failures; this catch is for the reporting itself failing.
    if (afterStart) this.runHook('afterStart', afterStart, HOOK_TIMEOUT_MS).catch(() => undefined);
  }

  /**
   * The images its init step and container run from, pulled as the entry's policy says (the
   * docker runtime only). While a pull runs the instance is reported `pulling`, with progress.
   */
  private async pullImages(): Promise<void> {
    const { host } = this;
    const { spec } = host.instance;
    if (host.runtime.name !== 'docker') return;
    const policy = spec.pull ?? 'ifMissing';
    for (const image of entryImages(spec)) {
      const where = `${image} on ${host.instance.node}`;
      try {
        const outcome = await host.hooks.ensureImage(image, policy, {
          started: () => {
            host.pulling({ image, doneBytes: 0, totalBytes: 0 });
            host.event('info', 'instance.pulling', `pulling ${where} for ${host.instance.id}`, { image });
          },
          progress: (progress) => host.pulling(progress),
        }, { app: host.instance.app, release: host.instance.release });
        if (outcome.pulled) host.event('info', 'instance.pulled', `pulled ${where} in ${(outcome.ms / 1000).toFixed(1)}s (${mib(outcome.bytes)})`, { image, ms: outcome.ms, bytes: outcome.bytes });
      } catch (err) {
        const cause = err instanceof Error ? err.message : String(err);
        host.event('error', 'instance.pull_failed', `cannot pull ${where}: ${cause}`, { image });
        throw new PullError(`cannot pull ${where}: ${cause}`);
      } finally {
        host.pulling(null);
      }
    }
  }

  /** The init step, if any; throws (after an init_failed event) when it fails. */
  private async runInit(): Promise<void> {
    const { host } = this;
    const init = host.instance.spec.init;
    if (!init) return;
    const result = await host.runtime.runInit(this.spec(), { image: init.image, command: init.command, timeoutMs: init.timeout });
    if (result.exitCode === 0) return;
    const tail = result.output.trim().split('\n').slice(-5).join(' | ');
    const what = `exited ${result.exitCode}${tail ? `: ${tail}` : ''}`;
    host.event('error', 'instance.init_failed', `init step of ${host.instance.id} ${what}; not starting it`, { exitCode: result.exitCode });
    throw new Error(`init step ${what}`);
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
      return await this.host.runtime.restart(this.host.instance.id);
    } catch {
      await this.pullImages();
      return (await this.host.runtime.start(this.spec())).instance;
    }
  }

  /**
   * The instance's own run, if the runtime has it running now. Asked right before starting it:
   * whatever led to the start, a running instance is not started again, and the ports it holds
   * are its own, never "taken by another program".
   */
  private async runningAlready(): Promise<RuntimeInstance | undefined> {
    const own = await this.host.runtime.inspect(this.host.instance.id);
    return own?.state === 'running' ? own : undefined;
  }

  /**
   * Starting on a host port another program holds would fail (or worse, seem to work) again and
   * again. Only called once runningAlready() said the instance itself is not running.
   */
  private async checkPorts(): Promise<void> {
    const taken = await takenPorts(this.host.instance.ports);
    if (taken.length === 0) return;
    this.host.hooks.portsTaken(taken);
    throw new PortsTakenError(taken);
  }

  private async runHook(name: string, command: string[], timeoutMs: number): Promise<void> {
    const { host } = this;
    try {
      const result = await host.runtime.exec(host.instance.id, command, timeoutMs);
      if (result.exitCode !== 0) throw new Error(`exited ${result.exitCode}: ${result.output.trim().slice(-300)}`);
      host.event('info', 'instance.hook', `${name} hook of ${host.instance.id} succeeded`);
    } catch (err) {
      host.event('warning', 'instance.hook_failed', `${name} hook of ${host.instance.id} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private spec(): RunSpec {
    return runSpec(this.host.instance, this.host.hooks.sharedCpuset(), this.host.status.ip, { secret: (ref) => this.host.hooks.secret?.(ref), config: (ref) => this.host.hooks.config?.(ref) });
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/**
 * `ip`: the address the instance had, to keep it (a managed Docker network). `secret`: the
 * values of the secrets its env and files name; throws when one has not been received.
 */
export function runSpec(instance: Instance, sharedCpuset: number[], ip?: string | null, values: NodeValueLookup = {}): RunSpec {
  const { env, files } = resolveValues(instance, values);
  return {
    instanceId: instance.id,
    app: instance.app,
    appEnv: instance.env,
    entry: instance.entry,
    release: instance.release,
    image: instance.spec.image,
    command: instance.spec.command,
    args: instance.spec.args,
    env: { ...env, GANTRY_APP: instance.app, GANTRY_ENV: instance.env, GANTRY_ENTRY: instance.entry, GANTRY_INSTANCE: instance.id, GANTRY_RELEASE: String(instance.release) },
    workdir: instance.spec.workdir,
    cpu: instance.spec.resources.cpu,
    ...cpuFor(instance, sharedCpuset),
    memoryBytes: instance.spec.resources.memory,
    ports: instance.ports,
    volumes: instance.spec.volumes,
    ...(files.length > 0 ? { files } : {}),
    labels: { ...instance.spec.labels, [NODE_LABEL]: instance.node },
    ...(ip ? { ip } : {}),
  };
}
