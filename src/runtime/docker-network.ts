// A Gantry-managed Docker bridge network on which every instance keeps one address for its
// whole life: across restarts and rebuilds in place (a new container, the same address).
// Docker only honours a requested address on a network with a configured subnet, and its own
// allocator knows nothing of a stopped container's address. So the subnet is split in two:
// the engine hands out addresses from the upper half (--ip-range) to anything Gantry does not
// pin (init-step containers, containers started by hand), and Gantry pins instances' addresses
// in the lower half, choosing ones no container on the network holds or has pinned.
import type Dockerode from 'dockerode';
import { engineMessage, statusOf } from './docker-common.js';
import { LABEL } from './runtime.js';

export interface ManagedNetwork {
  name: string;
  /** IPv4 CIDR, e.g. 10.213.0.0/16; a prefix of /8 to /28. */
  subnet: string;
}

interface Subnet {
  base: number;
  prefix: number;
}

export function parseSubnet(cidr: string): Subnet {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr.trim());
  const octets = match?.slice(1, 5).map(Number);
  const prefix = Number(match?.[5]);
  if (!octets || octets.some((o) => o > 255) || prefix < 8 || prefix > 28) {
    throw new Error(`invalid docker network subnet "${cidr}": expected an IPv4 CIDR with a prefix from /8 to /28, e.g. 10.213.0.0/16`);
  }
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const address = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  return { base: (address & mask) >>> 0, prefix };
}

export function formatAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

