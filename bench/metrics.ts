// What usage sampling costs. Prints one JSON line (progress goes to stderr). Run: npx tsx bench/metrics.ts
//
// agent: two agents as child processes of this script, each running INSTANCES `sleep` process
// instances (0.1 CPU and 64 MiB each, so each has cpu and memory cgroups of its own, as real
// ones do), both connected to one real server in this process over the same window: one samples
// every INTERVAL_S seconds (10, the default), the other never. The difference of their CPU time
// (utime + stime from /proc/<pid>/stat) over WINDOW_S seconds, as a share of one core, and of
// their RSS (VmRSS) at the end, is what sampling costs. Targets: < 2% of a core, < 20 MiB.
//
// ingest: the server's side at NODES × PER_NODE instances, in this process, through the real
// pieces: a ClusterState loaded from a SQLite store holding that many node and instance records,
// each node's usage message as JSON text, parsed and checked against the protocol's schema as the
// connection does, then kept by NodeReports.noteUsage (the agent-trust check, the rings). One round
// is one interval's worth (a message from every node); ROUNDS rounds. Figures: CPU per round and
// as a share of one core at a 10 s interval, and the memory the rings hold (heap and typed arrays;
// run with node --expose-gc for a settled figure).
//
// fleet: the same over real sockets, with hollow agents (src/sim/): a `gantry server` child and a
// hollow fleet child of FLEET_NODES nodes, apps of 300 instances until FLEET_NODES × PER_NODE are
// running; then the server's CPU over WINDOW_S seconds with the fleet sending no usage, and over
// WINDOW_S seconds with every node sending its usage every INTERVAL_S seconds. FLEET_NODES=0 skips
// it (it places every instance first: minutes at thousands of nodes).
//
// Environment: INSTANCES (200), INTERVAL_S (10), WINDOW_S (60), NODES (5000), PER_NODE (30),
// ROUNDS (5), FLEET_NODES (1000); SKIP_AGENT, SKIP_INGEST skip those parts.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent } from '../src/agent/main.js';
import { AgentToServerSchema } from '../src/model/agent-protocol.js';
import { EntrySpec } from '../src/model/spec.js';
import type { Instance, NodeRecord } from '../src/model/types.js';
import type { UsageSample } from '../src/model/usage.js';
import { ProcessRuntime } from '../src/runtime/process.js';
import { startServer } from '../src/server/main.js';
import { ClusterState } from '../src/server/state.js';
import { STORE } from '../src/server/keys.js';
import { EventLog } from '../src/server/services/events.js';
import { UsageService } from '../src/server/services/usage.js';
import { NodeReports } from '../src/server/agents/reports.js';
import { openStore } from '../src/store/index.js';
import { FleetProcess } from '../src/sim/fleet-process.js';
import { GantryClient } from '../src/cli/client.js';
import { freePort } from '../test/helpers/cluster.js';

const INSTANCES = Number(process.env.INSTANCES ?? 200);
const INTERVAL_S = Number(process.env.INTERVAL_S ?? 10);
const WINDOW_S = Number(process.env.WINDOW_S ?? 60);
const NODES = Number(process.env.NODES ?? 5000);
const PER_NODE = Number(process.env.PER_NODE ?? 30);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ADMIN = 'gty_bench_metrics_admin';

