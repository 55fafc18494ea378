// What the agent keeps on disk so that, restarted while the server is down, it still knows
// what it runs (its last assignments) and what it had seen (restart counts, start times).
//
// The files hold env values (secrets): the directory is 0700 and the files 0600, fixed when the
// cache opens if an older version left them readable (see host/private-files.ts). A write never
// throws: it replaces the file atomically (the previous one stays intact when it fails), returns
// false and reports the failure through `log` once per distinct error (not once per write); the
// next write simply tries again. A disk that is full or a process out of descriptors must not
// take the agent, and the instances it watches, down.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance, InstanceStatus } from '../model/types.js';
import type { ConfigValueMap, SecretValueMap } from '../model/agent-protocol.js';
import { ensurePrivateDir, makePrivate, writePrivateFileAtomic } from '../host/private-files.js';

const FILES = ['assignments.json', 'statuses.json', 'boot.json', 'cluster.json', 'secrets.json', 'configs.json'] as const;
type CacheFile = (typeof FILES)[number];

export interface AgentCacheOptions {
  /**
   * Failures (each distinct error once, until a write succeeds again), recoveries, and modes that
   * could not be fixed. Default: console.error.
   */
  log?: (message: string) => void;
}

export class AgentCache {
  private readonly log: (message: string) => void;
  /** The directory exists (0700 unless chmod failed) and the files' modes were fixed. */
  private ready = false;
  /** The last failure reported, cleared by a successful write. */
  private failing: string | undefined;

  constructor(
    private readonly dir: string,
    options: AgentCacheOptions = {},
  ) {
    this.log = options.log ?? ((message) => console.error(`gantry agent: ${message}`));
    this.prepare();
  }

  loadAssignments(): Instance[] {
    return this.read<Instance[]>('assignments.json') ?? [];
  }

  /** False when the file could not be written (reported through `log`). */
  saveAssignments(instances: Instance[]): boolean {
    return this.write('assignments.json', instances);
  }

  loadStatuses(): Map<string, InstanceStatus> {
    return new Map((this.read<InstanceStatus[]>('statuses.json') ?? []).map((s) => [s.id, s]));
  }

  /** False when the file could not be written (reported through `log`). */
  saveStatuses(statuses: InstanceStatus[]): boolean {
    return this.write('statuses.json', statuses);
  }

  /** The secret values this node's instances use, by `team/name`, as the server last sent them. */
  loadSecrets(): SecretValueMap {
    return this.read<SecretValueMap>('secrets.json') ?? {};
  }

  /** False when the file could not be written (reported through `log`). */
  saveSecrets(values: SecretValueMap): boolean {
    return this.write('secrets.json', values);
  }

  /** The config versions this node's instances use, by `team/name`. */
  loadConfigs(): ConfigValueMap {
    return this.read<ConfigValueMap>('configs.json') ?? {};
  }

  saveConfigs(values: ConfigValueMap): boolean {
    return this.write('configs.json', values);
  }

  /** The id of the cluster this node last took instances from (undefined before its first server). */
  loadCluster(): string | undefined {
    return this.read<{ id: string }>('cluster.json')?.id;
  }

  saveCluster(id: string): boolean {
    return this.write('cluster.json', { id });
  }

  /** True when the host booted since the agent last ran (and it had run here before). */
  rebootedSinceLastRun(bootId: string): boolean {
    const last = this.read<{ bootId: string }>('boot.json');
    this.write('boot.json', { bootId });
    return last !== undefined && last.bootId !== bootId;
  }

  /**
   * Creates the directory (0700) and makes the existing files 0600. False (reported) when there is
   * no directory to write in; a mode that cannot be fixed (not the owner) is reported, not fatal:
   * the next write of that file replaces it with a 0600 one anyway.
   */
  private prepare(): boolean {
    if (this.ready) return true;
    try {
      ensurePrivateDir(this.dir);
    } catch (err) {
      let isDir = false;
      try {
        isDir = statSync(this.dir).isDirectory();
      } catch {
        // no directory
      }
      if (!isDir) {
        this.failed(`cannot create the agent cache directory ${this.dir}`, err);
        return false;
      }
      this.log(`cannot make the agent cache directory ${this.dir} private (0700): ${(err as Error).message}`);
    }
    this.ready = true;
    for (const name of FILES) {
      for (const path of [join(this.dir, name), join(this.dir, `${name}.tmp`)]) {
        try {
          makePrivate(path);
        } catch (err) {
          this.log(`cannot make ${path} private (0600): ${(err as Error).message}`);
        }
      }
    }
    return true;
  }

  private read<T>(name: CacheFile): T | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  private write(name: CacheFile, value: unknown): boolean {
    const path = join(this.dir, name);
    try {
      if (!this.prepare()) return false;
      writePrivateFileAtomic(path, JSON.stringify(value));
    } catch (err) {
      this.failed(`cannot write the agent cache file ${path}`, err);
      return false;
    }
    if (this.failing !== undefined) {
      this.failing = undefined;
      this.log(`the agent cache in ${this.dir} is written again`);
    }
    return true;
  }

  private failed(what: string, err: unknown): void {
    const e = err as NodeJS.ErrnoException;
    const key = e?.code ?? String(e?.message ?? err);
    if (key === this.failing) return;
    this.failing = key;
    this.log(`${what}: ${e?.message ?? String(err)} (kept in memory, retried on the next write; not reported again until the error changes)`);
  }
}
