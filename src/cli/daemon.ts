// The long-running commands: `up` (server + local agent in one process), `server`, `agent`.
import { isIP } from 'node:net';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { startServer, type RunningServer, type ServerOptions } from '../server/main.js';
import { startAgent } from '../agent/main.js';
import { DEFAULT_KEEP_RELEASES, type ImageGcSettings } from '../agent/image-gc.js';
import { readTokenFile, SAVED_TOKEN_FILE } from '../agent/credentials.js';
import { advertisedAddress } from '../agent/node-info.js';
import { existsSync } from 'node:fs';
import { raiseFileLimit } from '../host/file-limit.js';
import { configPath, configSaveConflict, readCertificateFile, readPrivateKeyFile, saveClientConfig, type ClientConfig } from './config.js';
import { EXIT, fail } from './errors.js';
import { parseDuration, parseSize } from '../model/units.js';
import { MAX_SAMPLE_INTERVAL_MS, MIN_SAMPLE_INTERVAL_MS } from '../model/usage.js';
import { loadRendererConfig } from '../discovery/renderer-config.js';
import { loadInspectPolicy } from '../server/inspect-policy.js';
import { loadAlertRules } from '../server/alerts/rules-file.js';
import { loadDirectoryConfig } from '../server/directory/config.js';
import { loadLogSinks } from '../server/log-sinks-config.js';
import { parseSubnet } from '../runtime/docker-network.js';
import { LABEL_KEY, LABEL_VALUE, NODE_NAME, NODE_NAME_RULE } from '../model/names.js';
import { logRetentionOf, type LogRetentionFlags } from './log-retention.js';

const defaultDataDir = () => process.env.GANTRY_DATA_DIR ?? join(homedir(), '.gantry');

