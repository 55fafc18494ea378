// Scheduler throughput on a large fleet. Prints one JSON line. Run: npx tsx bench/scheduler.ts
// (NODES=10000 INSTANCES=150000 SEED=1 to change the defaults).
//
// Fleet: NODES nodes of 24 cores / 64 GiB, shareBase 100, 1 core + 2 GiB reserved, zones a-d,
// ssd/hdd disks, a few gpu nodes, pools default (unowned), batch (team data) and edge, a few
// cordoned / draining nodes and ten dedicated to one app.
// Work: deploy requests of 10-100 replicas of one entry each (about 2,700 requests for 150,000
// instances), shapes 0.1-4 CPU (30% bound), 64 MiB-8 GiB, 45% with host ports, some label
// selectors, strategies spread / balance / binpack / fill, one daemon set (each) on the gpu
// nodes and two requests that cannot fit (to exercise the reasons).
// Each request is planned on a draft, then committed to the snapshot the way the server will
// (plan, store, snapshot.commit(placements)).
// Timing: each request is timed as a whole (plan + commit); its time / its instances is the
// per-placement time of each of its instances, so p50/p99 are over instances.
import { buildSnapshot, plan, type PlacementRequest, type SchedNode, type Strategy } from '../src/scheduler/index.js';

const NODES = Number(process.env.NODES ?? 10_000);
const INSTANCES = Number(process.env.INSTANCES ?? 150_000);
const SEED = Number(process.env.SEED ?? 1);
const GiB = 2 ** 30;
const MiB = 2 ** 20;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
function weighted<T>(pairs: Array<[T, number]>): T {
  const total = pairs.reduce((s, [, w]) => s + w, 0);
  let x = rnd() * total;
  for (const [v, w] of pairs) if ((x -= w) < 0) return v;
  return pairs[pairs.length - 1]![0];
}

const nodes: SchedNode[] = [];
for (let k = 0; k < NODES; k++) {
  const labels: Record<string, string> = { zone: 'abcd'[k % 4]!, disk: rnd() < 0.7 ? 'ssd' : 'hdd' };
  if (rnd() < 0.03) labels.gpu = 'yes';
  const node: SchedNode = {
    name: `node-${String(k).padStart(5, '0')}`,
    state: weighted([['ready', 990], ['cordoned', 5], ['draining', 5]] as Array<[SchedNode['state'], number]>),
    labels,
    pool: weighted([['default', 85], ['batch', 12], ['edge', 3]]),
    cores: 24,
    memoryBytes: 64 * GiB,
    reserved: { cores: 1, memoryBytes: 2 * GiB },
    portRange: [30000, 32767],
    shareBase: 100,
  };
  if (k % 1000 === 7) node.dedicatedTo = 'promo';
  nodes.push(node);
}
const snap = buildSnapshot({ nodes, pools: [{ name: 'default' }, { name: 'batch', team: 'data' }, { name: 'edge' }] });

