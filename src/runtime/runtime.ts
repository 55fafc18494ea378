// One interface for every way Gantry runs a workload. The agent only ever talks to this.
import type { Readable } from 'node:stream';
import type { AssignedPort, RuntimeName } from '../model/types.js';
import type { RunFile } from './instance-files.js';
import type { UsageCounters } from './usage-counters.js';

/** Everything a runtime needs to start one instance; built by the agent from an Instance. */
export interface RunSpec {
  instanceId: string;
  app: string;
  /** The app's environment name (prod, staging, ...), not environment variables. */
  appEnv: string;
  entry: string;
  release: number;
  /** docker runtime: the image. */
  image?: string;
  /** Command (docker: overrides the image's CMD; process: the program and its arguments). */
  command?: string[];
  args: string[];
  /** Final environment; the runtime adds PORT / PORT_<NAME> for assigned host ports. */
  env: Record<string, string>;
  workdir?: string;
  /** CPUs, fractional (0.25 = a quarter of one core's time): the CFS quota. */
  cpu: number;
  /**
   * Cores the instance may run on. A bound instance: its exclusive cores plus its fragment core.
   * An unbound one: the node's shared pool (cores neither reserved nor held exclusively).
   * Undefined: any core.
   */
  cpuset?: number[];
  /** Relative CPU weight (cgroup cpu.shares, 1024 = one core's worth); set for bound instances. */
  cpuShares?: number;
  memoryBytes: number;
  ports: AssignedPort[];
  labels: Record<string, string>;
  /**
   * Named local volumes of this instance, kept across restarts and rebuilds in place, deleted
   * with the instance. docker: a named volume per (instance, name) mounted at `path`;
   * process: a directory per (instance, name), its path in GANTRY_VOLUME_<NAME>.
   */
  volumes?: VolumeSpec[];
  /**
   * Files given to the instance, read-only (secret values): docker bind-mounts each at its path;
   * process writes them under the instance's directory, whose path is in GANTRY_FILES.
   */
  files?: RunFile[];
  /**
   * docker with a managed network: the address this instance had before (kept across restarts
   * and rebuilds in place). Unset: the runtime picks one. Ignored by runtimes without one.
   */
  ip?: string;
}

export interface VolumeSpec {
  name: string;
  /** Where it is mounted inside the container (docker). */
  path: string;
}

/** A step that must run to completion before the instance starts (e.g. unpack a code bundle). */
export interface InitStep {
  /** docker: the image to run it in (default: the instance's image). */
  image?: string;
  command: string[];
  timeoutMs: number;
}

export type RuntimeState = 'running' | 'exited';

export interface RuntimeInstance {
  instanceId: string;
  /** Container id (docker) or "pid:<pid>" (process). */
  runtimeId: string;
  state: RuntimeState;
  exitCode: number | null;
  /** Set when the kernel killed it for exceeding its memory limit. */
  oomKilled: boolean;
  startedAt: number | null;
  finishedAt: number | null;
  /** The labels Gantry put on it (gantry.app, gantry.entry, gantry.instance, gantry.release, ...). */
  labels: Record<string, string>;
  /** Its address on the runtime's managed network, if it is on one. */
  ip?: string;
}

export interface ExecResult {
  exitCode: number;
  output: string;
}

export interface TerminalOptions {
  cols: number;
  rows: number;
  /** Instead of a login-less `sh`. */
  command?: string[];
}

/** A running terminal: text in and out, a size, one end. */
export interface Terminal {
  write(data: string): void;
  resize(cols: number, rows: number): void;
  onData(listener: (data: string) => void): void;
  /** Once: the shell's exit code (null when unknown: killed, or the engine did not say). */
  onExit(listener: (code: number | null) => void): void;
  /** Ends the shell (hang-up); onExit follows. */
  close(): void;
}

/** The shell a terminal runs when no command is given: present in every image worth a shell, and no login scripts. */
export const TERMINAL_SHELL = ['sh'];

export interface LogOptions {
  follow: boolean;
  /** Last N lines; all when undefined. */
  tail?: number;
}

/** A log line as read back: which stream it came from and the text without its newline. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  time: number | null;
  text: string;
}

/** What the runtime really applied; warnings say what it could not (e.g. no cgroups). */
export interface StartResult {
  instance: RuntimeInstance;
  warnings: string[];
}

/** Credentials for one registry, as the server hands them to the agent for a pull. */
export interface RegistryAuth {
  username: string;
  password: string;
}

/** An image the engine holds, for clean-up and disk use. */
export interface LocalImage {
  id: string;
  /** repo:tag names and repo@digest names it is known by. */
  names: string[];
  sizeBytes: number;
  createdAt: number;
}

/** Bytes of the layers an engine has fetched so far of a pull, and of all it has to fetch (as far as it knows yet). */
export interface PullBytes {
  doneBytes: number;
  totalBytes: number;
}

