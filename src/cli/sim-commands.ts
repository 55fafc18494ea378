// gantry sim agents: a fleet of hollow nodes in this process (src/sim/), to load a server the way
// N hosts would (the agent protocol, heartbeats, statuses, registry) with nothing running. For
// benches and capacity checks of the control plane; never point it at a cluster that runs real
// work: the server places real apps on hollow nodes like on any other.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { readTokenFile } from '../agent/credentials.js';
import { raiseFileLimit } from '../host/file-limit.js';
import { LABEL_KEY, LABEL_VALUE, NAME } from '../model/names.js';
import { parseDuration, parseSize } from '../model/units.js';
import { Fleet, isLoopbackServer } from '../sim/fleet.js';
import type { FleetCounters } from '../sim/counters.js';
import { MAX_CONNECTIONS_PER_ADDRESS } from '../server/http.js';
import { wholeNumber } from './commands.js';
import { readCertificateFile } from './config.js';
import { EXIT, fail } from './errors.js';
import { print, printError } from './output.js';

interface SimAgentsFlags {
  count: number;
  server?: string;
  tokenFile?: string;
  ca?: string;
  startDelay: number;
  namePrefix: string;
  first: number;
  cores: number;
  memory: number;
  pools: string[];
  labels: [string, string[]][];
  statsEvery: number;
  usageInterval?: number;
}

const duration = (value: string) => {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as "200ms", "2s".');
  return ms;
};

const size = (value: string) => {
  const bytes = parseSize(value);
  if (bytes === undefined || bytes === 0) throw new InvalidArgumentError('expected a size such as "128Gi".');
  return bytes;
};

const poolList = (value: string) => {
  const pools = value.split(',').map((p) => p.trim()).filter(Boolean);
  if (pools.length === 0 || pools.some((p) => !NAME.test(p))) throw new InvalidArgumentError('expected pool names separated by commas (lower-case letters, digits and "-").');
  return pools;
};

/** `zone=a|b|c`: the nodes take a, b and c in turn. */
const labelSpread = (value: string, previous: [string, string[]][] = []): [string, string[]][] => {
  const at = value.indexOf('=');
  const key = value.slice(0, at);
  const values = value.slice(at + 1).split('|');
  if (at <= 0 || !LABEL_KEY.test(key) || values.some((v) => !v || !LABEL_VALUE.test(v))) {
    throw new InvalidArgumentError('expected key=value or key=v1|v2|v3 (keys: letters, digits, "._/-"; values: letters, digits, " ._:/@=+-").');
  }
  return [...previous, [key, values]];
};

function statsLine(c: FleetCounters): string {
  const dropped = c.dropped > 0 ? `; ${c.dropped} connection(s) ended (last: ${c.lastDropReason})` : '';
  return `${new Date().toISOString()} hollow fleet: ${c.connected}/${c.nodes} connected, ${c.welcomed} welcomed, ${c.silent} silent; ` +
    `${c.instances} instances, ${c.running} running; sent ${c.heartbeatsSent} heartbeats, ${c.statusesSent} statuses in ${c.statusMessages} messages, ` +
    `${c.registryMessages} registry changes${c.usageMessages > 0 ? `, ${c.usageSamples} usage samples in ${c.usageMessages} messages` : ''}${dropped}`;
}

export function registerSimCommands(program: Command): void {
  const sim = program.command('sim').description('load a server with simulated hosts (hollow nodes: the real agent protocol, nothing runs)');
  sim
    .command('agents')
    .description('run N hollow nodes in this process, each on its own connection: they take assignments, report every instance running and healthy after --start-delay, register endpoints, heartbeat and answer pings; nothing runs')
    .requiredOption('--count <n>', 'how many hollow nodes', wholeNumber('--count', 1))
    .option('--server <url>', 'the Gantry server (default: $GANTRY_SERVER)', process.env.GANTRY_SERVER)
    .option('--token-file <path>', 'a file holding an admin token (it may say hello as any node: simplest) or a join token (each node joins once and keeps, in memory only, the agent token it is given); default: $GANTRY_TOKEN')
    .option('--ca <file>', 'PEM CA certificate(s) that verify an https:// server')
    .option('--start-delay <duration>', 'from assignment to "running and healthy" (and from removal to "removed")', duration, 200)
    .option('--name-prefix <prefix>', 'node names are <prefix>-00001, <prefix>-00002, …', 'hollow')
    .option('--first <n>', 'the number of the first node (to run fleets side by side)', wholeNumber('--first', 0), 1)
    .option('--cores <n>', 'cores each node reports', wholeNumber('--cores', 1), 32)
    .option('--memory <size>', 'memory each node reports', size, 128 * 2 ** 30)
    .option('--pools <list>', 'pools the nodes are spread over, comma-separated', poolList, ['default'])
    .option('--labels <key=v1|v2>', 'a node label whose values the nodes take in turn (repeatable; default zone=a|b|c)', labelSpread)
    .option('--stats-every <duration>', 'how often to print what the fleet did', duration, 10_000)
    .option('--usage-interval <duration>', 'each node reports its running instances\' usage this often, as agents do (default: never)', duration)
    .action(async (flags: SimAgentsFlags) => {
      if (!flags.server) fail(EXIT.usage, '--server (or GANTRY_SERVER) is required');
      const token = flags.tokenFile ? readTokenFile(flags.tokenFile) : process.env.GANTRY_TOKEN;
      if (!token) fail(EXIT.usage, 'a token is required: --token-file FILE or GANTRY_TOKEN (an admin token, or a join token)');
      const { limit, note } = raiseFileLimit();
      if (limit && limit.soft < flags.count + 64) fail(EXIT.usage, `this process may open ${limit.soft} files and ${flags.count} hollow nodes need about ${flags.count + 64}${note ? ` (${note})` : ''}: raise the hard limit (ulimit -Hn)`);
      if (!isLoopbackServer(flags.server) && flags.count > MAX_CONNECTIONS_PER_ADDRESS) {
        printError(`warning: the server takes at most ${MAX_CONNECTIONS_PER_ADDRESS} connections from one address, and ${flags.count} hollow nodes connect from this host's (own loopback addresses are used only for a server on this host)`);
      }
      const labels = Object.fromEntries(flags.labels ?? [['zone', ['a', 'b', 'c']]]);
      const fleet = new Fleet({
        server: flags.server,
        token,
        count: flags.count,
        namePrefix: flags.namePrefix,
        firstIndex: flags.first,
        cores: flags.cores,
        memoryBytes: flags.memory,
        pools: flags.pools,
        labels,
        startDelayMs: flags.startDelay,
        ...(flags.usageInterval ? { usageIntervalMs: flags.usageInterval } : {}),
        ...(flags.ca ? { ca: readCertificateFile(flags.ca, '--ca').pem } : {}),
      });
      print(`starting ${flags.count} hollow nodes (${fleet.names()[0]} …) against ${flags.server}`);
      const startedAt = Date.now();
      await fleet.start();
      print(`${statsLine(fleet.stats())} (started in ${((Date.now() - startedAt) / 1000).toFixed(1)}s)`);
      const ticker = setInterval(() => print(statsLine(fleet.stats())), flags.statsEvery);
      let stopping = false;
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.on(signal, () => {
          if (stopping) process.exit(1);
          stopping = true;
          clearInterval(ticker);
          fleet.close();
          // A moment for the close frames to leave, so the server counts the nodes' timeouts from now.
          setTimeout(() => process.exit(0), 500);
        });
      }
    });
}
