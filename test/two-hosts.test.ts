// Two hosts on one machine, as the test bed that found these bugs had them: a network namespace
// joined to this host by a veth pair is the second host, and a second Docker Engine started with
// `--bridge none` is an engine that cannot publish ports. They check what a single-host run never
// sees: the address an agent elsewhere advertises (it went into DNS and nginx as 127.0.0.1), and
// that an engine which would silently drop published ports makes the docker runtime unavailable,
// with a note saying why, instead of instances that restart forever. That second engine runs in
// a network namespace of its own (see below why it must). Root only: namespaces, veth links and
// dockerd need it; under CI a missing prerequisite fails instead of skipping.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { GANTRY, TestCluster, until } from './helpers/cluster.js';
import { skipWithoutProgram } from './helpers/env.js';
import { advertisedAddress } from '../src/agent/node-info.js';
import type { NodeListResponse } from '../src/model/api.js';
import type { Endpoint } from '../src/model/registry.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

function skipUnlessRoot(): string | false {
  if (process.getuid?.() === 0) return false;
  if (process.env.CI === 'true') throw new Error('CI must run these tests as root: they make network namespaces and start a dockerd');
  return 'needs root (network namespaces, veth links, a second dockerd)';
}
const notRoot = skipUnlessRoot();
const skipNetns = notRoot || skipWithoutProgram('ip', 'iproute2') || skipWithoutProgram('nsenter', 'util-linux');
const skipDockerd = notRoot || skipWithoutProgram('dockerd', 'docker.io') || skipWithoutProgram('unshare', 'util-linux');

/** A third octet for 10.NET.X.0/24 that no interface of this host uses (another run's, say). */
function freeOctet(net: number): number {
  const used = new Set(
    Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .map((i) => i.address.split('.'))
      .filter((parts) => parts[0] === '10' && parts[1] === String(net))
      .map((parts) => Number(parts[2])),
  );
  const free = [...Array(256).keys()].filter((x) => !used.has(x));
  return free[Math.floor(Math.random() * free.length)]!;
}

/** Runs a command for cleanup: whatever it says, the rest of the cleanup goes on. */
const quietly = (command: string, args: string[]) => run(command, args).catch(() => undefined);

/** TestCluster whose server listens on `host` (not 127.0.0.1), and whose requests and CLI go there. */
class RoutedCluster extends TestCluster {
  host = '127.0.0.1';
  override get url(): string {
    return `http://${this.host}:${this.port}`;
  }
}

/** Waits for a child to exit, SIGKILL after `ms`; its exit code (128+ for a signal). */
function exited(child: ChildProcess, ms = 30_000): Promise<number> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

