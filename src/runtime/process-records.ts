// The process runtime's state dir: one directory per instance, <stateDir>/<instanceId>/, holding
// record.json, the logs and the `exit` file; the instance's environment; and its volumes.
//
// All of it holds env values (secrets): the state dir and the instance dirs are 0700, record.json
// 0600 (see host/private-files.ts; fixPrivateModes fixes what an older version left readable).
//
// Volumes are directories <stateDir>/_volumes/<instanceId>/<name>, outside the instance directory
// (which every start recreates) and never taken for an instance ("_" cannot begin an instance id);
// the command finds each in GANTRY_VOLUME_<NAME>. They stay until remove() without keepVolumes.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateDirAsync, makePrivateAsync, PRIVATE_DIR_MODE, writePrivateFileAtomicAsync } from '../host/private-files.js';
import { isAlive, oomKills, type InstanceCgroups } from './cgroups.js';
import { gantryLabels, portEnv, type RunSpec, type RuntimeInstance, type VolumeSpec } from './runtime.js';

/** What the runtime keeps about one instance, in <stateDir>/<id>/record.json. */
export interface ProcessRecord {
  instanceId: string;
  /** The wrapper: session and process-group leader (pgid === pid). */
  pid: number;
  pgid: number;
  /** /proc/<pid>/stat field 22 of the wrapper, clock ticks since boot. */
  startTime: number;
  startedAt: number;
  spec: RunSpec;
  command: string[];
  env: Record<string, string>;
  cwd: string;
  stdout: string;
  stderr: string;
  cgroups: InstanceCgroups | null;
  warnings: string[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The exit code reported when a wrapper left no exit file: it was SIGKILLed itself (or the host rebooted). */
export const KILLED_EXIT_CODE = 137;

export const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function assertId(id: string): void {
  if (!ID.test(id)) throw new Error(`invalid instance id ${JSON.stringify(id)}`);
}

/** Under the state dir, beside the instance dirs; not a valid instance id, so never listed as one. */
const VOLUMES_DIR = '_volumes';
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** GANTRY_VOLUME_<NAME>: upper case, anything but letters, digits and '_' (i.e. '-', '.') as '_'. */
export function volumeEnvName(name: string): string {
  return `GANTRY_VOLUME_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** The spec's volumes, checked: valid names, none twice, no two with the same variable. Throws a readable Error. */
export function checkVolumes(spec: RunSpec): VolumeSpec[] {
  const volumes = spec.volumes ?? [];
  const vars = new Map<string, string>();
  for (const volume of volumes) {
    if (!VOLUME_NAME.test(volume.name)) {
      throw new Error(`instance ${spec.instanceId}: invalid volume name ${JSON.stringify(volume.name)} (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)`);
    }
    const name = volumeEnvName(volume.name);
    const other = vars.get(name);
    if (other !== undefined) {
      throw new Error(`instance ${spec.instanceId}: volumes ${JSON.stringify(other)} and ${JSON.stringify(volume.name)} would both be ${name}`);
    }
    vars.set(name, volume.name);
  }
  return volumes;
}

/**
 * The instance's environment: a minimal base taken from the agent (PATH, HOME, locale, TZ; never the
 * agent's other variables, which may hold its credentials), then spec.env, then the assigned ports.
 */
export function buildEnv(spec: RunSpec): Record<string, string> {
  const base: Record<string, string> = { PATH: process.env.PATH || DEFAULT_PATH };
  for (const key of ['HOME', 'LANG', 'LC_ALL', 'TZ']) {
    const value = process.env[key];
    if (value) base[key] = value;
  }
  return { ...base, ...spec.env, ...portEnv(spec.ports, 'host') };
}

/** Replaces path with the JSON of value atomically, 0600 (the previous file stays if it fails). */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writePrivateFileAtomicAsync(path, JSON.stringify(value, null, 2));
}

/** The files the runtime writes in an instance dir (the instance's own files there are left alone). */
const INSTANCE_FILES = [
  'record.json', 'record.json.tmp', 'stdout.log', 'stderr.log', 'stdout.log.1', 'stderr.log.1', 'stdout.log.1.tmp', 'stderr.log.1.tmp', 'exit', 'exit.tmp',
];

/**
 * Creates the state dir (0700) and makes private what an older version left readable: the state
 * dir, each instance dir and the runtime's files in it, the volumes dir and each instance's dir in
 * it (0700; the volumes themselves are the instance's data and keep their modes).
 */
export async function fixPrivateModes(stateDir: string): Promise<void> {
  await ensurePrivateDirAsync(stateDir);
  for (const entry of await readdir(stateDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(stateDir, entry.name);
    if (ID.test(entry.name)) {
      await makePrivateAsync(dir);
      for (const name of INSTANCE_FILES) await makePrivateAsync(join(dir, name));
    } else if (entry.name === VOLUMES_DIR) {
      await makePrivateAsync(dir);
      for (const id of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (id.isDirectory() && ID.test(id.name)) await makePrivateAsync(join(dir, id.name));
      }
    }
  }
}

export function instanceDir(stateDir: string, id: string): string {
  assertId(id);
  return join(stateDir, id);
}

export function volumesDir(stateDir: string, id: string): string {
  assertId(id);
  return join(stateDir, VOLUMES_DIR, id);
}

export async function readRecord(stateDir: string, id: string): Promise<ProcessRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(instanceDir(stateDir, id), 'record.json'), 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
}

export async function readExitFile(stateDir: string, id: string): Promise<{ code: number; at: number } | undefined> {
  const path = join(instanceDir(stateDir, id), 'exit');
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const code = Number.parseInt(text.trim(), 10);
    return Number.isFinite(code) ? { code, at: Math.round(info.mtimeMs) } : undefined;
  } catch {
    return undefined;
  }
}

export async function toInstance(stateDir: string, rec: ProcessRecord): Promise<RuntimeInstance> {
  const running = await isAlive(rec.pid, rec.startTime);
  const exit = running ? undefined : await readExitFile(stateDir, rec.instanceId);
  return instanceView(rec, running, exit, !running && (await oomKills(rec.cgroups)) > 0);
}

/** What the runtime shows of an instance, from its record and what became of its wrapper. */
export function instanceView(rec: ProcessRecord, running: boolean, exit: { code: number; at: number } | undefined, oomKilled: boolean): RuntimeInstance {
  return {
    instanceId: rec.instanceId,
    runtimeId: `pid:${rec.pid}`,
    state: running ? 'running' : 'exited',
    // No exit file although the wrapper is gone: the wrapper itself was SIGKILLed, reported as 137.
    exitCode: running ? null : (exit?.code ?? KILLED_EXIT_CODE),
    oomKilled,
    startedAt: rec.startedAt,
    finishedAt: exit?.at ?? null,
    labels: gantryLabels(rec.spec),
  };
}

/** Creates the spec's volume directories that do not exist yet; their GANTRY_VOLUME_* variables. */
export async function prepareVolumes(stateDir: string, spec: RunSpec): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const volume of checkVolumes(spec)) {
    const path = join(volumesDir(stateDir, spec.instanceId), volume.name);
    try {
      await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
    } catch (err) {
      throw new Error(`cannot create volume ${volume.name} at ${path}: ${(err as Error).message}`);
    }
    env[volumeEnvName(volume.name)] = path;
  }
  return env;
}
