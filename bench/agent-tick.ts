// What an agent costs at rest, and how soon a health-checked instance counts as running. Prints
// one JSON line (progress goes to stderr). Run: npx tsx bench/agent-tick.ts
//
// Set-up: one agent as a child process of this script (startAgent with the process runtime only,
// so no Docker Engine is listed), connected to a stand-in server in this process: a WebSocket
// endpoint that welcomes it (heartbeat 5 s, as the real server's default), pings it every
// heartbeat, acknowledges its registry messages and hands it its assignments. Everything the
// agent reports is read from that socket.
//
// Figures (CPU: utime + stime of the agent's process from /proc/<pid>/stat, as a share of one core):
//   idleCpu     connected, nothing assigned, over SAMPLE_S seconds;
//   busyCpu     INSTANCES `sleep` process instances assigned and all running (then SETTLE_S
//               seconds to let the starts' work end), over SAMPLE_S seconds;
//   healthMs    HEALTH_SAMPLES instances with an HTTP health check at the default 5 s interval
//               (busybox httpd, which listens within milliseconds), assigned one after another:
//               from the process's start (its status's startedAt) to its status turning running
//               (healthySince); both are the agent's Date.now(). min / median / max.
//
// Environment: INSTANCES (200), SAMPLE_S (30), SETTLE_S (5), HEALTH_SAMPLES (5).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { startAgent } from '../src/agent/main.js';
import type { ServerToAgent } from '../src/model/agent-protocol.js';
import { EntrySpec } from '../src/model/spec.js';
import type { Instance, InstanceStatus } from '../src/model/types.js';
import { ProcessRuntime } from '../src/runtime/process.js';
import { freePort } from '../test/helpers/cluster.js';

const INSTANCES = Number(process.env.INSTANCES ?? 200);
const SAMPLE_S = Number(process.env.SAMPLE_S ?? 30);
const SETTLE_S = Number(process.env.SETTLE_S ?? 5);
const HEALTH_SAMPLES = Number(process.env.HEALTH_SAMPLES ?? 5);
const HEARTBEAT_MS = 5000;
const NODE = 'bench-node';

interface ChildConfig {
  server: string;
  dataDir: string;
  cgroupParent: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (line: string) => process.stderr.write(`${line}\n`);

/** The child: an agent on the process runtime, closed (its instances left running) on SIGTERM. */
async function runAgent(config: ChildConfig): Promise<void> {
  const runtime = new ProcessRuntime({ stateDir: join(config.dataDir, 'process'), cgroupParent: config.cgroupParent });
  const agent = await startAgent({ server: config.server, token: 'bench', dataDir: config.dataDir, name: NODE, runtimes: [runtime], log: (line) => progress(`agent: ${line}`) });
  process.once('SIGTERM', () => void agent.close().then(() => process.exit(0)));
}


function instance(id: string, spec: unknown, ports: Instance['ports'] = []): Instance {
  return { id, app: 'bench', env: 'test', entry: 'web', release: 1, node: NODE, runtime: 'process', spec: EntrySpec.parse(spec), ports, desired: 'running', createdAt: Date.now() };
}

/** The stand-in server: one agent connection, the latest status of each instance. */
class StandInServer {
  readonly statuses = new Map<string, InstanceStatus>();
  private socket: WebSocket | undefined;
  private assigned: Instance[] = [];
  private readonly wss: WebSocketServer;
  private readonly pinger: NodeJS.Timeout;

