// The control plane at the scale of thousands of hosts, with hollow nodes (src/sim/): a real
// `gantry server` and a fleet of hollow agents speaking the real protocol, nothing running.
// Prints one JSON line (progress goes to stderr). Run:
//   npx tsx bench/controlplane.ts --quick                          200 nodes, 5,000 instances
//   npx tsx bench/controlplane.ts --nodes 1000 --instances 50000   (the defaults)
//   npx tsx bench/controlplane.ts --nodes 5000 --instances 150000  the issue's target size
//   npx tsx bench/controlplane.ts --steady 10000,100000 [--nodes 1000]   idle pass as instances grow
// Options: --phase-timeout S (600: a phase not done by then is reported not reached and the run
// ends), --node-timeout S (30), --registry-ttl S (15: heartbeats every 5 s), --start-delay MS
// (200), --lose N (100 nodes silenced at once; a tenth of the fleet at most), --server-root DIR
// (the Gantry checkout whose `src/cli/main.ts server` runs, through tsx; default this one).
// Environment: SERVER_NODE_ARGS (more node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=DIR").
//
// Three processes on one machine: the server alone in a child process (so its RSS and CPU, read
// from /proc, are the server's own), the hollow fleet in another (src/sim/fleet-process.ts: a
// socket per node, each from a loopback address of its own), and this one, which applies the
// apps, follows the watch streams and probes the API. They share the machine's cores: the
// fleet's own CPU and event-loop delay are reported, to show whether it kept up.
//
// Work: apps of 300 instances each (the last one smaller): `web` (half, one port: registered in
// the registry) and `worker` (half, no port), process runtime, 0.05 CPU and 32 MiB each; every
// fourth app is pinned to one zone. Nodes: 32 cores, 128 GiB, zones a/b/c, pool default.
// Applied 4 at a time.
//
// Figures (all from outside the server: it exposes no timing of its own):
// - placed / healthy: seconds from the first apply until every instance is placed (instance
//   records on the watch stream, desired running) and reported running and healthy (statuses).
// - applyMs: POST /v1/apps latency. The route runs one reconcile pass before it answers (queued
//   behind any pass under way), so it is the outside view of the pass time. appPlacedMs: from an
//   app's POST to its last instance seen placed.
// - instancesOfOneAppMs: GET /v1/instances?app=<one app>, one at a time every 200 ms, while the
//   fleet is placed and while lost nodes are replaced.
// - idle (steady state, nothing to do): GET /healthz latency for 10 s (one at a time: its p99 is
//   how long the server's event loop is held, i.e. the longest synchronous part of a pass), and
//   POST scale to the same count (a pass with nothing to place, plus one store write).
// - store: the revision (one per write transaction) and the rows of history (one per key
//   written) of the SQLite file, read each second through a read-only connection; WAL size.
// - server rssMiB / cpuPercent: /proc/<pid> of the server process, sampled each second.
// - lost: N nodes silenced at once (no heartbeat, no pong): when the server marks each down, and
//   when every instance is placed and healthy again on the other nodes, counted from the node
//   timeout after the silence (the target) and from the last node marked down.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { GantryClient } from '../src/cli/client.js';
import { Convergence } from '../src/sim/convergence.js';
import { FleetProcess, type FleetProcessStats } from '../src/sim/fleet-process.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    nodes: { type: 'string' },
    instances: { type: 'string' },
    steady: { type: 'string' },
    'phase-timeout': { type: 'string', default: '600' },
    'node-timeout': { type: 'string', default: '30' },
    'registry-ttl': { type: 'string', default: '15' },
    'start-delay': { type: 'string', default: '200' },
    lose: { type: 'string', default: '100' },
    'server-root': { type: 'string', default: resolve(import.meta.dirname, '..') },
  },
});
const NODES = Number(flags.nodes ?? (flags.quick ? 200 : 1000));
const INSTANCES = Number(flags.instances ?? (flags.quick ? 5000 : 50_000));
const STEADY = flags.steady?.split(',').map(Number);
const PHASE_MS = Number(flags['phase-timeout']) * 1000;
const NODE_TIMEOUT_S = Number(flags['node-timeout']);
const REGISTRY_TTL_S = Number(flags['registry-ttl']);
const START_DELAY_MS = Number(flags['start-delay']);
const LOSE = Math.min(Number(flags.lose), Math.max(1, Math.floor(NODES / 10)));
const SERVER_ROOT = resolve(flags['server-root']);
const APP_SIZE = 300;
const APPLY_CONCURRENCY = 4;
const TOKEN = randomBytes(24).toString('hex');