const requests: PlacementRequest[] = [];
let planned = 0;
let seq = 0;
const gpuNodes = nodes.filter((n) => n.labels.gpu && n.pool === 'default').length;
requests.push({ app: 'gpu-agent', entry: 'daemon', cpu: 0.1, memoryBytes: 64 * MiB, selector: [{ key: 'gpu', op: 'exists' }], strategy: { kind: 'each', perNode: 1 } });
planned += gpuNodes;
requests.push({ app: 'huge', entry: 'main', cpu: 30, memoryBytes: GiB, count: 2 });
requests.push({ app: 'lost', entry: 'main', cpu: 1, memoryBytes: GiB, count: 3, selector: { zone: 'z' } });
planned += 5;
while (planned < INSTANCES) {
  const count = Math.min(int(10, 100), INSTANCES - planned);
  const cpu = weighted([[0.1, 15], [0.25, 15], [0.5, 20], [1, 20], [1.5, 10], [2, 10], [3.2, 5], [4, 5]]);
  const memoryBytes = Math.min(8 * GiB, Math.max(64 * MiB, Math.round(cpu * weighted([[0.5, 30], [1, 40], [2, 20], [4, 10]]) * GiB / MiB) * MiB));
  const pool = weighted([['default', 85], ['batch', 12], ['edge', 3]]);
  const strategy: Strategy = weighted<Strategy>([
    [{ kind: 'spread' }, 50],
    [{ kind: 'balance' }, 20],
    [{ kind: 'binpack' }, 15],
    [{ kind: 'fill', perNode: int(2, 5) }, 15],
  ]);
  const req: PlacementRequest = {
    app: `app-${seq % 900}`,
    entry: `e${seq++}`,
    team: pool === 'batch' ? 'data' : 'web',
    pool,
    cpu,
    cpuBind: rnd() < 0.3,
    memoryBytes,
    count,
    strategy,
  };
  const ports = rnd();
  if (ports < 0.4) req.ports = [{ name: 'http', protocol: 'tcp', container: 8080 }];
  else if (ports < 0.45) req.ports = [{ name: 'http', protocol: 'tcp' }, { name: 'metrics', protocol: 'udp' }];
  const sel = rnd();
  if (sel < 0.1) req.selector = { zone: 'abcd'[int(0, 3)]! };
  else if (sel < 0.15) req.selector = { disk: 'ssd' };
  else if (sel < 0.17) req.selector = [{ key: 'zone', op: 'in', values: ['a', 'b'] }];
  else if (sel < 0.19) req.selector = [{ key: 'zone', op: 'notin', values: ['d'] }, { key: 'gpu', op: 'notexists' }];
  requests.push(req);
  planned += count;
}

const perPlacementMicros: Float64Array = new Float64Array(planned + NODES);
let timed = 0;
let placed = 0;
let unplaced = 0;
const reasons = new Set<string>();
const start = performance.now();
for (const req of requests) {
  const t0 = performance.now();
  const result = plan(snap, req, { seed: SEED });
  snap.commit(result.placements);
  const micros = (performance.now() - t0) * 1000;
  const n = Math.max(1, result.wanted);
  for (let k = 0; k < n && timed < perPlacementMicros.length; k++) perPlacementMicros[timed++] = micros / n;
  placed += result.placements.length;
  for (const u of result.unplaced) {
    unplaced += u.count;
    if (reasons.size < 3) reasons.add(u.reason);
  }
}
const seconds = (performance.now() - start) / 1000;

const times = perPlacementMicros.subarray(0, timed).sort();
const pct = (p: number) => times[Math.min(timed - 1, Math.floor(p * timed))]!;
let fragmentCores = 0;
let allocCores = 0;
let sum = 0;
let sumSq = 0;
let counted = 0;
for (const node of nodes) {
  const d = snap.describe(node.name);
  fragmentCores += d.fragmentCores;
  allocCores += d.cpuAllocatable;
  if (node.state !== 'ready') continue;
  const f = d.cpuUsed / d.cpuAllocatable;
  sum += f;
  sumSq += f * f;
  counted++;
}
const mean = sum / counted;
console.log(
  JSON.stringify({
    bench: 'scheduler',
    nodes: NODES,
    requests: requests.length,
    instances: planned,
    placed,
    unplaced,
    seconds: Number(seconds.toFixed(2)),
    placementsPerSecond: Math.round(placed / seconds),
    p50MicrosPerPlacement: Number(pct(0.5).toFixed(1)),
    p99MicrosPerPlacement: Number(pct(0.99).toFixed(1)),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    fragmentCoreShare: Number((fragmentCores / allocCores).toFixed(4)),
    cpuAllocMean: Number(mean.toFixed(4)),
    cpuAllocStdDev: Number(Math.sqrt(Math.max(0, sumSq / counted - mean * mean)).toFixed(4)),
    unplacedReasons: [...reasons],
  }),
);