function parseLabels(values: string[]): Record<string, string> {
  return Object.fromEntries(values.map((pair) => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`--label ${pair}: expected key=value`);
    const [key, value] = [pair.slice(0, at), pair.slice(at + 1)];
    if (!LABEL_KEY.test(key)) throw new Error(`--label ${pair}: label keys are letters, digits, ".", "_", "/", "-"`);
    if (!LABEL_VALUE.test(value)) throw new Error(`--label ${pair}: label values are letters, digits and " ._:/@=+-" (at most 256)`);
    return [key, value];
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

/**
 * Where the server listens and, on its very first start, the admin token: printed only this once
 * (the server keeps its hash). `gantry up` (`saveForCli`) also saves it for the CLI of the user
 * who ran it, but never over that user's config for another server or token: that file is theirs,
 * so it is left alone and how to reach this server is printed instead. `gantry server` saves
 * nothing: it is often a service whose user's config is not the operator's. `ca`: the CA file the
 * CLI needs to verify the server.
 */
function announce(server: RunningServer, dataDir: string, { ca, saveForCli }: { ca?: string; saveForCli: boolean }): void {
  console.log(`gantry server listening on ${server.url} (data in ${dataDir})`);
  if (server.dnsPort !== undefined) console.log(`DNS for registered endpoints on port ${server.dnsPort} (UDP and TCP)`);
  if (!server.firstAdminToken) return;
  console.log('\nThis is the first start. The admin token, shown only this once:\n');
  console.log(`    ${server.firstAdminToken}\n`);
  const config: ClientConfig = { server: server.url, token: server.firstAdminToken, ...(ca ? { ca } : {}) };
  const conflict = saveForCli ? configSaveConflict(config) : undefined;
  if (saveForCli && conflict === undefined) {
    console.log(`It is saved for the gantry CLI of this user in ${saveClientConfig(config)}.`);
  } else {
    if (conflict !== undefined) console.log(`It is NOT saved for the gantry CLI: the config file ${configPath()} ${conflict}, and is left as it is.`);
    console.log(cliSetupText(config, { offerConfigFile: conflict === undefined }));
  }
  console.log('Keep it somewhere safe; the server stores only its hash.\n');
}

/** How the CLI reaches this server with the admin token printed above (which is not repeated). */
function cliSetupText(config: ClientConfig, { offerConfigFile }: { offerConfigFile: boolean }): string {
  const quote = (value: string) => (/^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`);
  const placeholder = '<the token above>';
  const env = `export GANTRY_SERVER=${quote(config.server)} GANTRY_TOKEN=${placeholder}${config.ca ? ` GANTRY_CA=${quote(config.ca)}` : ''}`;
  const lines = ['To use this server from the gantry CLI, give the token in the environment:', `    ${env}`];
  if (offerConfigFile) {
    lines.push(`or save it in the CLI's config file, ${configPath()} (mode 0600, GANTRY_CONFIG moves it):`, `    ${JSON.stringify({ ...config, token: placeholder })}`);
  } else {
    lines.push(`or per command: gantry --server ${quote(config.server)}${config.ca ? ` --ca ${quote(config.ca)}` : ''} ... with GANTRY_TOKEN set.`);
  }
  return lines.join('\n');
}

interface DaemonFlags {
  dataDir: string;
  init?: boolean;
  allowHostPort: string[];
  secretKeyFile?: string;
  webDir?: string;
  directory?: string;
  logSinks?: string;
  registryCertsDir: string;
  registryTimeout: string;
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
  /** `up` and `server`: the node inspection policy (YAML); the built-in default without it. */
  inspectPolicy?: string;
  /** `up` and `server`: cluster alert rules and webhook receivers (YAML); the built-in rules without it. */
  alertRules?: string;
  /** `up` and `server`: how often alert rules are evaluated. */
  alertInterval: string;
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
  /** `up` and `agent`: image clean-up keeps the images of each app's newest N releases; 0: off. */
  imageKeepReleases: string;
  /** `up` and `agent`: how often instances' usage is sampled. */
  sampleInterval: string;
  /** `up` and `agent`: where the agent serves its own /metrics (off when absent). */
  metricsAddress?: string;
  verbose?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  /** `up` and `agent`: the CA file that verifies the server. */
  ca?: string;
}

interface ServerTls {
  cert: string;
  key: string;
  /** The server's own certificate (the first of --tls-cert). */
  leaf: X509Certificate;
  /** --tls-cert holds a self-signed certificate (the server's own, or the root of its chain): it can serve as the CA. */
  holdsRoot: boolean;
}

/** --tls-cert and --tls-key: both or neither; PEM, readable, and a pair. */
function serverTls(flags: DaemonFlags): ServerTls | undefined {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) return undefined;
  if (flags.tlsKey === undefined) fail(EXIT.usage, `--tls-cert needs --tls-key (the certificate's private key, PEM): give both, or neither for plain HTTP`);
  if (flags.tlsCert === undefined) fail(EXIT.usage, `--tls-key needs --tls-cert (the server's certificate, PEM): give both, or neither for plain HTTP`);
  const { pem: cert, certificates } = readCertificateFile(flags.tlsCert, '--tls-cert');
  const { pem: key, key: privateKey } = readPrivateKeyFile(flags.tlsKey, '--tls-key');
  const leaf = certificates[0]!;
  if (!leaf.checkPrivateKey(privateKey)) fail(EXIT.usage, `--tls-key ${flags.tlsKey} is not the private key of the certificate in --tls-cert ${flags.tlsCert}`);
  if (Date.parse(leaf.validTo) < Date.now()) console.error(`warning: the certificate in --tls-cert ${flags.tlsCert} expired on ${leaf.validTo}: clients will refuse it`);
  return { cert, key, leaf, holdsRoot: certificates.some((c) => c.checkIssued(c)) };
}

/** The PEM CA file of --ca (up, agent). */
function readCa(flags: DaemonFlags): string | undefined {
  return flags.ca === undefined ? undefined : readCertificateFile(flags.ca, '--ca').pem;
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
  const name = flags.nodeName ?? hostname();
  if (!NODE_NAME.test(name)) throw new Error(`${flags.nodeName ? '--node-name' : `the host name "${name}" is not a valid node name; give one with --node-name`}: ${NODE_NAME_RULE}`);
  return { name, address: flags.address, labels: parseLabels(flags.label), dockerSocket: flags.dockerSocket, dockerNetwork, portRange: parsePortRange(flags.portRange), pool: flags.pool, reserved: { cores, memoryBytes: memory }, shareBase, bootId: process.env.GANTRY_BOOT_ID, imageGc: imageGcSettings(flags), ...samplingSettings(flags) };
}

/** --sample-interval (1s to 10m) and --metrics-address. */
function samplingSettings(flags: DaemonFlags): { sampleIntervalMs: number; metricsAddress?: string } {
  const sampleIntervalMs = parseDuration(flags.sampleInterval);
  if (sampleIntervalMs === undefined || sampleIntervalMs < MIN_SAMPLE_INTERVAL_MS || sampleIntervalMs > MAX_SAMPLE_INTERVAL_MS) throw new Error(`--sample-interval ${flags.sampleInterval}: expected a duration from 1s to 10m`);
  return { sampleIntervalMs, ...(flags.metricsAddress ? { metricsAddress: flags.metricsAddress } : {}) };
}

/** --image-keep-releases: a whole number; 0 turns image clean-up off. */
function imageGcSettings(flags: DaemonFlags): ImageGcSettings {
  const keepReleases = Number(flags.imageKeepReleases);
  if (!Number.isInteger(keepReleases) || keepReleases < 0) throw new Error(`--image-keep-releases ${flags.imageKeepReleases}: expected a whole number (0 turns image clean-up off)`);
  return { keepReleases, enabled: keepReleases > 0 };
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
    .option('--share-base <n>', 'pieces each core is divided into: 100 → 0.01 CPU, 1000 → 0.001 CPU', '100')
    .option('--image-keep-releases <n>', 'remove images Gantry used here for an app that are older than its newest <n> releases and that nothing uses (0: never remove images)', String(DEFAULT_KEEP_RELEASES))
    .option('--sample-interval <duration>', 'how often the agent samples what each instance uses (CPU, memory, network, block I/O) and sends it to the server', '10s')
    .option('--metrics-address <host:port>', "serve the agent's own Prometheus metrics at http://<host:port>/metrics (no auth: keep it on loopback or a monitoring network); off by default");
}

function parsePortRange(value: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(value);
  const [low, high] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(low >= 1 && high <= 65535 && low <= high)) throw new Error(`--port-range ${value}: expected LOW-HIGH within 1-65535`);
  return [low, high];
}