const startedAt = Date.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => Math.round(ms / 100) / 10;
const log = (line: string) => process.stderr.write(`[${seconds(Date.now() - startedAt)}s] ${line}\n`);

function percentiles(values: number[]): { n: number; p50: number; p99: number; max: number } | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1)!) };
}

/** Polls `done` until it holds or the deadline passes; the time it first held, or undefined. */
async function until(deadline: number, done: () => boolean, everyMs = 250): Promise<number | undefined> {
  for (;;) {
    if (done()) return Date.now();
    if (Date.now() >= deadline) return undefined;
    await sleep(everyMs);
  }
}

// ---- the server, in a child process, and what /proc and its store file say of it ----

/** Children to kill should this process be interrupted (the fleet's goes by itself with the IPC channel). */
const servers = new Set<ChildProcess>();

class ServerProcess {
  private constructor(readonly child: ChildProcess, readonly url: string, readonly stderrTail: string[]) {}

  static async start(dataDir: string): Promise<ServerProcess> {
    // SERVER_NODE_ARGS: more node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = process.env.SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const args = [...nodeArgs, '--import', 'tsx', join(SERVER_ROOT, 'src', 'cli', 'main.ts'), 'server', '--data-dir', dataDir, '--port', '0', '--node-timeout', String(NODE_TIMEOUT_S), '--registry-ttl', String(REGISTRY_TTL_S)];
    const child = spawn(process.execPath, args, { cwd: SERVER_ROOT, env: { ...process.env, GANTRY_BOOTSTRAP_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
    servers.add(child);
    child.once('exit', () => servers.delete(child));
    const tail: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      log(`server: ${line}`);
    });
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not start within 60s')), 60_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const match = /listening on (\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1]!);
        }
      });
      child.once('exit', (code) => reject(new Error(`the server exited with ${code}: ${tail.join(' | ')}`)));
    });
    return new ServerProcess(child, url, tail);
  }

  /** CPU seconds (user + system) and memory, from /proc. */
  usage(): { cpuSeconds: number; rssMiB: number; peakRssMiB: number } {
    const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 a second on Linux).
    return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100, rssMiB: Math.round(kib('VmRSS') / 1024), peakRssMiB: Math.round(kib('VmHWM') / 1024) };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
  }
}

/** The store file seen through a read-only connection (WAL readers do not block the writer). */
class StoreFile {
  private db: Database.Database | undefined;
  private lastRevision = 0;
  private rows = 0;

  constructor(private readonly path: string) {}

  sample(): { revision: number; rows: number; walMiB: number } {
    this.db ??= new Database(this.path, { readonly: true, fileMustExist: true });
    const { revision } = this.db.prepare('SELECT revision FROM meta WHERE id = 1').get() as { revision: number };
    const { n } = this.db.prepare('SELECT count(*) AS n FROM history WHERE revision > ? AND revision <= ?').get(this.lastRevision, revision) as { n: number };
    this.rows += n;
    this.lastRevision = revision;
    const wal = existsSync(`${this.path}-wal`) ? statSync(`${this.path}-wal`).size : 0;
    return { revision, rows: this.rows, walMiB: Math.round(wal / 2 ** 20) };
  }

  close(): void {
    this.db?.close();
  }
}

interface Sample {
  at: number;
  cpuSeconds: number;
  rssMiB: number;
  revision: number;
  rows: number;
  walMiB: number;
}

/** Server CPU, memory and store writes over [from, to], from the per-second samples. */
function windowFigures(samples: Sample[], from: number, to: number) {
  const inside = samples.filter((s) => s.at >= from && s.at <= to);
  if (inside.length < 2) return null;
  const first = inside[0]!;
  const last = inside.at(-1)!;
  const span = (last.at - first.at) / 1000;
  const perSecond = (pick: (s: Sample) => number) => {
    let peak = 0;
    for (let i = 1; i < inside.length; i++) peak = Math.max(peak, (pick(inside[i]!) - pick(inside[i - 1]!)) / ((inside[i]!.at - inside[i - 1]!.at) / 1000));
    return { mean: Math.round((pick(last) - pick(first)) / span), peak: Math.round(peak) };
  };
  return {
    seconds: Math.round(span),
    serverCpuPercent: Math.round(((last.cpuSeconds - first.cpuSeconds) / span) * 100),
    serverRssMiBMax: Math.max(...inside.map((s) => s.rssMiB)),
    storeTxnsPerSecond: perSecond((s) => s.revision),
    storeKeysWrittenPerSecond: perSecond((s) => s.rows),
    walMiBMax: Math.max(...inside.map((s) => s.walMiB)),
  };
}

