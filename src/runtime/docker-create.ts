// Container creation for the Docker runtime: the create body built from a RunSpec, the create
// call itself (which keeps the engine's warnings), and creating-and-starting with its fallbacks.
import type Dockerode from 'dockerode';
import type { AssignedPort } from '../model/types.js';
import { engineReference } from '../model/image-ref.js';
import { engineMessage, statusOf } from './docker-common.js';
import { forceRemove } from './docker-container.js';
import { volumeMounts } from './docker-volumes.js';
import { gantryLabels, portEnv, type RunSpec } from './runtime.js';

const CPU_PERIOD = 100_000;
const MIN_CPU_QUOTA = 1_000;

export interface CreateOptions {
  /** json-file log driver max-size per file (3 files are kept). */
  logMaxSize: string;
  /** json-file files kept per container (the live one included); default 3. */
  logMaxFiles?: number;
  /** Run docker-init (tini) as PID 1. */
  init: boolean;
  /** Attach to this managed network (instead of the default bridge), at `address` when given. */
  network?: { name: string; address?: string };
  /** Host files bind-mounted read-only at their targets (instance-files.ts). */
  files?: { source: string; target: string }[];
}

/**
 * A cpuset as the engine's CpusetCpus: sorted, de-duplicated core numbers joined with ','
 * ("0,1"). Empty for an empty list. Throws on anything but non-negative integers.
 */
export function cpusetCpus(cpuset: readonly number[]): string {
  const bad = cpuset.filter((core) => !Number.isSafeInteger(core) || core < 0);
  if (bad.length > 0) throw new Error(`invalid cpuset ${JSON.stringify(cpuset)}: core numbers must be non-negative integers`);
  return [...new Set(cpuset)].sort((a, b) => a - b).join(',');
}

function portKey(port: AssignedPort): string {
  return `${port.container ?? port.host}/${port.protocol}`;
}

/**
 * The POST /containers/create body for `spec`. `hostConfig` is `body.HostConfig` (the same
 * object), so a change to it (e.g. dropping Init) applies to the next create with `body`.
 */
export function createBody(
  spec: RunSpec,
  options: CreateOptions,
): { body: Dockerode.ContainerCreateOptions; hostConfig: Dockerode.HostConfig } {
  const env = { ...spec.env, ...portEnv(spec.ports, 'container') };
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const port of spec.ports) {
    const key = portKey(port);
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: '0.0.0.0', HostPort: String(port.host) });
  }
  // command replaces the image's CMD (args appended); args alone become the CMD.
  const cmd = spec.command?.length ? [...spec.command, ...spec.args] : spec.args.length ? [...spec.args] : undefined;
  const hostConfig: Dockerode.HostConfig = {
    PortBindings: bindings,
    // The Gantry agent restarts instances, not dockerd.
    RestartPolicy: { Name: 'no' },
    LogConfig: { Type: 'json-file', Config: { 'max-size': options.logMaxSize, 'max-file': String(options.logMaxFiles ?? 3) } },
    Init: options.init,
  };
  if (spec.memoryBytes > 0) {
    hostConfig.Memory = spec.memoryBytes;
    hostConfig.MemorySwap = spec.memoryBytes; // memory + swap = memory: no swap beyond the limit
  }
  if (spec.cpu > 0) {
    hostConfig.CpuPeriod = CPU_PERIOD;
    hostConfig.CpuQuota = Math.max(MIN_CPU_QUOTA, Math.round(spec.cpu * CPU_PERIOD));
  }
  // The quota above applies to bound instances too; cpuset and shares come on top of it.
  // An empty cpuset means any core, like none at all.
  if (spec.cpuset && spec.cpuset.length > 0) hostConfig.CpusetCpus = cpusetCpus(spec.cpuset);
  if (spec.cpuShares !== undefined && spec.cpuShares > 0) hostConfig.CpuShares = Math.round(spec.cpuShares);
  // The instance's named volumes (see docker-volumes.ts); created before the container is.
  if (spec.volumes && spec.volumes.length > 0) hostConfig.Mounts = volumeMounts(spec);
  if (options.files && options.files.length > 0) hostConfig.Mounts = [...(hostConfig.Mounts ?? []), ...options.files.map((f) => ({ Type: 'bind' as const, Source: f.source, Target: f.target, ReadOnly: true }))];
  if (options.network) hostConfig.NetworkMode = options.network.name;
  const body: Dockerode.ContainerCreateOptions = {
    Image: spec.image === undefined ? undefined : engineReference(spec.image),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: gantryLabels(spec),
    ExposedPorts: exposed,
    HostConfig: hostConfig,
    Tty: false,
    AttachStdin: false,
    OpenStdin: false,
  };
  if (options.network?.address) {
    body.NetworkingConfig = { EndpointsConfig: { [options.network.name]: { IPAMConfig: { IPv4Address: options.network.address } } } };
  }
  if (cmd) body.Cmd = cmd;
  if (spec.workdir) body.WorkingDir = spec.workdir;
  return { body, hostConfig };
}