  constructor(readonly port: number) {
    this.wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/v1/agent/connect' });
    this.wss.on('connection', (socket) => {
      this.socket = socket;
      socket.on('message', (data) => this.receive(JSON.parse(String(data)) as { type: string; [key: string]: unknown }));
    });
    this.pinger = setInterval(() => this.socket?.ping(), HEARTBEAT_MS);
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  assign(instances: Instance[]): void {
    this.assigned = instances;
    this.send({ type: 'assignments', instances });
  }

  running(ids: Iterable<string>): boolean {
    for (const id of ids) if (this.statuses.get(id)?.state !== 'running') return false;
    return true;
  }

  close(): void {
    clearInterval(this.pinger);
    this.socket?.terminate();
    this.wss.close();
  }

  private send(message: ServerToAgent): void {
    this.socket?.send(JSON.stringify(message));
  }

  private receive(message: { type: string; [key: string]: unknown }): void {
    if (message.type === 'hello') {
      this.send({ type: 'welcome', heartbeatMs: HEARTBEAT_MS, cluster: CLUSTER });
      this.send({ type: 'assignments', instances: this.assigned });
    }
    if (message.type === 'hello' || message.type === 'status') {
      for (const status of message.statuses as InstanceStatus[]) this.statuses.set(status.id, status);
    }
    if (message.type === 'registry') this.send({ type: 'ack', requestId: message.requestId as string });
  }
}

const CLUSTER = randomUUID();

async function waitFor(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The child's CPU time so far, in seconds. */
function cpuSeconds(pid: number, ticksPerSecond: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

async function sampleCpu(pid: number, ticksPerSecond: number): Promise<number> {
  const before = cpuSeconds(pid, ticksPerSecond);
  const startedAt = performance.now();
  await sleep(SAMPLE_S * 1000);
  const share = (cpuSeconds(pid, ticksPerSecond) - before) / ((performance.now() - startedAt) / 1000);
  return Math.round(share * 10_000) / 100;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-agent-tick-'));
  const cgroupParent = `gantry-bench-${process.pid}`;
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const server = new StandInServer(await freePort());
  let child: ChildProcess | undefined;
  try {
    const config: ChildConfig = { server: `http://127.0.0.1:${server.port}`, dataDir: join(dir, 'agent'), cgroupParent };
    child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname], { env: { ...process.env, AGENT_TICK_CHILD: JSON.stringify(config) }, stdio: ['ignore', 'ignore', 'inherit'] });
    const pid = child.pid!;
    await waitFor('the agent to connect', () => server.connected, 60_000);
    await sleep(SETTLE_S * 1000);
    progress(`idle: sampling ${SAMPLE_S}s`);
    const idleCpu = await sampleCpu(pid, ticksPerSecond);

    const sleepers = Array.from({ length: INSTANCES }, (_, i) => instance(`bench-sleep-${i}`, { command: ['sleep', '100000'], stop: { grace: '1s', drain: 0 } }));
    const assignedAt = Date.now();
    server.assign(sleepers);
    await waitFor(`${INSTANCES} instances running`, () => server.running(sleepers.map((s) => s.id)), 300_000);
    const allRunningMs = Date.now() - assignedAt;
    progress(`${INSTANCES} running after ${allRunningMs} ms; settling ${SETTLE_S}s, sampling ${SAMPLE_S}s`);
    await sleep(SETTLE_S * 1000);
    const busyCpu = await sampleCpu(pid, ticksPerSecond);

    const www = join(dir, 'www');
    mkdirSync(www);
    writeFileSync(join(www, 'index.html'), 'ok\n');
    const healthMs: number[] = [];
    const checked: Instance[] = [];
    for (let k = 0; k < HEALTH_SAMPLES; k++) {
      const port = await freePort();
      const web = instance(
        `bench-health-${k}`,
        { command: ['busybox', 'httpd', '-f', '-p', String(port), '-h', www], ports: [{ name: 'http' }], health: { http: { port: 'http' } }, stop: { grace: '1s', drain: 0 } },
        [{ name: 'http', host: port, protocol: 'tcp' }],
      );
      checked.push(web);
      server.assign([...sleepers, ...checked]);
      await waitFor(`${web.id} running`, () => server.running([web.id]), 60_000);
      const status = server.statuses.get(web.id)!;
      healthMs.push(status.healthySince! - status.startedAt!);
      progress(`${web.id}: running ${healthMs.at(-1)} ms after its start`);
    }
    const sorted = [...healthMs].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    console.log(JSON.stringify({ bench: 'agent-tick', instances: INSTANCES, sampleSeconds: SAMPLE_S, idleCpuPercent: idleCpu, busyCpuPercent: busyCpu, allRunningMs, healthToRunningMs: { min: sorted[0], median, max: sorted.at(-1), samples: healthMs } }));
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    server.close();
    // The instances outlive their agent by design: removed here, with what they held.
    const runtime = new ProcessRuntime({ stateDir: join(dir, 'agent', 'process'), cgroupParent });
    for (const found of await runtime.list()) await runtime.remove(found.instanceId).catch(() => undefined);
    await runtime.close();
    for (const root of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpuset', '/sys/fs/cgroup']) await rmdir(join(root, cgroupParent)).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

// Last, once every declaration above is initialised: the same file is the bench and its agent.
if (process.env.AGENT_TICK_CHILD) await runAgent(JSON.parse(process.env.AGENT_TICK_CHILD) as ChildConfig);
else await main();