export function registerDaemonCommands(program: Command): void {
  nodeOptions(serverOptions(program.command('up').description('run a server, a local agent and the embedded store in one process (the quick start)')))
    .option('--ca <file>', 'with --tls-cert: the PEM CA certificate(s) that verify it, for the local agent and the CLI (default: --tls-cert itself if it holds a self-signed certificate, else the system CAs)')
    .action(async (flags: DaemonFlags) => {
      const tls = serverTls(flags);
      const ca = readCa(flags);
      if (ca && !tls) fail(EXIT.usage, '--ca is for a server started with --tls-cert and --tls-key');
      const settings = serverSettings(flags, tls);
      if (tls && !(isIP(flags.host) ? tls.leaf.checkIP(flags.host) : tls.leaf.checkHost(flags.host))) {
        console.error(`warning: the certificate in --tls-cert does not name ${flags.host} (in its subjectAltName), the address the local agent connects to: the agent will refuse it`);
      }
      const server = await startServer(settings);
      // The local agent (and this user's CLI) trust --ca, else the certificate itself when it holds its root, else the system's CAs.
      announce(server, flags.dataDir, { ca: tls && (flags.ca ? resolve(flags.ca) : tls.holdsRoot ? resolve(flags.tlsCert!) : undefined), saveForCli: true });
      const agentCa = tls ? (ca ?? [...rootCertificates, tls.cert].join('\n')) : undefined;
      const identity = nodeIdentity(flags);
      const agent = await startAgent({ ...identity, server: server.url, token: server.localAgentToken(identity.name), ca: agentCa, dataDir: join(flags.dataDir, 'agent'), log: (line) => console.log(`agent: ${line}`) });
      console.log(`agent running as node "${agent.name}". Deploy with: gantry apply -f <spec.yaml>`);
      onSignals(async () => {
        await agent.close();
        await server.close();
      });
    });

  serverOptions(program.command('server').description('run a Gantry server (API, controllers, embedded store)'))
    .action(async (flags: DaemonFlags) => {
      const tls = serverTls(flags);
      const server = await startServer(serverSettings(flags, tls));
      announce(server, flags.dataDir, { ca: tls?.holdsRoot ? resolve(flags.tlsCert!) : undefined, saveForCli: false });
      onSignals(() => server.close());
    });

  nodeOptions(program.command('agent').description('run a node agent that keeps this host\'s assigned instances running'))
    .requiredOption('--server <url>', 'the Gantry server', process.env.GANTRY_SERVER)
    .option('--token-file <path>', 'a file holding the agent (or join) token; keep it readable only by the agent\'s user')
    .option('--token <token>', 'the token itself (visible to every user in ps: prefer --token-file or GANTRY_TOKEN)')
    .option('--data-dir <dir>', 'where the agent keeps its state', join(defaultDataDir(), 'agent'))
    .option('--address <address>', 'IP address or host name other hosts reach this node on (default: the local address this host reaches the server from)')
    .option('--ca <file>', 'PEM CA certificate(s) that verify an https:// server (default: the system CAs)')
    .option('--log-max-size <size>', "rotate an instance's log file past this size (10Mi, 500Ki)", '10Mi')
    .option('--log-max-files <n>', "log files kept per instance and stream, the live one included (Docker: the json-file driver's max-file)", '3')
    .option('--log-max-age <age>', 'remove rotated log files older than this (7d, 12h); the process runtime only')
    .action(async (flags: DaemonFlags & { server: string; token?: string; tokenFile?: string } & LogRetentionFlags) => {
      const ca = readCa(flags);
      if (ca && !/^https:/i.test(flags.server)) console.error(`warning: --ca is used only with an https:// server, and --server is ${flags.server}`);
      if (flags.token) console.error('warning: a token given with --token is visible to every user of this host (ps); use --token-file or GANTRY_TOKEN');
      const token = flags.tokenFile ? readTokenFile(flags.tokenFile) : (flags.token ?? process.env.GANTRY_TOKEN);
      const joinedBefore = existsSync(join(flags.dataDir, SAVED_TOKEN_FILE));
      if (!token && !joinedBefore) throw new Error('an agent needs a token: --token-file FILE (or GANTRY_TOKEN)');
      const identity = nodeIdentity(flags);
      // Every endpoint of this node carries this address: found before the agent starts, so a wrong one stops it here.
      const advertised = await advertisedAddress(flags.server, flags.address).catch((err: Error) => fail(EXIT.usage, err.message));
      if (advertised.found) console.log(`agent: advertising ${advertised.address}, the address this host reaches the server from (--address gives another)`);
      const logRetention = logRetentionOf(flags);
      const agent = await startAgent({ ...identity, address: advertised.address, server: flags.server, token: token ?? '', ca, dataDir: flags.dataDir, logRetention, log: (line) => console.log(`agent: ${line}`) });
      console.log(`agent running as node "${agent.name}"`);
      onSignals(() => agent.close());
    });

  for (const daemon of program.commands.filter((c) => ['up', 'server', 'agent'].includes(c.name()))) daemon.hook('preAction', prepareDaemonProcess);
}

