// What Docker instances use, read from the kernel rather than the Engine's stats API: one stats
// call per container per sample would cost a request (and the Engine's own sampling wait) each,
// where the cgroup files cost a few reads. A container's cgroups are those of its init process
// (/proc/<pid>/cgroup, whatever the cgroup driver or version), its network figures those of its
// network namespace (/proc/<pid>/net/dev). The pid is asked of the Engine once per container
// start and kept. Only an engine on this host's socket can be read so: the pids of a remote
// engine's containers are another host's, so its instances are not sampled.
import type Dockerode from 'dockerode';
import { statusOf } from './docker-common.js';
import { cgroupFilesOfPid, completeCounters, netDevBytes, readCgroupCounters, type CgroupFiles, type UsageCounters } from './usage-counters.js';

interface Found {
  pid: number;
  files: CgroupFiles;
}

export class DockerUsage {
  /** Per container name: its init pid and cgroup files, while that process lives. */
  private readonly found = new Map<string, Found>();

  constructor(
    private readonly docker: Dockerode,
    private readonly containerName: (instanceId: string) => string,
    private readonly cgroupRoot: string,
    private readonly local: boolean,
  ) {}

  async usage(instanceIds: readonly string[]): Promise<Map<string, UsageCounters>> {
    const out = new Map<string, UsageCounters>();
    if (!this.local) return out;
    const names = new Set<string>();
    for (const id of instanceIds) {
      const name = this.containerName(id);
      names.add(name);
      const counters = this.read(this.found.get(name)) ?? this.read(await this.find(name));
      if (counters) out.set(id, counters);
    }
    for (const name of this.found.keys()) if (!names.has(name)) this.found.delete(name);
    return out;
  }

  /** The counters, or undefined when the process is gone (the container restarted or stopped). */
  private read(found: Found | undefined): UsageCounters | undefined {
    if (!found) return undefined;
    const net = netDevBytes(found.pid);
    if (!net) return undefined;
    const cgroups = readCgroupCounters(found.files);
    if (cgroups.cpuSeconds === undefined) return undefined;
    return completeCounters({ ...cgroups, netRxBytes: net.rx, netTxBytes: net.tx });
  }

  private async find(name: string): Promise<Found | undefined> {
    this.found.delete(name);
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
    const pid = info.State.Running ? info.State.Pid : 0;
    if (!pid) return undefined;
    const files = cgroupFilesOfPid(pid, this.cgroupRoot);
    if (!files) return undefined;
    const found = { pid, files };
    this.found.set(name, found);
    return found;
  }
}