interface ChildConfig {
  server: string;
  token: string;
  name: string;
  dataDir: string;
  cgroupParent: string;
  sampleIntervalMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (line: string) => process.stderr.write(`${line}\n`);

/** The child: an agent on the process runtime, closed (its instances left running) on SIGTERM. */
async function runAgent(config: ChildConfig): Promise<void> {
  const runtime = new ProcessRuntime({ stateDir: join(config.dataDir, 'process'), cgroupParent: config.cgroupParent });
  const agent = await startAgent({
    server: config.server, token: config.token, dataDir: config.dataDir, name: config.name, labels: { bench: config.name },
    cores: 64, memoryBytes: 64 * 1024 ** 3, runtimes: [runtime], sampleIntervalMs: config.sampleIntervalMs, log: (line) => progress(`${config.name}: ${line}`),
  });
  process.once('SIGTERM', () => void agent.close().then(() => process.exit(0)));
}

/** CPU seconds (utime + stime) and RSS bytes of a process. */
function costOf(pid: number, ticksPerSecond: number): { cpu: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return { cpu: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond, rss: rssKiB * 1024 };
}

async function agentCost(): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-metrics-'));
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN, init: true });
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.json() as Promise<Record<string, unknown>>;
  };
  const children = new Map<string, ChildProcess>();
  const configs = ['sampling', 'baseline'].map((name): ChildConfig => ({
    server: server.url, token: ADMIN, name, dataDir: join(dir, name), cgroupParent: `gantry-bench-${name}-${process.pid}`,
    sampleIntervalMs: name === 'sampling' ? INTERVAL_S * 1000 : 0,
  }));
  try {
    for (const config of configs) {
      children.set(config.name, spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname], { env: { ...process.env, METRICS_BENCH_CHILD: JSON.stringify(config) }, stdio: ['ignore', 'ignore', 'inherit'] }));
      await api('POST', '/v1/apps', { app: config.name, entrypoints: { sleep: { command: ['sleep', '100000'], replicas: INSTANCES, placement: { labels: { bench: config.name } }, stop: { grace: '1s', drain: 0 } } } });
    }
    const deadline = Date.now() + 600_000;
    for (;;) {
      const { apps } = (await api('GET', '/v1/apps')) as { apps: { entries: { running: number }[] }[] };
      const running = apps.reduce((n, a) => n + (a.entries[0]?.running ?? 0), 0);
      if (running === 2 * INSTANCES) break;
      if (Date.now() > deadline) throw new Error(`only ${running} of ${2 * INSTANCES} instances running`);
      await sleep(1000);
    }
    progress(`${2 * INSTANCES} instances running; settling, then a ${WINDOW_S}s window`);
    await sleep(Math.max(15, INTERVAL_S * 1.5) * 1000);
    const pid = (name: string) => children.get(name)!.pid!;
    const before = { sampling: costOf(pid('sampling'), ticksPerSecond), baseline: costOf(pid('baseline'), ticksPerSecond) };
    await sleep(WINDOW_S * 1000);
    const end = { sampling: costOf(pid('sampling'), ticksPerSecond), baseline: costOf(pid('baseline'), ticksPerSecond) };
    const share = (name: 'sampling' | 'baseline') => (end[name].cpu - before[name].cpu) / WINDOW_S;
    const usage = (await api('GET', '/v1/usage?app=sampling&history=false')) as { instances: { latest: unknown }[] };
    return {
      instances: INSTANCES,
      intervalSeconds: INTERVAL_S,
      windowSeconds: WINDOW_S,
      sampledInstancesOnServer: usage.instances.filter((i) => i.latest).length,
      samplingCpuPercent: round(100 * share('sampling')),
      baselineCpuPercent: round(100 * share('baseline')),
      extraCpuPercentOfOneCore: round(100 * (share('sampling') - share('baseline'))),
      samplingRssMiB: round(end.sampling.rss / 1024 ** 2),
      baselineRssMiB: round(end.baseline.rss / 1024 ** 2),
      extraRssMiB: round((end.sampling.rss - end.baseline.rss) / 1024 ** 2),
    };
  } finally {
    for (const child of children.values()) {
      if (child.exitCode !== null) continue;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await server.close();
    // The instances outlive their agents by design: removed here, with what they held.
    for (const config of configs) {
      const runtime = new ProcessRuntime({ stateDir: join(config.dataDir, 'process'), cgroupParent: config.cgroupParent });
      for (const found of await runtime.list()) await runtime.remove(found.instanceId).catch(() => undefined);
      await runtime.close();
      for (const root of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpuset', '/sys/fs/cgroup']) await rmdir(join(root, config.cgroupParent)).catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

async function ingestCost(): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-ingest-'));
  const store = openStore(`sqlite:${join(dir, 'gantry.db')}`);
  try {
    const spec = EntrySpec.parse({ command: ['sleep', '1'] });
    const nodeName = (n: number) => `node-${n}`;
    const idOf = (n: number, k: number) => `ingest-${n}-web-${k}`;
    for (let n = 0; n < NODES; n += 100) {
      const success = [];
      for (let m = n; m < Math.min(NODES, n + 100); m++) {
        const node: NodeRecord = {
          name: nodeName(m), address: '127.0.0.1', labels: {}, cores: 32, memoryBytes: 128 * 1024 ** 3, runtimes: ['process'], runtimeNotes: [], portRange: [20000, 29999],
          agentVersion: 'bench', pool: 'default', reserved: { cores: 0, memoryBytes: 0 }, shareBase: 100, state: 'ready', registeredAt: Date.now(), lastHeartbeat: Date.now(),
        };
        success.push({ type: 'put' as const, key: STORE.nodes.key(node.name), value: STORE.nodes.encode(node) });
        for (let k = 0; k < PER_NODE; k++) {
          const instance: Instance = { id: idOf(m, k), app: 'ingest', env: 'default', entry: 'web', release: 1, node: node.name, runtime: 'process', spec, ports: [], desired: 'running', createdAt: Date.now() };
          success.push({ type: 'put' as const, key: STORE.instances.key('ingest', instance.id), value: STORE.instances.encode(instance) });
        }
      }
      await store.txn({ compare: [], success });
    }
    const state = await ClusterState.load(store);
    progress(`ingest: ${state.nodes.size} nodes, ${state.instances.size} instances loaded`);
    const usage = new UsageService(state);
    const reports = new NodeReports(store, state, new EventLog(store));
    const sample = (id: string, r: number): UsageSample => ({
      id, cpuCores: 0.05 + r / 100, cpuSeconds: 1000 + r, periods: 50_000, throttledPeriods: 120, throttledSeconds: 3.5, memoryBytes: 30_000_000 + r,
      memoryLimitBytes: 67_108_864, oomKills: 0, netRxBytes: null, netTxBytes: null, blockReadBytes: 4096, blockWriteBytes: 8192,
    });
    // The text each node would send, made before the clock starts (the agents' work, not the server's).
    const messages = (r: number) => Array.from({ length: NODES }, (_, n) => JSON.stringify({ type: 'usage', at: Date.now(), intervalMs: INTERVAL_S * 1000, samples: Array.from({ length: PER_NODE }, (_, k) => sample(idOf(n, k), r)) }));
    const held = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const heldBefore = held();
    const roundMs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const texts = messages(r);
      const cpu = process.cpuUsage();
      for (let n = 0; n < NODES; n++) {
        const parsed = AgentToServerSchema.parse(JSON.parse(texts[n]!));
        if (parsed.type === 'usage') reports.noteUsage(nodeName(n), parsed.samples, usage);
      }
      const spent = process.cpuUsage(cpu);
      roundMs.push((spent.user + spent.system) / 1000);
    }
    global.gc?.();
    const heldAfter = held();
    const perRound = roundMs.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, roundMs.length - 1);
    usage.close();
    state.close();
    return {
      nodes: NODES,
      instances: NODES * PER_NODE,
      rounds: ROUNDS,
      keptInstances: usage.size,
      firstRoundCpuMs: round(roundMs[0]!),
      cpuMsPerRound: round(perRound),
      cpuPercentOfOneCoreAt10s: round((100 * perRound) / (INTERVAL_S * 1000)),
      memoryMiBForRings: round((heldAfter - heldBefore) / 1024 ** 2),
      bytesPerInstance: Math.round((heldAfter - heldBefore) / Math.max(1, usage.size)),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fleetCost(nodes: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-fleet-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), 'server', '--data-dir', join(dir, 'server'), '--port', String(port)], { env: { ...process.env, GANTRY_BOOTSTRAP_TOKEN: ADMIN }, stdio: ['ignore', 'ignore', 'inherit'] });
  let fleet: FleetProcess | undefined;
  try {
    const client = new GantryClient({ server: url, token: ADMIN });
    for (let at = Date.now(); !(await fetch(`${url}/healthz`).then((r) => r.ok, () => false)); await sleep(250)) if (Date.now() - at > 60_000) throw new Error('the server did not start');
    fleet = await FleetProcess.start({ server: url, token: ADMIN, count: nodes, namePrefix: 'usage', cores: 32, memoryBytes: 128 * 1024 ** 3, startDelayMs: 200 });
    const total = nodes * PER_NODE;
    for (let placed = 0, n = 0; placed < total; n++) {
      const replicas = Math.min(300, total - placed);
      await client.apply(JSON.stringify({ app: `usage-${n}`, entrypoints: { web: { command: ['sleep', '1'], replicas, resources: { cpu: 0.05, memory: '32Mi' } } } }), 'application/json');
      placed += replicas;
    }
    for (let at = Date.now(); (await fleet.stats()).running < total; await sleep(2000)) if (Date.now() - at > 1_800_000) throw new Error('the fleet did not run every instance');
    progress(`fleet: ${total} instances running on ${nodes} hollow nodes; ${WINDOW_S}s without usage, then ${WINDOW_S}s with`);
    const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const serverCpu = async () => {
      const before = costOf(server.pid!, ticksPerSecond);
      await sleep(WINDOW_S * 1000);
      const end = costOf(server.pid!, ticksPerSecond);
      return { share: (end.cpu - before.cpu) / WINDOW_S, rss: end.rss };
    };
    const quiet = await serverCpu();
    await fleet.reportUsageEvery(INTERVAL_S * 1000);
    await sleep(INTERVAL_S * 1000); // every node past its first, randomly placed, report
    const busy = await serverCpu();
    const stats = await fleet.stats();
    const usage = (await client.usage({ app: 'usage-0' })).instances.filter((i) => i.latest).length;
    return {
      nodes, instances: total, windowSeconds: WINDOW_S, intervalSeconds: INTERVAL_S, usageMessages: stats.usageMessages, usageSamples: stats.usageSamples,
      sampledInstancesOfOneApp: usage,
      serverCpuPercentWithout: round(100 * quiet.share), serverCpuPercentWith: round(100 * busy.share), extraServerCpuPercent: round(100 * (busy.share - quiet.share)),
      serverRssMiBWithout: round(quiet.rss / 1024 ** 2), serverRssMiBWith: round(busy.rss / 1024 ** 2),
    };
  } finally {
    await fleet?.close();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const agent = process.env.SKIP_AGENT ? null : await agentCost();
  progress(`agent: ${JSON.stringify(agent)}`);
  const ingest = process.env.SKIP_INGEST ? null : await ingestCost();
  progress(`ingest: ${JSON.stringify(ingest)}`);
  const fleetNodes = Number(process.env.FLEET_NODES ?? 1000);
  const fleet = fleetNodes > 0 ? await fleetCost(fleetNodes) : null;
  console.log(JSON.stringify({ bench: 'metrics', agent, ingest, fleet }));
}

// Last, once every declaration above is initialised: the same file is the bench and its agents.
if (process.env.METRICS_BENCH_CHILD) await runAgent(JSON.parse(process.env.METRICS_BENCH_CHILD) as ChildConfig);
else await main();