/**
 * What a long-running Gantry process sets up before anything else: as many descriptors as the
 * host allows (every client socket is one), and a missed promise rejection that is logged rather
 * than fatal (Node's default exits, taking every agent connection and stream with it).
 */
function prepareDaemonProcess(): void {
  const { limit, note } = raiseFileLimit();
  if (note) console.error(`warning: ${note}`);
  else if (limit && limit.soft < 4096) console.error(`warning: this process may open only ${limit.soft} files; raise the hard limit (ulimit -Hn, LimitNOFILE=) for more clients`);
  process.on('unhandledRejection', (reason) => {
    console.error(`gantry: an unexpected failure was ignored (please report it): ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
  });
}

function serverOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'where state is kept', defaultDataDir())
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '7070')
    .option('--store <url>', 'sqlite:<path> (default: <data-dir>/gantry.db)')
    .option('--init', 'start on an empty store file as a new cluster (without it, an empty file is refused as a wiped store)')
    .option('--node-timeout <seconds>', 'seconds without a word from a node\'s agent before the node is down and its instances are replaced; at least two heartbeats (2 × min(5, --registry-ttl / 3))', '30')
    .option('--registry-ttl <seconds>', 'seconds a silent node\'s endpoints stay registered', '15')
    .option('--redis-url <url>', 'publish registry and instance changes to Redis pub/sub (redis://host:port)')
    .option('--renderer <file.yaml>', 'render a file (nginx upstreams, ...) from the registry on every change (repeatable)', collect, [])
    .option('--inspect-policy <file.yaml>', 'the checks agents run on their nodes and their thresholds (gantry node inspect; docs/observability.md); default: the built-in policy')
    .option('--alert-rules <file.yaml>', 'cluster alert rules and the receivers alerts are sent to: webhooks, Alertmanagers (gantry alerts; docs/observability.md); default: the built-in rules, no receivers')
    .option('--alert-interval <duration>', 'how often the alert rules are evaluated (1s to 5m): shorter tells sooner, for a little more CPU per evaluation', '5s')
    .option('--dns-port <port>', 'serve DNS (UDP and TCP) for registered endpoints on this port')
    .option('--dns-host <address>', 'address the DNS server listens on', '127.0.0.1')
    .option('--dns-domain <domain>', 'the DNS zone: names are <entry>.<app>.<env>.<domain>', 'gantry.local')
    .option('--dns-workers <n>', 'extra processes answering DNS over UDP (each holds a copy of the registry)', '0')
    .option('--allow-host-port <port>', 'let specs fix this privileged host port (below 1024), e.g. 80 (repeatable)', collect, [])
    .option('--secret-key-file <file>', 'the key that seals stored secrets such as registry passwords (default <data-dir>/secret.key, made on first start; GANTRY_SECRET_KEY wins); every server of a cluster needs the same')
    .option('--web-dir <dir>', 'the web console\'s built files, served at / (default: dist/web beside the server, made by npm run build)')
    .option('--log-sinks <file.yaml>', "ship the lines of apps whose spec has no logs: to these sinks (the file holds what an app's logs: holds; docs/observability.md)")
    .option('--directory <file.yaml>', 'also sign people in against this company directory (LDAP, Active Directory): its groups give team roles and platform roles (docs/teams.md)')
    .option('--registry-timeout <seconds>', 'how long the server waits for an image registry when it pins a tag to a digest (one it could not reach is not asked again for 30 s)', '10')
    .option('--registry-certs-dir <dir>', 'CA certificates of private image registries, as Docker keeps them: <dir>/<host:port>/ca.crt', '/etc/docker/certs.d')
    .option('--tls-cert <file>', 'serve HTTPS (and WSS to agents) with this PEM certificate (and its chain); needs --tls-key')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert (unencrypted; keep it readable only by the server\'s user)')
    .option('-v, --verbose', 'log every request');
}

function positiveSeconds(flag: string, value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new Error(`${flag} ${value}: expected seconds, more than 0 and at most 3600`);
  return seconds;
}

function alertInterval(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 1000 || ms > 300_000) throw new Error(`--alert-interval ${value}: expected a duration from 1s to 5m`);
  return ms;
}

function serverSettings(flags: DaemonFlags, tls: ServerTls | undefined): ServerOptions {
  return {
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    dataDir: flags.dataDir,
    host: flags.host,
    port: Number(flags.port),
    storeUrl: flags.store,
    nodeTimeoutMs: Number(flags.nodeTimeout) * 1000,
    registryTtlMs: Number(flags.registryTtl) * 1000,
    redisUrl: flags.redisUrl,
    renderers: flags.renderer.map(loadRendererConfig),
    inspectPolicy: loadInspectPolicy(flags.inspectPolicy),
    alertRules: loadAlertRules(flags.alertRules),
    alertIntervalMs: alertInterval(flags.alertInterval),
    dns: flags.dnsPort === undefined ? undefined : { port: Number(flags.dnsPort), host: flags.dnsHost, domain: flags.dnsDomain, workers: Number(flags.dnsWorkers) },
    bootstrapToken: process.env.GANTRY_BOOTSTRAP_TOKEN,
    init: flags.init,
    allowedPrivilegedPorts: flags.allowHostPort.map((value) => {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 1 || port > 1023) throw new Error(`--allow-host-port ${value}: expected a privileged port, 1-1023 (ports from 1024 up need no permission)`);
      return port;
    }),
    secretKeyFile: flags.secretKeyFile,
    ...(flags.webDir !== undefined ? { webDir: resolve(flags.webDir) } : {}),
    ...(flags.directory !== undefined ? { directory: loadDirectoryConfig(flags.directory) } : {}),
    ...(flags.logSinks !== undefined ? { logSinks: loadLogSinks(flags.logSinks) } : {}),
    registryCertsDir: flags.registryCertsDir,
    registryTimeoutMs: positiveSeconds('--registry-timeout', flags.registryTimeout) * 1000,
    log: flags.verbose,
  };
}