/**
 * POST /containers/create directly so the engine's Warnings are not thrown away (dockerode drops
 * them); they are appended to `warnings`. Resolves with the new container's id.
 */
export function createContainer(
  docker: Dockerode,
  name: string,
  body: Dockerode.ContainerCreateOptions,
  warnings: string[],
): Promise<string> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: '/containers/create?',
        method: 'POST',
        options: { _query: { name }, _body: body },
        statusCodes: { 200: true, 201: true, 400: 'bad parameter', 404: 'no such image', 409: 'conflict', 500: 'server error' },
      },
      (err, data) => {
        if (err) {
          if (statusOf(err) === 404) {
            reject(new Error(`image "${body.Image}" is not on this node`));
          } else {
            reject(new Error(`cannot create container ${name}: ${engineMessage(err)}`));
          }
          return;
        }
        const result = data as { Id: string; Warnings?: string[] | null };
        for (const w of result.Warnings ?? []) if (w) warnings.push(w);
        resolve(result.Id);
      },
    );
  });
}

/** The image must be on this node by now: the agent pulled it before the start, as the entry's pull policy says. */
export async function ensureImage(docker: Dockerode, image: string): Promise<void> {
  try {
    await docker.getImage(engineReference(image)).inspect();
  } catch (err) {
    if (statusOf(err) === 404) throw new Error(`image "${image}" is not on this node (the entry says pull: never, or it was removed since its pull)`);
    throw new Error(`cannot inspect image "${image}": ${engineMessage(err)}`);
  }
}

/**
 * Creates and starts container `name`; resolves with its id. Falls back to no init process when
 * the engine cannot use its docker-init (with a warning). A container that could not be
 * started is removed again.
 */
export async function createAndStart(
  docker: Dockerode,
  name: string,
  body: Dockerode.ContainerCreateOptions,
  hostConfig: Dockerode.HostConfig,
  warnings: string[],
): Promise<string> {
  let id = await createContainer(docker, name, body, warnings);
  try {
    await docker.getContainer(id).start();
  } catch (err) {
    const message = engineMessage(err);
    if (hostConfig.Init && /docker-init|init binary|init process/i.test(message)) {
      // The engine has no usable init binary: run without one rather than not at all.
      await forceRemove(docker.getContainer(id));
      warnings.push(`docker-init is not usable on this node (${message}); started without an init process: signals go straight to the command and zombies are not reaped`);
      hostConfig.Init = false;
      id = await createContainer(docker, name, body, warnings);
      try {
        await docker.getContainer(id).start();
      } catch (err2) {
        await forceRemove(docker.getContainer(id));
        throw new Error(`cannot start container ${name}: ${engineMessage(err2)}`);
      }
    } else {
      // Do not leave a never-started container behind (e.g. "port is already allocated").
      await forceRemove(docker.getContainer(id));
      throw new Error(`cannot start container ${name}: ${message}`);
    }
  }
  return id;
}
