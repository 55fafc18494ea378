// The long-running commands: `up` (server + local agent in one process), `server`, `agent`.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { startServer, type RunningServer, type ServerOptions } from '../server/main.js';
import { startAgent } from '../agent/main.js';
import { saveClientConfig } from './config.js';
import { parseSize } from '../model/units.js';
import { loadRendererConfig } from '../discovery/renderer-config.js';
import { parseSubnet } from '../runtime/docker-network.js';

const defaultDataDir = () => process.env.GANTRY_DATA_DIR ?? join(homedir(), '.gantry');

function parseLabels(values: string[]): Record<string, string> {
  return Object.fromEntries(values.map((pair) => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`--label ${pair}: expected key=value`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }));
}

const collect = (value: string, previous: string[]) => [...previous, value];

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      console.error(`\n${signal}: stopping (running instances keep running)`);
      stop().then(() => process.exit(0), () => process.exit(1));
    });
  }
}

function announce(server: RunningServer, dataDir: string): void {
  console.log(`gantry server listening on ${server.url} (data in ${dataDir})`);
  if (server.dnsPort !== undefined) console.log(`DNS for registered endpoints on port ${server.dnsPort} (UDP and TCP)`);
  if (server.firstAdminToken) {
    const configPath = saveClientConfig({ server: server.url, token: server.firstAdminToken });
    console.log('\nThis is the first start. The admin token, shown only this once:\n');
    console.log(`    ${server.firstAdminToken}\n`);
    console.log(`It is saved for the gantry CLI of this user in ${configPath}.`);
    console.log('Keep it somewhere safe; the server stores only its hash.\n');
  }
}

interface DaemonFlags {
  dataDir: string;
  host: string;
  port: string;
  store?: string;
  nodeName?: string;
  address?: string;
  label: string[];
  nodeTimeout: string;
  registryTtl: string;
  redisUrl?: string;
  renderer: string[];
  dnsPort?: string;
  dnsHost: string;
  dnsDomain: string;
  dnsWorkers: string;
  dockerSocket?: string;
  dockerNetwork?: string;
  dockerSubnet: string;
  portRange: string;
  pool: string;
  reserveCores: string;
  reserveMemory: string;
  shareBase: string;
  verbose?: boolean;
}

/** What an agent says about its node, from the flags shared by `up` and `agent`. */
function nodeIdentity(flags: DaemonFlags) {
  const memory = parseSize(flags.reserveMemory);
  if (memory === undefined) throw new Error(`--reserve-memory ${flags.reserveMemory}: expected a size such as 512Mi`);
  const cores = Number(flags.reserveCores);
  if (!Number.isInteger(cores) || cores < 0) throw new Error(`--reserve-cores ${flags.reserveCores}: expected a whole number`);
  const shareBase = Number(flags.shareBase);
  if (![10, 100, 1000].includes(shareBase)) throw new Error(`--share-base ${flags.shareBase}: expected 10, 100 or 1000`);
  if (flags.dockerNetwork !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(flags.dockerNetwork)) throw new Error(`--docker-network ${flags.dockerNetwork}: expected a docker network name (letters, digits, _ . -)`);
  const dockerNetwork = flags.dockerNetwork ? { name: flags.dockerNetwork, subnet: flags.dockerSubnet } : undefined;
  if (dockerNetwork) parseSubnet(dockerNetwork.subnet);
  return { name: flags.nodeName, address: flags.address, labels: parseLabels(flags.label), dockerSocket: flags.dockerSocket, dockerNetwork, portRange: parsePortRange(flags.portRange), pool: flags.pool, reserved: { cores, memoryBytes: memory }, shareBase, bootId: process.env.GANTRY_BOOT_ID };
}

function nodeOptions(command: Command): Command {
  return command
    .option('--node-name <name>', 'name of this node (default: the host name)')
    .option('--label <key=value>', 'a node label (repeatable)', collect, [])
    .option('--docker-socket <path>', 'Docker Engine socket', '/var/run/docker.sock')
    .option('--docker-network <name>', 'put containers on this Gantry-managed bridge network (created if missing), where each instance keeps its address across restarts and rebuilds')
    .option('--docker-subnet <cidr>', 'the subnet of --docker-network; its lower half is pinned by Gantry, the upper half left to the engine', '10.213.0.0/16')
    .option('--port-range <low-high>', 'host ports handed to instances on this node', '20000-29999')
    .option('--pool <name>', 'the node pool this node belongs to', 'default')
    .option('--reserve-cores <n>', 'whole cores kept for the host\'s own daemons (the lowest-numbered)', '0')
    .option('--reserve-memory <size>', 'memory kept for the host\'s own daemons', '0')
    .option('--share-base <n>', 'pieces each core is divided into: 100 → 0.01 CPU, 1000 → 0.001 CPU', '100');
}