describe('an agent on another host', { skip: skipNetns }, () => {
  const cluster = new RoutedCluster();
  const ns = `gantry-${cluster.id}`;
  const [hostSide, nsSide] = [`gth${cluster.id}`, `gtn${cluster.id}`];
  const octet = freeOctet(231);
  const hostIp = `10.231.${octet}.1`;
  const nsIp = `10.231.${octet}.2`;
  const node = `far-${cluster.id}`;
  const app = `far-${cluster.id}`;
  const tokenFile = join(cluster.dir, 'agent.token');
  /** Each agent started in the namespace, with what it printed. */
  const printed = new Map<string, string>();

  /** `gantry agent ...` inside the namespace: nsenter joins its network and execs node there. */
  const agentInNamespace = (name: string, extra: string[]): ChildProcess => {
    const args = ['agent', '--server', cluster.url, '--token-file', tokenFile, '--data-dir', join(cluster.dir, 'agents', name), '--node-name', name, '--port-range', '32100-32149', '--docker-socket', join(cluster.dir, 'no-docker.sock'), ...extra];
    const child = spawn('nsenter', [`--net=/var/run/netns/${ns}`, process.execPath, ...GANTRY, ...args], { cwd: ROOT, env: { ...process.env, GANTRY_CONFIG: join(cluster.dir, 'cli.json') }, stdio: ['ignore', 'pipe', 'pipe'] });
    printed.set(name, '');
    const keep = (d: Buffer) => {
      printed.set(name, printed.get(name) + String(d));
      cluster.output.push(...String(d).trimEnd().split('\n').map((l) => `[ns agent ${name}] ${l}`));
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    cluster.agents.set(name, child); // stopped by cluster.close()
    return child;
  };

  before(async () => {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide]);
    await run('ip', ['link', 'set', nsSide, 'netns', ns]);
    await run('ip', ['addr', 'add', `${hostIp}/24`, 'dev', hostSide]);
    await run('ip', ['link', 'set', hostSide, 'up']);
    const inside = (args: string[]) => run('nsenter', [`--net=/var/run/netns/${ns}`, 'ip', ...args]);
    await inside(['addr', 'add', `${nsIp}/24`, 'dev', nsSide]);
    await inside(['link', 'set', nsSide, 'up']);
    // The agent health-checks its instances on 127.0.0.1, which in a new namespace is down.
    await inside(['link', 'set', 'lo', 'up']);
    writeFileSync(tokenFile, `${cluster.token}\n`, { mode: 0o600 });
    cluster.host = hostIp;
    await cluster.startServer({ extra: ['--host', hostIp] });
  });

  after(async () => {
    if (cluster.server) await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.close();
    // Instances outlive their agent by design: whatever still runs in the namespace goes with it.
    const pids = await run('ip', ['netns', 'pids', ns]).then((r) => r.stdout.split('\n').filter(Boolean).map(Number), () => []);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await quietly('ip', ['link', 'del', hostSide]);
    await quietly('ip', ['netns', 'del', ns]);
  });

  test('the address is the one this host reaches the server from, and a loopback one is refused for a server elsewhere', async () => {
    // From the host side, the namespace is "the server elsewhere".
    assert.deepEqual(await advertisedAddress(`http://${nsIp}:7070`), { address: hostIp, found: true });
    assert.deepEqual(await advertisedAddress('http://127.0.0.1:7070'), { address: '127.0.0.1', found: true });
    assert.deepEqual(await advertisedAddress(`http://${hostIp}:7070`, '127.0.0.1'), { address: '127.0.0.1', found: false }, 'a server on this host may be told 127.0.0.1');
    await assert.rejects(advertisedAddress(`http://${nsIp}:7070`, 'localhost'), /--address localhost is a loopback address, but the server .* is on another host/);
    await assert.rejects(advertisedAddress(`http://${nsIp}:7070`, 'not an address!'), /--address not an address!: expected an IP address or a host name/);
    assert.deepEqual(await advertisedAddress(`http://${nsIp}:7070`, 'node-7.example.internal'), { address: 'node-7.example.internal', found: false });
  });

  test('an agent on the other host registers with the address it reaches the server from', async () => {
    agentInNamespace(node, []);
    const me = await until(`node ${node} to be ready`, async () => {
      const { nodes } = (await cluster.api('GET', '/v1/nodes')) as NodeListResponse;
      return nodes.find((n) => n.name === node && n.state === 'ready');
    });
    assert.equal(me.address, nsIp);
    assert.match(printed.get(node)!, new RegExp(`advertising ${nsIp.replaceAll('.', '\\.')}, the address this host reaches the server from`));
  });

  test('its instance is reached from this host through the endpoint Gantry registered', async () => {
    const spec = `app: ${app}
env: dev
entrypoints:
  web:
    command: [node, -e, "require('http').createServer((q, s) => s.end('hello from ' + process.env.GANTRY_INSTANCE)).listen(process.env.PORT)"]
    replicas: 1
    resources: { cpu: 0.1, memory: 64Mi }
    ports: [{ name: http }]
    health: { http: { port: http, path: / }, interval: 1s, timeout: 1s }
`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec });
    assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
    const endpoint = await until('the instance to be registered', async () => {
      const { endpoints } = (await cluster.api('GET', `/v1/registry?app=${app}`)) as { endpoints: Endpoint[] };
      return endpoints[0];
    });
    assert.equal(endpoint.address, nsIp);
    const port = endpoint.ports.http!;
    const answer = await (await fetch(`http://${endpoint.address}:${port}/`, { signal: AbortSignal.timeout(5000) })).text();
    assert.equal(answer, `hello from ${endpoint.id}`);
  });

  test('an agent there told --address 127.0.0.1 stops with a message naming --address', async () => {
    const name = `loop-${cluster.id}`;
    const code = await exited(agentInNamespace(name, ['--address', '127.0.0.1']));
    assert.notEqual(code, 0);
    assert.match(printed.get(name)!, /error: --address 127\.0\.0\.1 is a loopback address, but the server \(10\.231\.\d+\.1\) is on another host/);
    const { nodes } = (await cluster.api('GET', '/v1/nodes')) as NodeListResponse;
    assert.ok(!nodes.some((n) => n.name === name), 'it never registered');
  });
});