// ---- the work: apps, applied; probes ----

interface AppPlan {
  name: string;
  instances: number;
  spec: object;
}

function appPlans(total: number): AppPlan[] {
  const plans: AppPlan[] = [];
  for (let i = 0, left = total; left > 0; i++, left -= APP_SIZE) {
    const size = Math.min(APP_SIZE, left);
    const web = Math.ceil(size / 2);
    const shape = {
      command: ['sleep', '86400'],
      resources: { cpu: 0.05, memory: '32Mi' },
      stop: { grace: '1s', drain: '0s' },
      ...(i % 4 === 3 ? { placement: { labels: { zone: 'abc'[Math.floor(i / 4) % 3]! } } } : {}),
    };
    const name = `bench-${String(i + 1).padStart(4, '0')}`;
    plans.push({ name, instances: size, spec: { app: name, entrypoints: { web: { ...shape, replicas: web, ports: [{ name: 'http' }] }, worker: { ...shape, replicas: size - web } } } });
  }
  return plans;
}

/** Applies the apps, a few at a time; when each POST was sent and how long it took. */
async function applyApps(client: GantryClient, plans: AppPlan[], sentAt: Map<string, number>, latencies: number[], errors: string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < plans.length) {
      const plan = plans[next++]!;
      for (let attempt = 1; attempt <= 3; attempt++) {
        const t0 = Date.now();
        if (!sentAt.has(plan.name)) sentAt.set(plan.name, t0);
        try {
          await client.apply(JSON.stringify(plan.spec), 'application/json');
          latencies.push(Date.now() - t0);
          break;
        } catch (err) {
          errors.push(`${plan.name}: ${(err as Error).message}`);
          await sleep(1000);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: APPLY_CONCURRENCY }, worker));
}

/** Times one request after another (a pause between) until stopped; a failed one counts as its time. */
function probeLoop(url: string, pauseMs: number, init: RequestInit = {}): { stop: () => Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const response = await fetch(url, { ...init, signal: AbortSignal.timeout(120_000) });
        await response.arrayBuffer();
      } catch {
        // a timeout or a reset: its time stands
      }
      times.push(performance.now() - t0);
      await sleep(pauseMs);
    }
  })();
  return { stop: async () => ((running = false), await loop, times) };
}

// ---- one run ----

interface Rig {
  server: ServerProcess;
  client: GantryClient;
  fleet: FleetProcess;
  convergence: Convergence;
  samples: Sample[];
  fleetStats: FleetProcessStats[];
  close(): Promise<void>;
}

