// The long-running commands: `up` (server + local agent in one process), `server`, `agent`.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { startServer, type RunningServer } from '../server/main.js';
import { startAgent, type RunningAgent } from '../agent/main.js';
import { saveClientConfig } from './config.js';
import { loadRendererConfig } from '../discovery/renderer-config.js';

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
  dockerSocket?: string;
  portRange: string;
  verbose?: boolean;
}

function parsePortRange(value: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(value);
  const [low, high] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(low >= 1 && high <= 65535 && low <= high)) throw new Error(`--port-range ${value}: expected LOW-HIGH within 1-65535`);
  return [low, high];
}

export function registerDaemonCommands(program: Command): void {
  program
    .command('up')
    .description('run a server, a local agent and the embedded store in one process (the quick start)')
    .option('--data-dir <dir>', 'where state is kept', defaultDataDir())
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '7070')
    .option('--store <url>', 'sqlite:<path> (default: <data-dir>/gantry.db)')
    .option('--node-name <name>', 'name of this node (default: the host name)')
    .option('--label <key=value>', 'a node label (repeatable)', collect, [])
    .option('--node-timeout <seconds>', 'seconds of silence before a node is down', '30')
    .option('--registry-ttl <seconds>', 'seconds a silent node\'s endpoints stay registered', '15')
    .option('--redis-url <url>', 'publish registry and instance changes to Redis pub/sub (redis://host:port)')
    .option('--renderer <file.yaml>', 'render a file (nginx upstreams, ...) from the registry on every change (repeatable)', collect, [])
    .option('--docker-socket <path>', 'Docker Engine socket', '/var/run/docker.sock')
    .option('--port-range <low-high>', 'host ports handed to instances on this node', '20000-29999')
    .option('-v, --verbose', 'log every request')
    .action(async (flags: DaemonFlags) => {
      const server = await startServer({ dataDir: flags.dataDir, host: flags.host, port: Number(flags.port), storeUrl: flags.store, nodeTimeoutMs: Number(flags.nodeTimeout) * 1000, registryTtlMs: Number(flags.registryTtl) * 1000, redisUrl: flags.redisUrl, renderers: flags.renderer.map(loadRendererConfig), bootstrapToken: process.env.GANTRY_BOOTSTRAP_TOKEN, log: flags.verbose });
      announce(server, flags.dataDir);
      const token = server.localAgentToken();
      const agent = await startAgent({ server: server.url, token, dataDir: join(flags.dataDir, 'agent'), name: flags.nodeName, labels: parseLabels(flags.label), dockerSocket: flags.dockerSocket, portRange: parsePortRange(flags.portRange), log: (line) => console.log(`agent: ${line}`) });
      console.log(`agent running as node "${agent.name}". Deploy with: gantry apply -f <spec.yaml>`);
      onSignals(async () => {
        await agent.close();
        await server.close();
      });
    });

  program
    .command('server')
    .description('run a Gantry server (API, controllers, embedded store)')
    .option('--data-dir <dir>', 'where state is kept', defaultDataDir())
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '7070')
    .option('--store <url>', 'sqlite:<path> (default: <data-dir>/gantry.db)')
    .option('--node-timeout <seconds>', 'seconds of silence before a node is down', '30')
    .option('--registry-ttl <seconds>', 'seconds a silent node\'s endpoints stay registered', '15')
    .option('--redis-url <url>', 'publish registry and instance changes to Redis pub/sub (redis://host:port)')
    .option('--renderer <file.yaml>', 'render a file (nginx upstreams, ...) from the registry on every change (repeatable)', collect, [])
    .option('-v, --verbose', 'log every request')
    .action(async (flags: DaemonFlags) => {
      const server = await startServer({ dataDir: flags.dataDir, host: flags.host, port: Number(flags.port), storeUrl: flags.store, nodeTimeoutMs: Number(flags.nodeTimeout) * 1000, registryTtlMs: Number(flags.registryTtl) * 1000, redisUrl: flags.redisUrl, renderers: flags.renderer.map(loadRendererConfig), bootstrapToken: process.env.GANTRY_BOOTSTRAP_TOKEN, log: flags.verbose });
      announce(server, flags.dataDir);
      onSignals(() => server.close());
    });

  program
    .command('agent')
    .description('run a node agent that keeps this host\'s assigned instances running')
    .requiredOption('--server <url>', 'the Gantry server', process.env.GANTRY_SERVER)
    .option('--token <token>', 'an agent or admin token (or GANTRY_TOKEN)', process.env.GANTRY_TOKEN)
    .option('--data-dir <dir>', 'where the agent keeps its state', join(defaultDataDir(), 'agent'))
    .option('--node-name <name>', 'name of this node (default: the host name)')
    .option('--address <ip>', 'address other hosts reach this node on', '127.0.0.1')
    .option('--label <key=value>', 'a node label (repeatable)', collect, [])
    .option('--docker-socket <path>', 'Docker Engine socket', '/var/run/docker.sock')
    .option('--port-range <low-high>', 'host ports handed to instances on this node', '20000-29999')
    .action(async (flags: DaemonFlags & { server: string; token?: string }) => {
      if (!flags.token) throw new Error('an agent needs --token or GANTRY_TOKEN');
      const agent = await startAgent({ server: flags.server, token: flags.token, dataDir: flags.dataDir, name: flags.nodeName, address: flags.address, labels: parseLabels(flags.label), dockerSocket: flags.dockerSocket, portRange: parsePortRange(flags.portRange), log: (line) => console.log(`agent: ${line}`) });
      console.log(`agent running as node "${agent.name}"`);
      onSignals(() => agent.close());
    });
}