function parsePortRange(value: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(value);
  const [low, high] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(low >= 1 && high <= 65535 && low <= high)) throw new Error(`--port-range ${value}: expected LOW-HIGH within 1-65535`);
  return [low, high];
}

export function registerDaemonCommands(program: Command): void {
  nodeOptions(serverOptions(program.command('up').description('run a server, a local agent and the embedded store in one process (the quick start)')))
    .action(async (flags: DaemonFlags) => {
      const server = await startServer(serverSettings(flags));
      announce(server, flags.dataDir);
      const agent = await startAgent({ ...nodeIdentity(flags), server: server.url, token: server.localAgentToken(), dataDir: join(flags.dataDir, 'agent'), log: (line) => console.log(`agent: ${line}`) });
      console.log(`agent running as node "${agent.name}". Deploy with: gantry apply -f <spec.yaml>`);
      onSignals(async () => {
        await agent.close();
        await server.close();
      });
    });

  serverOptions(program.command('server').description('run a Gantry server (API, controllers, embedded store)'))
    .action(async (flags: DaemonFlags) => {
      const server = await startServer(serverSettings(flags));
      announce(server, flags.dataDir);
      onSignals(() => server.close());
    });

  nodeOptions(program.command('agent').description('run a node agent that keeps this host\'s assigned instances running'))
    .requiredOption('--server <url>', 'the Gantry server', process.env.GANTRY_SERVER)
    .option('--token <token>', 'an agent or admin token (or GANTRY_TOKEN)', process.env.GANTRY_TOKEN)
    .option('--data-dir <dir>', 'where the agent keeps its state', join(defaultDataDir(), 'agent'))
    .option('--address <ip>', 'address other hosts reach this node on', '127.0.0.1')
    .action(async (flags: DaemonFlags & { server: string; token?: string }) => {
      if (!flags.token) throw new Error('an agent needs --token or GANTRY_TOKEN');
      const agent = await startAgent({ ...nodeIdentity(flags), server: flags.server, token: flags.token, dataDir: flags.dataDir, log: (line) => console.log(`agent: ${line}`) });
      console.log(`agent running as node "${agent.name}"`);
      onSignals(() => agent.close());
    });
}

function serverOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'where state is kept', defaultDataDir())
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '7070')
    .option('--store <url>', 'sqlite:<path> (default: <data-dir>/gantry.db)')
    .option('--node-timeout <seconds>', 'seconds of silence before a node is down', '30')
    .option('--registry-ttl <seconds>', 'seconds a silent node\'s endpoints stay registered', '15')
    .option('--redis-url <url>', 'publish registry and instance changes to Redis pub/sub (redis://host:port)')
    .option('--renderer <file.yaml>', 'render a file (nginx upstreams, ...) from the registry on every change (repeatable)', collect, [])
    .option('--dns-port <port>', 'serve DNS (UDP and TCP) for registered endpoints on this port')
    .option('--dns-host <address>', 'address the DNS server listens on', '127.0.0.1')
    .option('--dns-domain <domain>', 'the DNS zone: names are <entry>.<app>.<env>.<domain>', 'gantry.local')
    .option('--dns-workers <n>', 'extra processes answering DNS over UDP (each holds a copy of the registry)', '0')
    .option('-v, --verbose', 'log every request');
}

function serverSettings(flags: DaemonFlags): ServerOptions {
  return {
    dataDir: flags.dataDir,
    host: flags.host,
    port: Number(flags.port),
    storeUrl: flags.store,
    nodeTimeoutMs: Number(flags.nodeTimeout) * 1000,
    registryTtlMs: Number(flags.registryTtl) * 1000,
    redisUrl: flags.redisUrl,
    renderers: flags.renderer.map(loadRendererConfig),
    dns: flags.dnsPort === undefined ? undefined : { port: Number(flags.dnsPort), host: flags.dnsHost, domain: flags.dnsDomain, workers: Number(flags.dnsWorkers) },
    bootstrapToken: process.env.GANTRY_BOOTSTRAP_TOKEN,
    log: flags.verbose,
  };
}