async function startRig(nodes: number): Promise<Rig> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gantry-bench-controlplane-'));
  const server = await ServerProcess.start(dataDir);
  log(`server ${server.url} (pid ${server.child.pid}, from ${SERVER_ROOT})`);
  const client = new GantryClient({ server: server.url, token: TOKEN });
  const store = new StoreFile(join(dataDir, 'gantry.db'));
  const samples: Sample[] = [];
  const fleetStats: FleetProcessStats[] = [];
  let fleet: FleetProcess | undefined;
  const sampler = setInterval(() => {
    try {
      samples.push({ at: Date.now(), ...server.usage(), ...store.sample() });
    } catch {
      // the server is starting or stopping: no sample this second
    }
    fleet?.stats().then((s) => fleetStats.push(s), () => {});
  }, 1000);
  const t0 = Date.now();
  fleet = await FleetProcess.start({ server: server.url, token: TOKEN, count: nodes, startDelayMs: START_DELAY_MS, labels: { zone: ['a', 'b', 'c'] } });
  log(`hollow fleet of ${nodes} started (pid ${fleet.pid}) in ${seconds(Date.now() - t0)}s`);
  const convergence = new Convergence(client);
  await convergence.start();
  const rig: Rig = {
    server, client, fleet, convergence, samples, fleetStats,
    async close() {
      clearInterval(sampler);
      convergence.close();
      await fleet!.close();
      await server.stop();
      store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return rig;
}

async function nodesReady(rig: Rig, nodes: number, deadline: number): Promise<number | undefined> {
  while (Date.now() < deadline) {
    const list = await rig.client.listNodes().catch(() => undefined);
    if (list && list.nodes.filter((n) => n.state === 'ready').length >= nodes) return Date.now();
    await sleep(500);
  }
  return undefined;
}

/** Applies `plans` and waits until all of `expected` instances are placed, then healthy. */
async function place(rig: Rig, plans: AppPlan[], expected: number) {
  const from = Date.now();
  const deadline = from + PHASE_MS;
  const sentAt = new Map<string, number>();
  const placedAt = new Map<string, number>();
  const applyMs: number[] = [];
  const errors: string[] = [];
  const probe = probeLoop(`${rig.client.server}/v1/instances?app=${plans[0]!.name}`, 200, { headers: { authorization: `Bearer ${TOKEN}` } });
  let appliedAt: number | undefined;
  const applying = applyApps(rig.client, plans, sentAt, applyMs, errors).then(() => void (appliedAt = Date.now()));
  let last = rig.convergence.summary();
  const check = (want: 'placed' | 'healthy') => () => {
    last = rig.convergence.summary();
    for (const plan of plans) if (!placedAt.has(plan.name) && (last.byApp.get(plan.name)?.placed ?? 0) >= plan.instances) placedAt.set(plan.name, Date.now());
    return last[want] >= expected;
  };
  const placed = await until(deadline, check('placed'));
  log(`placed: ${last.placed}/${expected}${placed ? ` in ${seconds(placed - from)}s` : ' (not reached)'}`);
  const healthy = placed && (await until(deadline, check('healthy')));
  log(`healthy: ${last.healthy}/${expected}${healthy ? ` in ${seconds(healthy - from)}s` : ' (not reached)'}`);
  await Promise.race([applying, sleep(Math.max(0, deadline - Date.now()))]);
  const instancesOfOneAppMs = percentiles(await probe.stop());
  const appPlacedMs = percentiles(plans.filter((p) => placedAt.has(p.name)).map((p) => placedAt.get(p.name)! - sentAt.get(p.name)!));
  return {
    from,
    to: healthy || Date.now(),
    figures: {
      reached: Boolean(healthy),
      placedS: placed ? seconds(placed - from) : null,
      healthyS: healthy ? seconds(healthy - from) : null,
      placedAtEnd: last.placed,
      healthyAtEnd: last.healthy,
      appliedApps: applyMs.length,
      applyErrors: errors.slice(0, 5),
      applyMs: percentiles(applyMs),
      appPlacedMs,
      instancesOfOneAppMs,
      allAppliedS: appliedAt ? seconds(appliedAt - from) : null,
      reconcile: await reconcileFigures(rig),
    },
  };
}

/** The server's own figures of its reconcile passes (GET /v1/server/reconcile): the recent passes' ms. */
async function reconcileFigures(rig: Rig): Promise<Record<string, unknown> | null> {
  try {
    const response = await fetch(`${rig.client.server}/v1/server/reconcile`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(30_000) });
    return response.ok ? ((await response.json()) as Record<string, unknown>) : null; // an older server has no such route
  } catch {
    return null;
  }
}

/** The steady state: nothing to do. Event-loop holding (healthz) and a pass with nothing to place (scale to the same count). */
async function idle(rig: Rig, plans: AppPlan[]) {
  const from = Date.now();
  const healthz = probeLoop(`${rig.client.server}/healthz`, 20);
  await sleep(10_000);
  const healthzMs = percentiles(await healthz.stop());
  const scaleMs: number[] = [];
  const passMs: number[] = [];
  for (const plan of plans.slice(0, 10)) {
    const web = (plan.spec as { entrypoints: { web: { replicas: number } } }).entrypoints.web.replicas;
    const t0 = performance.now();
    await fetch(`${rig.client.server}/v1/apps/${plan.name}/entries/web/scale`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ replicas: web }),
      signal: AbortSignal.timeout(120_000),
    }).then((r) => r.arrayBuffer(), () => {});
    scaleMs.push(performance.now() - t0);
    // The route ran one pass before it answered: the server's own time for it.
    const last = ((await reconcileFigures(rig)) as { last?: { ms: number } } | null)?.last;
    if (last) passMs.push(last.ms);
  }
  const reconcile = await reconcileFigures(rig);
  return { from, to: Date.now(), figures: { healthzMs, scaleToSameMs: percentiles(scaleMs), passAfterScaleMs: passMs.length ? percentiles(passMs) : null, reconcile } };
}