function addressValue(text: string): number | undefined {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function size(subnet: Subnet): number {
  return 2 ** (32 - subnet.prefix);
}

/** The upper half of the subnet: where the engine allocates addresses nobody asked for. */
export function dynamicRange(subnet: Subnet): string {
  return `${formatAddress(subnet.base + size(subnet) / 2)}/${subnet.prefix + 1}`;
}

/** Whether `address` is one Gantry may pin: in the lower half, past the network address and the gateway. */
export function isPinnable(subnet: Subnet, address: string): boolean {
  const value = addressValue(address);
  return value !== undefined && value >= subnet.base + 2 && value < subnet.base + size(subnet) / 2;
}

/** The first pinnable address not in `used`; undefined when the lower half is full. */
export function firstFree(subnet: Subnet, used: ReadonlySet<string>): string | undefined {
  for (let value = subnet.base + 2; value < subnet.base + size(subnet) / 2; value++) {
    const address = formatAddress(value);
    if (!used.has(address)) return address;
  }
  return undefined;
}

/**
 * Creates the network if it does not exist. An existing network must have the same subnet:
 * addresses pinned in another one would be refused by the engine.
 */
export async function ensureNetwork(docker: Dockerode, network: ManagedNetwork): Promise<void> {
  const subnet = parseSubnet(network.subnet);
  const wanted = `${formatAddress(subnet.base)}/${subnet.prefix}`;
  const existing = await inspectNetwork(docker, network.name);
  if (existing) {
    // Published ports and pinned addresses are bridge features: any other driver drops them.
    if (existing.Driver !== undefined && existing.Driver !== 'bridge') {
      throw new Error(`docker network "${network.name}" exists with driver ${existing.Driver}, not bridge: remove it or pick another --docker-network name`);
    }
    const subnets = (existing.IPAM?.Config ?? []).map((c) => c.Subnet).filter(Boolean);
    if (subnets.includes(wanted)) return;
    throw new Error(`docker network "${network.name}" exists with subnet ${subnets.join(', ') || '(none configured)'}, not ${wanted}: remove it or pass its subnet`);
  }
  try {
    await docker.createNetwork({
      Name: network.name,
      Driver: 'bridge',
      CheckDuplicate: true,
      IPAM: { Driver: 'default', Config: [{ Subnet: wanted, IPRange: dynamicRange(subnet) }] },
      Labels: { [LABEL.managed]: 'true' },
    });
  } catch (err) {
    // Another agent on the same engine created it first.
    if (statusOf(err) === 409) return ensureNetwork(docker, network);
    throw new Error(`cannot create docker network "${network.name}" (${wanted}): ${engineMessage(err)}`);
  }
}

interface NetworkFacts {
  Driver?: string;
  IPAM?: { Config?: { Subnet?: string }[] };
}

async function inspectNetwork(docker: Dockerode, name: string): Promise<NetworkFacts | undefined> {
  try {
    return (await docker.getNetwork(name).inspect()) as NetworkFacts;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw new Error(`cannot inspect docker network "${name}": ${engineMessage(err)}`);
  }
}

/** Addresses held (running) or pinned (stopped too) by any container on the network. */
export async function usedAddresses(docker: Dockerode, networkName: string): Promise<Set<string>> {
  const containers = await docker.listContainers({ all: true, filters: { network: [networkName] } });
  const used = new Set<string>();
  for (const container of containers) {
    const endpoint = (container.NetworkSettings?.Networks as Record<string, Dockerode.NetworkInfo & { IPAMConfig?: { IPv4Address?: string } | null }> | undefined)?.[networkName];
    if (endpoint?.IPAddress) used.add(endpoint.IPAddress);
    if (endpoint?.IPAMConfig?.IPv4Address) used.add(endpoint.IPAMConfig.IPv4Address);
  }
  return used;
}

/** The instance's address on the managed network, as the engine reports it. */
export function containerAddress(info: Dockerode.ContainerInspectInfo, networkName: string): string | undefined {
  const endpoint = info.NetworkSettings?.Networks?.[networkName] as (Dockerode.NetworkInfo & { IPAMConfig?: { IPv4Address?: string } | null }) | undefined;
  return endpoint?.IPAddress || endpoint?.IPAMConfig?.IPv4Address || undefined;
}

/**
 * Picks the address each new container is pinned to. Picks happen one at a time, and an
 * address stays claimed until its container exists (and so shows up in the engine's listing).
 */
export class AddressPicker {
  private readonly subnet: Subnet;
  private ready: Promise<void> | undefined;
  private readonly claimed = new Set<string>();
  private picking: Promise<unknown> = Promise.resolve();

  /** Throws on a bad subnet: a misconfigured agent fails when it starts, not at its first deploy. */
  constructor(
    private readonly docker: Dockerode,
    private readonly network: ManagedNetwork,
  ) {
    this.subnet = parseSubnet(network.subnet);
  }

  /**
   * `wanted` (the instance's previous address) while nobody else holds it, otherwise the first
   * free one, with a warning when the previous one could not be kept. Call created() after.
   */
  pick(wanted: string | undefined, warnings: string[]): Promise<string> {
    const picked = this.picking.then(() => this.pickNow(wanted, warnings));
    this.picking = picked.catch(() => undefined);
    return picked;
  }

  /** The container pinned to `address` exists now (or was never made): the claim can go. */
  created(address: string): void {
    this.claimed.delete(address);
  }

  private async pickNow(wanted: string | undefined, warnings: string[]): Promise<string> {
    this.ready ??= ensureNetwork(this.docker, this.network).catch((err: unknown) => {
      this.ready = undefined; // tried again at the next start
      throw err;
    });
    await this.ready;
    // Claims are read before listing: a claim dropped during the listing belongs to a container
    // the listing may not show, but any container created before the listing began is in it.
    const claims = [...this.claimed];
    const used = await usedAddresses(this.docker, this.network.name);
    for (const address of claims) used.add(address);
    let address: string | undefined;
    if (wanted && isPinnable(this.subnet, wanted) && !used.has(wanted)) address = wanted;
    else {
      address = firstFree(this.subnet, used);
      if (!address) throw new Error(`no free address left on docker network "${this.network.name}" (${this.network.subnet})`);
      if (wanted) warnings.push(`could not keep address ${wanted} on ${this.network.name} (${used.has(wanted) ? 'another container holds it' : 'outside the pinnable half of the subnet'}); now ${address}`);
    }
    this.claimed.add(address);
    return address;
  }
}
