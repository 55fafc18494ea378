// Named volumes of the Docker runtime: one local volume per (instance, name), called
// `gantry-<instanceId>-<name>` and labelled gantry.managed / gantry.instance / gantry.app, mounted
// at the volume's path. They outlive the containers (restarts, rebuilds in place, the init step)
// and are removed with the instance, found again by their gantry.instance label.
import type Dockerode from 'dockerode';
import { engineMessage, statusOf } from './docker-common.js';
import { LABEL, type RunSpec, type VolumeSpec } from './runtime.js';

/** What Docker accepts as a volume name. */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Label with the volume's own name in the spec (informational). */
const VOLUME_LABEL = 'gantry.volume';

export function volumeName(instanceId: string, name: string): string {
  return `gantry-${instanceId}-${name}`;
}

/** The spec's volumes, checked: valid names, absolute paths, no name or path twice. Throws a readable Error. */
export function checkVolumes(spec: RunSpec): VolumeSpec[] {
  const volumes = spec.volumes ?? [];
  const names = new Set<string>();
  const paths = new Set<string>();
  for (const volume of volumes) {
    const full = volumeName(spec.instanceId, volume.name);
    if (!VOLUME_NAME.test(volume.name) || !VOLUME_NAME.test(full)) {
      throw new Error(`instance ${spec.instanceId}: invalid volume name ${JSON.stringify(volume.name)} (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)`);
    }
    if (!volume.path.startsWith('/')) {
      throw new Error(`instance ${spec.instanceId}: volume ${volume.name}: path ${JSON.stringify(volume.path)} is not absolute`);
    }
    const path = volume.path.length > 1 ? volume.path.replace(/\/+$/, '') : volume.path;
    if (names.has(volume.name)) throw new Error(`instance ${spec.instanceId}: volume ${volume.name} is listed twice`);
    if (paths.has(path)) throw new Error(`instance ${spec.instanceId}: two volumes are mounted at ${path}`);
    names.add(volume.name);
    paths.add(path);
  }
  return volumes;
}

/** HostConfig.Mounts for the spec's volumes (named volumes, read-write). */
export function volumeMounts(spec: RunSpec): Dockerode.MountSettings[] {
  return (spec.volumes ?? []).map((volume) => ({
    Type: 'volume',
    Source: volumeName(spec.instanceId, volume.name),
    Target: volume.path,
    ReadOnly: false,
  }));
}

/**
 * Creates the spec's volumes that do not exist yet; existing ones (data of an earlier run) are
 * left as they are. Throws a readable Error when the engine refuses.
 */
export async function ensureVolumes(docker: Dockerode, spec: RunSpec): Promise<void> {
  for (const volume of checkVolumes(spec)) {
    const name = volumeName(spec.instanceId, volume.name);
    try {
      await docker.getVolume(name).inspect();
      continue;
    } catch (err) {
      if (statusOf(err) !== 404) throw new Error(`cannot inspect volume ${name}: ${engineMessage(err)}`);
    }
    try {
      // Idempotent in the engine: a concurrent create of the same name gets the same volume.
      await docker.createVolume({
        Name: name,
        Driver: 'local',
        Labels: {
          [LABEL.managed]: 'true',
          [LABEL.instance]: spec.instanceId,
          [LABEL.app]: spec.app,
          [VOLUME_LABEL]: volume.name,
        },
      });
    } catch (err) {
      throw new Error(`cannot create volume ${name}: ${engineMessage(err)}`);
    }
  }
}

/** The names of the instance's volumes: labelled gantry.instance=<id> and named gantry-<id>-*. */
export async function instanceVolumes(docker: Dockerode, instanceId: string): Promise<string[]> {
  const { Volumes } = await docker.listVolumes({
    filters: { label: [`${LABEL.managed}=true`, `${LABEL.instance}=${instanceId}`] },
  });
  const prefix = volumeName(instanceId, '');
  return (Volumes ?? []).map((v) => v.Name).filter((name) => name.startsWith(prefix));
}

/** Removes every volume of the instance; done when there is none. The containers using them must be gone. */
export async function removeVolumes(docker: Dockerode, instanceId: string): Promise<void> {
  let names: string[];
  try {
    names = await instanceVolumes(docker, instanceId);
  } catch (err) {
    throw new Error(`cannot list the volumes of instance ${instanceId}: ${engineMessage(err)}`);
  }
  const failed: string[] = [];
  for (const name of names) {
    try {
      await docker.getVolume(name).remove();
    } catch (err) {
      if (statusOf(err) === 404) continue;
      failed.push(`${name}: ${engineMessage(err)}`);
    }
  }
  if (failed.length > 0) throw new Error(`instance ${instanceId}: cannot remove volumes (${failed.join('; ')})`);
}