/** LOSE nodes go silent at once: when they are marked down and their instances are all replaced. */
async function lose(rig: Rig, expected: number) {
  await rig.convergence.followNodes();
  const probe = probeLoop(`${rig.client.server}/v1/instances?app=bench-0001`, 200, { headers: { authorization: `Bearer ${TOKEN}` } });
  const from = Date.now();
  const lost = new Set(await rig.fleet.silence({ count: LOSE }));
  const timeoutAt = from + NODE_TIMEOUT_S * 1000;
  const onLost = rig.convergence.summary(lost).onAvoided;
  log(`silenced ${lost.size} nodes running ${onLost} instances`);
  const deadline = timeoutAt + PHASE_MS;
  const downAt = new Map<string, number>();
  const allDown = await until(deadline, () => {
    for (const name of lost) if (!downAt.has(name) && rig.convergence.nodeStates.get(name) === 'down') downAt.set(name, Date.now());
    return downAt.size === lost.size;
  });
  let last = rig.convergence.summary(lost);
  const replaced = allDown && (await until(deadline, () => {
    last = rig.convergence.summary(lost);
    return last.onAvoided === 0 && last.placed >= expected && last.healthy >= expected;
  }));
  log(`lost nodes: ${downAt.size}/${lost.size} down; ${last.healthy}/${expected} healthy on the others${replaced ? ` ${seconds(replaced - timeoutAt)}s after the node timeout` : ' (not reached)'}`);
  const downTimes = [...downAt.values()];
  return {
    from,
    to: Date.now(),
    figures: {
      reached: Boolean(replaced),
      nodes: lost.size,
      instancesOnThem: onLost,
      firstDownAfterSilenceS: downTimes.length ? seconds(Math.min(...downTimes) - from) : null,
      lastDownAfterSilenceS: allDown ? seconds(allDown - from) : null,
      replacedAfterNodeTimeoutS: replaced ? seconds(replaced - timeoutAt) : null,
      replacedAfterLastDownS: replaced && allDown ? seconds(replaced - allDown) : null,
      stillOnLostNodes: last.onAvoided,
      healthyElsewhereAtEnd: last.healthy,
      instancesOfOneAppMs: percentiles(await probe.stop()),
    },
  };
}

function fleetFigures(stats: FleetProcessStats[]) {
  const last = stats.at(-1);
  if (!last) return null;
  return {
    cpuSeconds: last.cpuSeconds,
    rssMiBMax: Math.max(...stats.map((s) => s.rssMiB)),
    eventLoopDelayMaxMs: Math.max(...stats.map((s) => s.eventLoopDelayMaxMs)),
    eventLoopDelayP99MsWorst: Math.max(...stats.map((s) => s.eventLoopDelayP99Ms)),
    heartbeatsSent: last.heartbeatsSent,
    statusesSent: last.statusesSent,
    registryMessages: last.registryMessages,
    reconnects: last.reconnects,
    dropped: last.dropped,
    lastDropReason: last.lastDropReason ?? null,
  };
}

const target = (measured: number | null, limit: number) => ({ target: limit, measured, met: measured !== null && measured <= limit, ...(measured === null || measured > limit ? { missedBy: measured === null ? 'not reached' : Math.round((measured - limit) * 10) / 10 } : {}) });

async function scaleRun(result: Record<string, unknown>): Promise<void> {
  const plans = appPlans(INSTANCES);
  result.size = { nodes: NODES, instances: INSTANCES, apps: plans.length, entries: plans.length * 2, capacityInstances: NODES * 640 };
  const rig = await startRig(NODES);
  try {
    const readyAt = await nodesReady(rig, NODES, Date.now() + PHASE_MS);
    result.connect = { reached: readyAt !== undefined, readyS: readyAt ? seconds(readyAt - startedAt) : null };
    if (!readyAt) return;
    const placed = await place(rig, plans, INSTANCES);
    result.place = { ...placed.figures, server: windowFigures(rig.samples, placed.from, placed.to) };
    if (!placed.figures.reached) return void (result.skipped = 'idle and lost-node phases: placement did not finish within the phase timeout');
    const quiet = await idle(rig, plans);
    result.idle = { ...quiet.figures, server: windowFigures(rig.samples, quiet.from, quiet.to) };
    const lost = await lose(rig, INSTANCES);
    result.lost = { ...lost.figures, server: windowFigures(rig.samples, lost.from, lost.to) };
  } finally {
    result.serverPeakRssMiB = Math.max(0, ...rig.samples.map((s) => s.rssMiB));
    result.fleet = fleetFigures(rig.fleetStats);
    if (rig.server.stderrTail.length > 0) result.serverStderrTail = rig.server.stderrTail.slice(-5);
    const place = result.place as { healthyS: number | null } | undefined;
    const lost = result.lost as { replacedAfterNodeTimeoutS: number | null } | undefined;
    result.targets = {
      atTargetSize: NODES === 5000 && INSTANCES === 150_000,
      placedAndHealthyS: target(place?.healthyS ?? null, 60),
      serverRssMiB: target(result.serverPeakRssMiB as number, 1024),
      lostNodesReplacedAfterTimeoutS: target(lost?.replacedAfterNodeTimeoutS ?? null, 15),
    };
    await rig.close();
  }
}