describe('an engine that cannot publish ports', { skip: skipDockerd }, () => {
  const cluster = new TestCluster();
  // Short: the engine's sockets live under it, and a unix socket path has at most 107 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'gdk-'));
  const socket = join(dir, 'docker.sock');
  const engine = new Docker({ socketPath: socket });
  const network = `gantry-pub-${cluster.id}`;
  const subnet = `10.232.${freeOctet(232)}.0/24`;
  let dockerd: ChildProcess | undefined;
  let dockerdLog = '';
  const hostHasDocker0 = () => existsSync('/sys/class/net/docker0');
  const hadDocker0 = hostHasDocker0();

  before(async () => {
    // In a network namespace of its own: with --bridge none, dockerd deletes any interface named
    // docker0 where it runs, and on this host's that would be the main engine's bridge.
    dockerd = spawn('unshare', ['--net', '--', 'dockerd', '--host', `unix://${socket}`, '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'), '--bridge', 'none', '--iptables=false', '--ip-masq=false'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => (dockerdLog = (dockerdLog + String(d)).slice(-4000));
    dockerd.stdout!.on('data', keep);
    dockerd.stderr!.on('data', keep);
    await until('the second dockerd to answer', async () => {
      if (dockerd!.exitCode !== null) throw new Error(`dockerd exited with ${dockerd!.exitCode}: ${dockerdLog}`);
      return engine.ping().then(() => true);
    }, 30_000, 250);
    assert.ok(!(await engine.listNetworks()).some((n) => n.Name === 'bridge'), 'dockerd --bridge none has no default bridge');
    await cluster.startServer();
  });

  after(async () => {
    await cluster.close();
    await engine.getNetwork(network).remove().catch(() => {});
    if (dockerd && dockerd.exitCode === null) {
      dockerd.kill('SIGTERM');
      await exited(dockerd, 20_000);
    }
    // dockerd unmounts what it mounted when it stops cleanly; after a SIGKILL it does not.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
    for (const mount of mounts.sort().reverse()) await quietly('umount', ['-l', mount]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the docker runtime is unavailable, and the node, the CLI and the agent say why', async () => {
    const node = `nobridge-${cluster.id}`;
    await cluster.startAgent({ name: node, portRange: '32150-32199', dockerSocket: socket });
    const { nodes } = (await cluster.api('GET', '/v1/nodes')) as NodeListResponse;
    const me = nodes.find((n) => n.name === node)!;
    assert.deepEqual(me.runtimes, ['process']);
    const note = /docker: the engine at \S+docker\.sock has no default bridge network \(dockerd --bridge none\?\), so published ports would be ignored: start the agent with --docker-network NAME \(Gantry creates the bridge\) or the engine with a bridge/;
    assert.match(me.runtimeNotes.join('\n'), note);
    assert.match(cluster.output.filter((l) => l.startsWith(`[agent ${node}]`)).join('\n'), new RegExp(`runtime unavailable: ${note.source}`));
    const listed = await cluster.cli(['nodes']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`Runtime notes:\\n.*${node}: ${note.source}`));
    await cluster.stopAgent(node);
  });

  test('with --docker-network the agent makes its bridge there and the docker runtime is available', async () => {
    const node = `ownbridge-${cluster.id}`;
    await cluster.startAgent({ name: node, portRange: '32150-32199', dockerSocket: socket, extra: ['--docker-network', network, '--docker-subnet', subnet] });
    const { nodes } = (await cluster.api('GET', '/v1/nodes')) as NodeListResponse;
    const me = nodes.find((n) => n.name === node)!;
    assert.deepEqual(me.runtimeNotes, []);
    assert.deepEqual([...me.runtimes].sort(), ['docker', 'process']);
    const made = (await engine.getNetwork(network).inspect()) as { Driver: string; IPAM: { Config: { Subnet: string }[] } };
    assert.equal(made.Driver, 'bridge');
    assert.equal(made.IPAM.Config[0]?.Subnet, subnet);
    await cluster.stopAgent(node);
  });

  test("this host's own engine keeps its bridge", () => {
    assert.equal(hostHasDocker0(), hadDocker0, 'the second dockerd must not delete the main engine\'s docker0');
  });
});