/** Runtimes that run images (docker) keep them here; the process runtime has none. */
export interface ImageStore {
  /** Whether the engine holds the image `reference` names (a pinned one: exactly that digest). */
  has(reference: string): Promise<boolean>;
  /**
   * Pulls `reference` from its registry, calling `progress` as layers arrive. Throws an Error
   * whose message is the engine's or registry's cause (never the credentials).
   */
  pull(reference: string, auth: RegistryAuth | undefined, progress: (bytes: PullBytes) => void, signal?: AbortSignal): Promise<void>;
  /**
   * The digest the registry names for `reference` now, asked through the engine (its trust and
   * mirrors apply): for a server that cannot reach the registry itself.
   */
  resolve(reference: string, auth: RegistryAuth | undefined): Promise<string>;
  list(): Promise<LocalImage[]>;
  /** Image ids that containers (running or not) of this engine are made from. */
  inUse(): Promise<Set<string>>;
  /** Removes an image no container uses; resolves false when the engine refused (in use, say). */
  remove(id: string): Promise<boolean>;
}

export interface Runtime {
  readonly name: RuntimeName;
  /** Images, for runtimes that run them. */
  readonly images?: ImageStore;
  /** Whether this runtime can run workloads here, and if not, why. */
  probe(): Promise<{ ok: boolean; reason?: string }>;
  /**
   * Creates and starts an instance. A leftover instance with the same id (exited) is removed
   * first. Throws an Error with a readable message when it cannot start (no such image, ...).
   */
  start(spec: RunSpec): Promise<StartResult>;
  /** Starts an existing exited instance again as it was (same container / same command). */
  restart(instanceId: string): Promise<RuntimeInstance>;
  /** Sends `signal`, waits up to `graceMs`, then kills. Resolves once it is not running. */
  stop(instanceId: string, signal: string, graceMs: number): Promise<void>;
  /** Sends `signal` to a running instance without stopping it (a config reload). */
  signal?(instanceId: string, signal: string): Promise<void>;
  /** Writes an instance's files (as given at its start, in that order) anew, in place: a config changed. */
  rewriteFiles?(instanceId: string, files: RunFile[]): Promise<void>;
  /** Moves a running instance to other cores (the shared pool changed); no restart. */
  updateCpuset(instanceId: string, cpuset: number[]): Promise<void>;
  /**
   * Removes a stopped instance and everything it held (container, files, cgroups, volumes).
   * Idempotent. With keepVolumes its volumes stay, for the instance rebuilt in place.
   */
  remove(instanceId: string, options?: { keepVolumes?: boolean }): Promise<void>;
  /**
   * Runs an init step to completion with the instance's environment and volumes, then removes
   * what it ran in. Resolves with its exit code and the end of its output; 124 on timeout.
   */
  runInit(spec: RunSpec, step: InitStep): Promise<ExecResult>;
  /** Every instance this runtime holds that Gantry started (found by labels / records). */
  list(): Promise<RuntimeInstance[]>;
  inspect(instanceId: string): Promise<RuntimeInstance | undefined>;
  /** Runs a command inside the instance (docker exec) or beside it (process: same env and cwd). */
  exec(instanceId: string, command: string[], timeoutMs: number): Promise<ExecResult>;
  /**
   * An interactive shell (or `options.command`) under a pseudo-terminal, in the instance (docker:
   * exec with a TTY) or beside it (process: its working directory and environment). Rejects when
   * the instance does not run.
   */
  terminal(instanceId: string, options: TerminalOptions): Promise<Terminal>;
  /** Log lines; with follow the stream stays open until destroyed or the instance is removed. */
  logs(instanceId: string, options: LogOptions): Promise<Readable>;
  /**
   * What each of these running instances has used so far (cumulative counters, see
   * usage-counters.ts); instances it does not run, or cannot read, are left out.
   */
  usage?(instanceIds: readonly string[]): Promise<Map<string, UsageCounters>>;
  close(): Promise<void>;
}

export const LABEL = {
  managed: 'gantry.managed',
  app: 'gantry.app',
  env: 'gantry.env',
  entry: 'gantry.entry',
  instance: 'gantry.instance',
  release: 'gantry.release',
} as const;

export function gantryLabels(spec: RunSpec): Record<string, string> {
  return {
    ...spec.labels,
    [LABEL.managed]: 'true',
    [LABEL.app]: spec.app,
    [LABEL.env]: spec.appEnv,
    [LABEL.entry]: spec.entry,
    [LABEL.instance]: spec.instanceId,
    [LABEL.release]: String(spec.release),
  };
}

/** PORT for the first port, PORT_<NAME> for each: how a process or container learns its ports. */
export function portEnv(ports: AssignedPort[], inside: 'container' | 'host'): Record<string, string> {
  const env: Record<string, string> = {};
  ports.forEach((port, i) => {
    const value = String(inside === 'container' ? (port.container ?? port.host) : port.host);
    if (i === 0) env.PORT = value;
    env[`PORT_${port.name.toUpperCase().replace(/-/g, '_')}`] = value;
  });
  return env;
}
