// The managed Docker network: every instance keeps its address across restarts and rebuilds in
// place. Address arithmetic without an engine; the rest against the real Docker Engine.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { DockerRuntime } from '../src/runtime/docker.js';
import { dynamicRange, firstFree, isPinnable, parseSubnet } from '../src/runtime/docker-network.js';
import type { RunSpec } from '../src/runtime/runtime.js';
import { skipWithoutDocker, TEST_IMAGE } from './helpers/env.js';

const skip = await skipWithoutDocker();
const run = Date.now().toString(36);
const prefix = `gantrynet-${process.pid}-${run}-`;
const docker = new Docker();
const networkName = `gantrytest-net-${run}`;
// A /24 of 10.214/16 per run: two runs on one engine are unlikely to pick the same one.
const subnet = `10.214.${Math.floor(Math.random() * 256)}.0/24`;
const base = subnet.replace(/\.0\/24$/, '');
const rt = new DockerRuntime({ docker, namePrefix: prefix, network: { name: networkName, subnet } });

function spec(instanceId: string, ip?: string): RunSpec {
  return {
    instanceId,
    app: 'web',
    appEnv: 'production',
    entry: 'main',
    release: 1,
    image: TEST_IMAGE,
    command: ['sh', '-c', 'sleep 60'],
    args: [],
    env: {},
    cpu: 0.1,
    memoryBytes: 32 * 1024 * 1024,
    ports: [],
    labels: {},
    ...(ip ? { ip } : {}),
  };
}

test('subnets: parsed and validated; the lower half is pinned, the upper half left to the engine', () => {
  const s = parseSubnet('10.213.7.9/16');
  assert.deepEqual(s, { base: (10 << 24 | 213 << 16) >>> 0, prefix: 16 });
  assert.equal(dynamicRange(s), '10.213.128.0/17');
  assert.equal(firstFree(s, new Set()), '10.213.0.2', 'past the network address and the gateway');
  assert.equal(firstFree(s, new Set(['10.213.0.2', '10.213.0.3'])), '10.213.0.4');
  assert.ok(isPinnable(s, '10.213.127.255'));
  assert.ok(!isPinnable(s, '10.213.128.0'));
  assert.ok(!isPinnable(s, '10.213.0.1'));
  assert.ok(!isPinnable(s, '10.9.0.5'));
  const tiny = parseSubnet('192.168.5.0/28');
  const all = new Set(['192.168.5.2', '192.168.5.3', '192.168.5.4', '192.168.5.5', '192.168.5.6', '192.168.5.7']);
  assert.equal(firstFree(tiny, all), undefined, 'a full lower half has nothing left');
  for (const bad of ['10.213.0.0', '10.213.0.0/33', '10.213.0.0/4', '300.1.1.1/16', 'net/16']) {
    assert.throws(() => parseSubnet(bad), /invalid docker network subnet .*expected an IPv4 CIDR/, bad);
  }
  assert.throws(() => new DockerRuntime({ docker, network: { name: 'x', subnet: '10.0.0.0/40' } }), /invalid docker network subnet "10.0.0.0\/40"/);
});

after(async () => {
  if (skip) return;
  const mine = await docker.listContainers({ all: true, filters: { name: [prefix] } });
  for (const c of mine) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  await docker.getNetwork(networkName).remove().catch(() => {});
  await rt.close();
});

test('instances keep their address on the managed network across restarts and rebuilds in place', { skip }, async () => {
  const a = await rt.start(spec('a'));
  assert.equal(a.instance.ip, `${base}.2`);
  const network = (await docker.getNetwork(networkName).inspect()) as { Labels: Record<string, string>; IPAM: { Config: { Subnet: string; IPRange: string }[] } };
  assert.deepEqual(network.IPAM.Config.map((c) => [c.Subnet, c.IPRange]), [[subnet, `${base}.128/25`]]);
  assert.equal(network.Labels['gantry.managed'], 'true');
  const info = await docker.getContainer(a.instance.runtimeId).inspect();
  assert.equal(info.HostConfig.NetworkMode, networkName);

  const b = await rt.start(spec('b'));
  assert.equal(b.instance.ip, `${base}.3`);

  // A stopped instance still owns its address: nobody else is given it meanwhile.
  await rt.stop('a', 'SIGKILL', 0);
  const c = await rt.start(spec('c'));
  assert.equal(c.instance.ip, `${base}.4`);
  const restarted = await rt.restart('a');
  assert.equal(restarted.ip, `${base}.2`, 'a restart keeps the address');

  // Rebuilt in place: a new container, the address the agent remembered.
  await rt.stop('a', 'SIGKILL', 0);
  await rt.remove('a', { keepVolumes: true });
  const rebuilt = await rt.start(spec('a', `${base}.2`));
  assert.notEqual(rebuilt.instance.runtimeId, a.instance.runtimeId);
  assert.equal(rebuilt.instance.ip, `${base}.2`);
  assert.deepEqual(rebuilt.warnings, []);
  assert.equal((await rt.inspect('a'))?.ip, `${base}.2`);

  // An address someone else holds now is not taken from them: the instance gets another, and is told.
  const d = await rt.start(spec('d', `${base}.3`));
  assert.equal(d.instance.ip, `${base}.5`);
  assert.match(d.warnings.join('\n'), new RegExp(`could not keep address ${base.replace(/\./g, '\\.')}\\.3 .*another container holds it.*now ${base.replace(/\./g, '\\.')}\\.5`));

  // Several starts at once never pick the same address.
  const many = await Promise.all(['e', 'f', 'g', 'h'].map((id) => rt.start(spec(id))));
  const addresses = many.map((m) => m.instance.ip);
  assert.equal(new Set(addresses).size, 4, addresses.join(' '));
  for (const ip of addresses) assert.ok(!['2', '3', '4', '5'].map((n) => `${base}.${n}`).includes(ip!), `${ip} was already taken`);

  for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
    await rt.stop(id, 'SIGKILL', 0);
    await rt.remove(id);
  }
});

test('an existing network with another subnet is refused with a clear error', { skip }, async () => {
  const other = `gantrytest-net-other-${run}`;
  await docker.createNetwork({ Name: other, Driver: 'bridge' });
  try {
    const wrong = new DockerRuntime({ docker, namePrefix: prefix, network: { name: other, subnet: '10.215.3.0/24' } });
    await assert.rejects(wrong.start(spec('x')), new RegExp(`docker network "${other}" exists with subnet .*, not 10\\.215\\.3\\.0/24`));
    assert.equal(await wrong.inspect('x'), undefined, 'nothing was created');
    await wrong.close();
  } finally {
    await docker.getNetwork(other).remove().catch(() => {});
  }
});