async function steadyRun(result: Record<string, unknown>, counts: number[]): Promise<void> {
  const plans = appPlans(Math.max(...counts));
  const rig = await startRig(NODES);
  const points: Record<string, unknown>[] = [];
  result.size = { nodes: NODES, instances: counts };
  result.points = points;
  try {
    if (!(await nodesReady(rig, NODES, Date.now() + PHASE_MS))) return void (result.skipped = 'the nodes did not all become ready');
    let applied = 0;
    let total = 0;
    for (const count of counts) {
      const batch: AppPlan[] = [];
      while (total < count && applied < plans.length) {
        batch.push(plans[applied]!);
        total += plans[applied++]!.instances;
      }
      const placed = await place(rig, batch, total);
      const point: Record<string, unknown> = { instances: total, placedS: placed.figures.placedS, healthyS: placed.figures.healthyS, applyMs: placed.figures.applyMs };
      points.push(point);
      if (!placed.figures.reached) return void (point.skipped = 'placement did not finish within the phase timeout');
      const quiet = await idle(rig, batch);
      Object.assign(point, quiet.figures, { server: windowFigures(rig.samples, quiet.from, quiet.to) });
    }
    const ends = [points[0], points.at(-1)] as { healthzMs?: { p99: number }; scaleToSameMs?: { p50: number } }[];
    const ratio = (a?: number, b?: number) => (a && b ? Math.round((b / a) * 10) / 10 : null);
    result.growth = {
      instancesRatio: Math.round((total / (points[0]!.instances as number)) * 10) / 10,
      healthzP99Ratio: ratio(ends[0]?.healthzMs?.p99, ends[1]?.healthzMs?.p99),
      scaleToSameP50Ratio: ratio(ends[0]?.scaleToSameMs?.p50, ends[1]?.scaleToSameMs?.p50),
      flatMeans: 'the idle pass at the largest count takes at most twice its time at the smallest (scale-to-same p50)',
    };
    const r = (result.growth as { scaleToSameP50Ratio: number | null }).scaleToSameP50Ratio;
    result.targets = { steadyPassFlat: { target: 2, measured: r, met: r !== null && r <= 2, ...(r === null || r > 2 ? { missedBy: r === null ? 'not reached' : Math.round((r - 2) * 10) / 10 } : {}) } };
  } finally {
    result.serverPeakRssMiB = Math.max(0, ...rig.samples.map((s) => s.rssMiB));
    result.fleet = fleetFigures(rig.fleetStats);
    if (rig.server.stderrTail.length > 0) result.serverStderrTail = rig.server.stderrTail.slice(-5);
    await rig.close();
  }
}

const result: Record<string, unknown> = {
  bench: STEADY ? 'controlplane-steady' : 'controlplane',
  server: `child process: ${join(SERVER_ROOT, 'src/cli/main.ts')} server, through tsx`,
  settings: { nodeTimeoutS: NODE_TIMEOUT_S, registryTtlS: REGISTRY_TTL_S, heartbeatS: Math.min(5, REGISTRY_TTL_S / 3), startDelayMs: START_DELAY_MS, phaseTimeoutS: PHASE_MS / 1000, applyConcurrency: APPLY_CONCURRENCY },
};
let printed = false;
const finish = () => {
  if (printed) return;
  printed = true;
  result.wallS = seconds(Date.now() - startedAt);
  console.log(JSON.stringify(result));
};
process.on('SIGINT', () => {
  result.error = 'interrupted';
  for (const child of servers) child.kill('SIGKILL');
  finish();
  process.exit(130);
});
try {
  await (STEADY ? steadyRun(result, STEADY) : scaleRun(result));
} catch (err) {
  result.error = err instanceof Error ? err.message : String(err);
} finally {
  finish();
}
process.exit(0);
