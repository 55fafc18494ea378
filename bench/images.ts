// Images pulled from a registry: what a rollout to an image no node has costs against doing it by
// hand, and whether a pull to several nodes at once costs what a pull to one does. Prints one JSON
// line (progress goes to stderr). Run (as root: it starts Docker Engines and makes bridges):
//   npx tsc -p tsconfig.json && node --import tsx bench/images.ts
//
// A real registry (test/helpers/registry.ts: Docker Distribution as a child process on
// 127.0.0.1, which every Docker Engine treats as insecure, so plain HTTP) holds images made
// locally by `docker import` (one layer: busybox plus SIZE_MIB of random bytes, incompressible).
// Gantry runs from dist/ (test/helpers/cluster.ts with GANTRY_TEST_BUILT=1): a server and agents
// as child processes. Gantry's times are taken through its API (POST /v1/apps, then
// GET /v1/apps/<app>/rollout every POLL_MS until the new release's instances all run), not through
// the CLI, so no Node start is in them.
//
// 1. rollout: ROUNDS rounds, the order of the two alternating from round to round:
//    byHand  with the image absent locally, `docker pull REF`, then REPLICAS `docker run -d` in
//            parallel: from the pull's spawn until every run returned (the container runs);
//    gantry  one agent on this host's engine; an app of REPLICAS instances of image A (small,
//            present) deployed first (not timed), then the apply of image B (same registry, absent
//            locally) with `update: { maxSurge: REPLICAS }` (all replaced at once): from the POST
//            until all REPLICAS instances of the new release run.
//    B is removed locally (`docker rmi -f` of its id) before every timed pull. Also reported: the
//    pull alone by hand, the agent's pull (its `instance.pulled` events, or the pre-pull record),
//    the engine's Created / StartedAt of the containers and Gantry's own moments (ms after the
//    pull's spawn / the POST: where the time went), the registry's blob GETs per round, and
//    whether the rollout record showed a pre-pull (`prepull` anywhere in
//    GET /v1/apps/<app>/rollout). Target: gantry ≤ 1.2 × byHand.
// 2. pullToNodes: NODES more Docker Engines (dockerd with its own socket, data root, exec root,
//    pidfile and containerd, side by side with this host's), each with one Gantry agent labelled
//    for this bench. ROUNDS rounds, order alternating: a fresh image (SIZE_MIB) as 1 replica (one
//    node), and another fresh image as NODES replicas spread one per node: from the POST until all
//    run. The registry's access log counts the blob GETs of each: at most (layers + 1) per node
//    (the layers and the image config), i.e. each layer fetched once per node. Also: when each
//    agent's pull began and how long it took (its events), and, for scale, the same pulls by hand
//    (`docker pull` on one engine, and on all at once): on a small machine the engines' own
//    pulls contend for the CPU (verifying and unpacking the layer). Target: NODES nodes ≤ 1.3 ×
//    one node.
//
// Why not `dockerd --bridge none`: such an engine deletes any interface named docker0 where it
// runs (moby's removeDefaultBridgeInterface), i.e. this host's own engine's bridge, and in a
// network namespace of its own it could not reach the registry on 127.0.0.1. Each extra engine
// gets a bridge of its own instead (`ip link add gbi<id><n> type bridge`, a free 10.237.X.1/24,
// `dockerd --bridge gbi…`), with --iptables=false --ip-masq=false --ip-forward=false: it touches
// no rule and no interface of this host's engine. Everything this bench started (engines by their
// pid, their containerd, bridges, data roots, containers, images, the registry, Gantry) is
// stopped or removed at the end, also on failure or Ctrl-C.
//
// Environment: ROUNDS (5), SIZE_MIB (50), REPLICAS (10), NODES (3), POLL_MS (50).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

const ROOT = join(import.meta.dirname, '..');
// The cluster helper reads this when it is loaded: the processes run from dist/ (built with
// `npx tsc -p tsconfig.json`), as users run Gantry, not the sources through tsx.
const BUILT = existsSync(join(ROOT, 'dist', 'cli', 'main.js'));
process.env.GANTRY_TEST_BUILT ??= BUILT ? '1' : '0';
const { TestCluster, dockerContainers, until } = await import('../test/helpers/cluster.js');
const { startRegistry, makeImage, pushImage, docker } = await import('../test/helpers/registry.js');
type Cluster = InstanceType<typeof TestCluster>;
type Registry = Awaited<ReturnType<typeof startRegistry>>;

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SIZE_MIB = Number(process.env.SIZE_MIB ?? 50);
const REPLICAS = Number(process.env.REPLICAS ?? 10);
const NODES = Number(process.env.NODES ?? 3);
const POLL_MS = Number(process.env.POLL_MS ?? 50);
const id = randomBytes(3).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-images-'));
const startedAt = performance.now();
const log = (line: string) => process.stderr.write(`[bench/images ${((performance.now() - startedAt) / 1000).toFixed(1)}s] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return Math.round(sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2);
}
const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
const round = (values: number[]) => values.map((v) => Math.round(v));

/** Runs a program to its end; rejects with its output when it fails. */
function run(program: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${program} ${args.join(' ')} exited ${code}: ${out.trim()}`))));
  });
}
/** For cleanup: whatever it says, the rest of the cleanup goes on. */
const quietly = (program: string, args: string[]) => run(program, args).catch(() => '');

// ---- Gantry through its API ----

interface RolloutStatus {
  rollout: (Record<string, unknown> & { phase?: string; to?: number }) | null;
  entries: { entry: string; replicas: number; updated: number; healthy: number; old: number }[];
}
interface Event {
  time: number;
  type: string;
  message: string;
  node?: string;
  data?: Record<string, unknown>;
}

function entrySpec(image: string, replicas: number, labels: Record<string, string>): Record<string, unknown> {
  return {
    image,
    replicas,
    // The default resources (0.1 CPU, 64 MiB): 10 old and 10 new side by side just fill 2 cores.
    // Not less CPU: the engine starts the container's processes under its CFS quota, and at
    // 0.01 CPU a start alone takes ~2.3 s here (0.1: ~0.45 s; no quota: ~0.25 s).
    stop: { grace: '1s', drain: '0s' },
    restart: 'never',
    placement: { strategy: 'spread', labels },
    update: { strategy: 'rolling', maxSurge: replicas, maxUnavailable: 0 },
  };
}

/** A key anywhere in a JSON value: where the pre-pull state shows in the rollout record. */
function findKey(value: unknown, key: string): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  if (!Array.isArray(value) && key in value) return (value as Record<string, unknown>)[key];
  for (const child of Object.values(value)) {
    const found = findKey(child, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * POST the app, then poll its rollout status until all `replicas` instances of the release just
 * applied run. The milliseconds from the POST, and every `prepull` the rollout record showed.
 */
async function applyAndWait(cluster: Cluster, app: string, entry: Record<string, unknown>, replicas: number): Promise<{ ms: number; wallStart: number; prepull: unknown[]; phase?: string; unpinned?: unknown }> {
  const wallStart = Date.now();
  const t0 = performance.now();
  const applied = (await cluster.api('POST', '/v1/apps', { app, entrypoints: { main: entry } })) as { unpinned?: unknown };
  const prepull: unknown[] = [];
  let last: RolloutStatus | undefined;
  const deadline = Date.now() + 300_000;
  for (;;) {
    last = (await cluster.api('GET', `/v1/apps/${app}/rollout`)) as RolloutStatus;
    const seen = findKey(last, 'prepull');
    if (seen !== undefined && !prepull.some((p) => JSON.stringify(p) === JSON.stringify(seen))) prepull.push(seen);
    if (last.entries.every((e) => e.healthy >= replicas)) break;
    if (Date.now() > deadline) {
      await cluster.dump(`${app} not running`);
      throw new Error(`${app}: not all ${replicas} instances running after 300 s: ${JSON.stringify(last)}`);
    }
    await sleep(POLL_MS);
  }
  return { ms: performance.now() - t0, wallStart, prepull, phase: last.rollout?.phase, unpinned: applied.unpinned };
}

/** DELETE the app and wait until its instances are gone (the agents stopped and removed them). */
async function removeApp(cluster: Cluster, app: string): Promise<void> {
  await cluster.api('DELETE', `/v1/apps/${app}`).catch(() => undefined);
  await until(`${app}'s instances to be gone`, async () => ((await cluster.api('GET', `/v1/instances?app=${app}`)) as { instances: unknown[] }).instances.length === 0, 120_000, 100);
}

async function appEvents(cluster: Cluster, app: string): Promise<Event[]> {
  return ((await cluster.api('GET', `/v1/events?app=${app}&limit=2000`)) as { events: Event[] }).events;
}

// ---- Docker Engines of our own ----

/** A third octet for 10.237.X.0/24 that no interface of this host uses. */
function freeOctets(count: number): number[] {
  const used = new Set(
    Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .map((i) => i.address.split('.'))
      .filter((parts) => parts[0] === '10' && parts[1] === '237')
      .map((parts) => Number(parts[2])),
  );
  const free = [...Array(254).keys()].map((x) => x + 1).filter((x) => !used.has(x));
  const picked: number[] = [];
  while (picked.length < count) {
    const x = free.splice(Math.floor(Math.random() * free.length), 1)[0];
    if (x === undefined) throw new Error('no free 10.237.X.0/24 for the engines\' bridges');
    picked.push(x);
  }
  return picked;
}

class Engine {
  readonly socket: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly bridge: string;
  readonly logFile: string;
  child?: ChildProcess;
  private bridgeMade = false;

  constructor(readonly n: number, private readonly octet: number) {
    this.socket = `/run/gantry-bench-${id}-docker${n}.sock`;
    this.dataRoot = join(dir, `data${n}`);
    this.execRoot = `/run/gantry-bench-${id}-exec${n}`;
    this.bridge = `gbi${id}${n}`;
    this.logFile = join(dir, `dockerd${n}.log`);
  }

  /** `docker -H <this engine>` */
  docker(args: string[]): Promise<string> {
    return run('docker', ['-H', `unix://${this.socket}`, ...args]);
  }

  async start(): Promise<void> {
    await run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    this.bridgeMade = true;
    await run('ip', ['addr', 'add', `10.237.${this.octet}.1/24`, 'dev', this.bridge]);
    await run('ip', ['link', 'set', this.bridge, 'up']);
    // Our own (empty) config file: nothing from /etc/docker/daemon.json (hosts, data-root) applies.
    const config = join(dir, `daemon${this.n}.json`);
    writeFileSync(config, '{}\n');
    const out = openSync(this.logFile, 'a');
    try {
      this.child = spawn('dockerd', [
        '--host', `unix://${this.socket}`, '--data-root', this.dataRoot, '--exec-root', this.execRoot, '--pidfile', join(dir, `docker${this.n}.pid`),
        '--config-file', config, '--bridge', this.bridge, '--iptables=false', '--ip-masq=false', '--ip-forward=false',
      ], { stdio: ['ignore', out, out] });
    } finally {
      closeSync(out);
    }
    this.child.once('error', () => {});
    const engine = new Docker({ socketPath: this.socket });
    await until(`dockerd ${this.n} to answer`, async () => {
      if (this.child!.exitCode !== null) throw new Error(`dockerd ${this.n} exited ${this.child!.exitCode}: ${readFileSync(this.logFile, 'utf8').slice(-2000)}`);
      return engine.ping().then(() => true);
    }, 60_000, 250);
  }

  /** Its containers removed, the engine stopped (by its pid), its mounts, files and bridge gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const ids = (await this.docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
      if (ids.length > 0) await this.docker(['rm', '-f', ...ids]).catch(() => '');
      // The containerd this dockerd started, should dockerd need a SIGKILL (then it leaves it).
      let containerdPid: number | undefined;
      try {
        containerdPid = Number(readFileSync(join(this.execRoot, 'containerd', 'containerd.pid'), 'utf8').trim()) || undefined;
      } catch {
        // no pid file: nothing to kill after dockerd
      }
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
      if (containerdPid) {
        try {
          // Only if it is still the containerd of this exec root (a pid can be reused).
          if (readFileSync(`/proc/${containerdPid}/cmdline`, 'utf8').includes(this.execRoot)) process.kill(containerdPid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    // dockerd unmounts what it mounted when it stops cleanly; after a SIGKILL it does not.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
      .filter((m) => [this.dataRoot, this.execRoot].some((root) => m === root || m.startsWith(`${root}/`)));
    for (const mount of mounts.sort().reverse()) await quietly('umount', ['-l', mount]);
    rmSync(this.dataRoot, { recursive: true, force: true });
    rmSync(this.execRoot, { recursive: true, force: true });
    rmSync(this.socket, { force: true });
    if (this.bridgeMade) await quietly('ip', ['link', 'del', this.bridge]);
    this.bridgeMade = false;
  }
}

// ---- the run ----

let cluster: Cluster | undefined;
let registry: Registry | undefined;
const engines: Engine[] = [];
const localImages = new Set<string>(); // ids of images this bench made or pulled on this host's engine
const apps = new Set<string>();

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (cluster) {
      for (const app of apps) await cluster.api('DELETE', `/v1/apps/${app}`).catch(() => undefined);
      await cluster.close().catch((err: Error) => log(`closing the cluster: ${err.message}`));
    }
    // What is left on this host's engine: by-hand containers, and those of the bench's apps.
    const rows = (await quietly('docker', ['ps', '-a', '--format', '{{.ID}} {{.Label "gantry-bench"}} {{.Label "gantry.app"}}'])).split('\n');
    const left = rows.filter((row) => row.includes(` ${id} `) || [...apps].some((app) => row.endsWith(` ${app}`))).map((row) => row.split(' ')[0]!);
    if (left.length > 0) await quietly('docker', ['rm', '-f', ...left]);
    for (const image of localImages) await quietly('docker', ['rmi', '-f', image]);
    for (const engine of engines) await engine.stop().catch((err: Error) => log(`stopping dockerd ${engine.n}: ${err.message}`));
    await registry?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Makes a fresh image of SIZE_MIB, pushes it, removes it here: its ref (by tag) and image id. */
async function freshImage(name: string, sizeMiB: number, keepLocal = false): Promise<{ ref: string; imageId: string }> {
  const source = `gantry-bench-images/${name}:${id}`;
  await makeImage(source, { sizeMiB, marker: `${name}-${id}-${randomBytes(8).toString('hex')}` });
  const imageId = (await docker(['image', 'inspect', '--format', '{{.Id}}', source])).stdout.trim();
  localImages.add(imageId);
  const { ref } = await pushImage(registry!, source, `bench-${id}/${name}:1`, { keepLocal });
  if (!keepLocal) await docker(['rmi', '-f', imageId]);
  return { ref, imageId };
}

async function absent(imageId: string, engine?: Engine): Promise<void> {
  const inspect = engine ? engine.docker(['image', 'inspect', imageId]) : docker(['image', 'inspect', imageId]);
  if (await inspect.then(() => true, () => false)) throw new Error(`image ${imageId.slice(0, 19)} is still there: the pull would not be timed`);
}

/**
 * When the engine created and started the containers of `imageId` among `ids`: [first, last] of
 * each, in ms after `since` (wall clock; the engine runs on this host).
 */
async function containerTimes(ids: string[], imageId: string, since: number): Promise<{ createdMs: number[]; startedMs: number[] }> {
  if (ids.length === 0) return { createdMs: [], startedMs: [] };
  // One at a time: a container of the old release may be removed meanwhile.
  const inspected = await Promise.all(ids.map((c) => docker(['inspect', c]).then((r) => JSON.parse(r.stdout) as { Image: string; Created: string; State: { StartedAt: string } }[], () => [])));
  const mine = inspected.flat().filter((c) => c.Image === imageId);
  const span = (times: number[]) => (times.length === 0 ? [] : [Math.min(...times) - since, Math.max(...times) - since]);
  return { createdMs: span(mine.map((c) => Date.parse(c.Created))), startedMs: span(mine.map((c) => Date.parse(c.State.StartedAt))) };
}

/** Registry blob GETs after the access log caught up with the pulls that just ended. */
async function blobsNow(): Promise<number> {
  await sleep(300);
  return registry!.blobFetches();
}

try {
  if (process.getuid?.() !== 0) throw new Error('run as root: the bench starts Docker Engines and makes bridges');
  await docker(['info', '--format', '{{.ServerVersion}}']);
  if (!BUILT) log('no dist/: Gantry runs from the sources through tsx (build first: npx tsc -p tsconfig.json)');
  registry = await startRegistry();
  log(`registry on ${registry.host}; Gantry from ${process.env.GANTRY_TEST_BUILT === '1' ? 'dist/' : 'sources'}`);
  cluster = new TestCluster();
  await cluster.startServer();

  // ---- 1. rollout of REPLICAS to an image no node has, against by hand ----
  const node = `main-${id}`;
  await cluster.startAgent({ name: node, portRange: '32200-32299', extra: ['--label', `bench=main-${id}`] });
  const mainLabels = { bench: `main-${id}` };
  const a = await freshImage('a', 1, true);
  const b = await freshImage('b', SIZE_MIB);
  log(`image A ${a.ref} (present), image B ${b.ref} (${SIZE_MIB} MiB, absent)`);

  const byHand: number[] = [];
  const byHandPull: number[] = [];
  const gantry: number[] = [];
  const gantryPull: number[] = [];
  const gantryMoments: Record<string, number>[] = [];
  const byHandCreated: number[][] = [];
  const byHandStarted: number[][] = [];
  const gantryCreated: number[][] = [];
  const gantryStarted: number[][] = [];
  const blobs = { byHand: [] as number[], gantry: [] as number[] };
  const prepullSeen: unknown[] = [];
  const phases: (string | undefined)[] = [];
  const unpinned: unknown[] = [];

  const handRound = async (r: number) => {
    await absent(b.imageId);
    const before = await registry!.blobFetches();
    const names = Array.from({ length: REPLICAS }, (_, i) => `gantry-bench-${id}-r${r}-${i}`);
    const wallStart = Date.now();
    const t0 = performance.now();
    await docker(['pull', b.ref]);
    byHandPull.push(performance.now() - t0);
    await Promise.all(names.map((name) => docker(['run', '-d', '--name', name, '--label', `gantry-bench=${id}`, b.ref])));
    byHand.push(performance.now() - t0);
    blobs.byHand.push((await blobsNow()) - before);
    const times = await containerTimes(names, b.imageId, wallStart);
    byHandCreated.push(times.createdMs);
    byHandStarted.push(times.startedMs);
    await docker(['rm', '-f', ...names]);
    await docker(['rmi', '-f', b.imageId]);
  };

  const gantryRound = async (r: number) => {
    const app = `img-${id}-${r}`;
    apps.add(app);
    await applyAndWait(cluster!, app, entrySpec(a.ref, REPLICAS, mainLabels), REPLICAS); // not timed
    await absent(b.imageId);
    const before = await registry!.blobFetches();
    const result = await applyAndWait(cluster!, app, entrySpec(b.ref, REPLICAS, mainLabels), REPLICAS);
    gantry.push(result.ms);
    blobs.gantry.push((await blobsNow()) - before);
    prepullSeen.push(...result.prepull);
    phases.push(result.phase);
    if (result.unpinned) unpinned.push(result.unpinned);
    const events = (await appEvents(cluster!, app)).filter((e) => e.time >= result.wallStart);
    const pulled = events.filter((e) => e.type === 'instance.pulled').map((e) => Number(e.data?.ms ?? 0));
    // The agent's pull: from its instance.pulled events, or else from the pre-pull's record.
    const prepulledMs = result.prepull.flatMap((p) => Object.values((p as { nodes?: Record<string, { ms?: number }> }).nodes ?? {}).map((n) => n.ms ?? 0));
    if (pulled.length > 0 || prepulledMs.length > 0) gantryPull.push(Math.max(...pulled, ...prepulledMs));
    const at = (type: string) => events.find((e) => e.type === type)?.time;
    // The pre-pull's own moments: asked (the record's startedAt), the agent's pull done (its
    // node.image_pulled event), concluded (the record's concludedAt).
    const record = result.prepull.at(-1) as { startedAt?: number; concludedAt?: number } | undefined;
    const nodeEvents = ((await cluster!.api('GET', `/v1/events?node=${node}&limit=200`)) as { events: Event[] }).events;
    const agentPulled = nodeEvents.find((e) => e.type === 'node.image_pulled' && e.time >= result.wallStart)?.time;
    const moments = { prepullAsked: record?.startedAt, pulling: at('instance.pulling'), agentPulled, prepullConcluded: record?.concludedAt, prepulled: at('rollout.prepulled'), placed: at('instance.placed') };
    gantryMoments.push(Object.fromEntries(Object.entries(moments).filter(([, t]) => t !== undefined).map(([k, t]) => [k, t! - result.wallStart])));
    const ids = (await run('docker', ['ps', '-aq', '--filter', `label=gantry.app=${app}`, '--filter', `ancestor=${b.imageId}`])).split('\n').filter(Boolean);
    const times = await containerTimes(ids, b.imageId, result.wallStart);
    gantryCreated.push(times.createdMs);
    gantryStarted.push(times.startedMs);
    // Where the time went, for the reader of stderr: each kind of event, first and last (ms after the POST).
    const kinds = new Map<string, number[]>();
    for (const e of events) kinds.set(e.type, [...(kinds.get(e.type) ?? []), e.time - result.wallStart]);
    log(`  gantry round ${r} (ms after the POST, first-last ×count): ${[...kinds].map(([k, t]) => `${k} ${t[0]}-${t.at(-1)} ×${t.length}`).join('; ')}`);
    await removeApp(cluster!, app);
    apps.delete(app);
    if ((await dockerContainers(app)).length > 0) throw new Error(`${app}'s containers are still there after its instances were removed`);
    await docker(['rmi', '-f', b.imageId]);
  };

  for (let r = 1; r <= ROUNDS; r++) {
    if (r % 2 === 1) {
      await handRound(r);
      await gantryRound(r);
    } else {
      await gantryRound(r);
      await handRound(r);
    }
    log(`rollout round ${r}/${ROUNDS}: byHand ${Math.round(byHand.at(-1)!)}ms (pull ${Math.round(byHandPull.at(-1)!)}ms, ${blobs.byHand.at(-1)} blob GETs), gantry ${Math.round(gantry.at(-1)!)}ms (agent's pull ${gantryPull.at(-1) ?? '?'}ms, ${blobs.gantry.at(-1)} blob GETs), pre-pull seen: ${prepullSeen.length > 0}`);
  }
  await cluster.stopAgent(node);

  // ---- 2. one image to NODES nodes at once, each with its own Docker Engine ----
  const octets = freeOctets(NODES);
  for (let n = 1; n <= NODES; n++) engines.push(new Engine(n, octets[n - 1]!));
  for (const engine of engines) {
    await engine.start();
    log(`dockerd ${engine.n} up (pid ${engine.child!.pid}, ${engine.socket}, bridge ${engine.bridge})`);
  }
  const pullLabels = { bench: `pull-${id}` };
  for (const engine of engines) {
    await cluster.startAgent({ name: `pull-${id}-${engine.n}`, portRange: `${32300 + engine.n * 50}-${32349 + engine.n * 50}`, dockerSocket: engine.socket, extra: ['--label', `bench=pull-${id}`] });
  }
  const one: number[] = [];
  const many: number[] = [];
  const oneBlobs: number[] = [];
  const manyBlobs: number[] = [];
  const spreadOver: number[] = [];
  const onePulls: { beganMs: Record<string, number>; tookMs: Record<string, number> }[] = [];
  const manyPulls: typeof onePulls = [];
  const dockerOne: number[] = [];
  const dockerMany: number[] = [];
  let layers = 0;

  const pullRound = async (r: number, replicas: number) => {
    const name = `p${replicas}r${r}`;
    const image = await freshImage(name, SIZE_MIB);
    for (const engine of engines) await absent(image.imageId, engine);
    const app = `pull-${id}-${name}`;
    apps.add(app);
    const before = await registry!.blobFetches();
    const result = await applyAndWait(cluster!, app, entrySpec(image.ref, replicas, pullLabels), replicas);
    const fetched = (await blobsNow()) - before;
    (replicas === 1 ? one : many).push(result.ms);
    (replicas === 1 ? oneBlobs : manyBlobs).push(fetched);
    const { instances } = (await cluster!.api('GET', `/v1/instances?app=${app}`)) as { instances: { node: string }[] };
    if (replicas > 1) spreadOver.push(new Set(instances.map((i) => i.node)).size);
    // Per node: when its pull began (ms after the POST) and how long it took, as the agent said.
    const events = (await appEvents(cluster!, app)).filter((e) => e.time >= result.wallStart);
    const perNode = (type: string, pick: (e: Event) => number) => Object.fromEntries(events.filter((e) => e.type === type && e.node).map((e) => [e.node!.replace(`pull-${id}-`, 'n'), Math.round(pick(e))]));
    (replicas === 1 ? onePulls : manyPulls).push({ beganMs: perNode('instance.pulling', (e) => e.time - result.wallStart), tookMs: perNode('instance.pulled', (e) => Number(e.data?.ms ?? 0)) });
    const holder = engines.find((e) => instances.some((i) => i.node === `pull-${id}-${e.n}`))!;
    layers = JSON.parse(await holder.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', image.imageId])).length;
    await removeApp(cluster!, app);
    apps.delete(app);
    // The same pull by hand, for scale: the image gone from the engines again, then `docker pull`
    // on one engine, or on all at once (spawn to the last exit). Only the pull: no container.
    for (const engine of engines) await engine.docker(['rmi', '-f', image.imageId]).catch(() => '');
    const targets = replicas === 1 ? [engines[r % engines.length]!] : engines;
    for (const engine of targets) await absent(image.imageId, engine);
    const t0 = performance.now();
    await Promise.all(targets.map((engine) => engine.docker(['pull', image.ref])));
    (replicas === 1 ? dockerOne : dockerMany).push(performance.now() - t0);
  };

  for (let r = 1; r <= ROUNDS; r++) {
    if (r % 2 === 1) {
      await pullRound(r, 1);
      await pullRound(r, NODES);
    } else {
      await pullRound(r, NODES);
      await pullRound(r, 1);
    }
    log(`pull round ${r}/${ROUNDS}: one node ${Math.round(one.at(-1)!)}ms (${oneBlobs.at(-1)} blob GETs), ${NODES} nodes ${Math.round(many.at(-1)!)}ms (${manyBlobs.at(-1)} blob GETs, on ${spreadOver.at(-1)} nodes), ${layers} layer(s); docker pull by hand: one ${Math.round(dockerOne.at(-1)!)}ms, ${NODES} at once ${Math.round(dockerMany.at(-1)!)}ms`);
  }

  const m1 = { byHand: median(byHand), gantry: median(gantry) };
  const m2 = { one: median(one), many: median(many) };
  console.log(JSON.stringify({
    bench: 'images',
    rounds: ROUNDS,
    imageMiB: SIZE_MIB,
    gantryFrom: process.env.GANTRY_TEST_BUILT === '1' ? 'dist' : 'sources',
    rollout: {
      replicas: REPLICAS,
      byHandMs: m1.byHand,
      gantryMs: m1.gantry,
      ratio: ratio(m1.gantry, m1.byHand),
      target: 1.2,
      samples: { byHandMs: round(byHand), gantryMs: round(gantry) },
      byHandPullMs: round(byHandPull),
      gantryAgentPullMs: round(gantryPull),
      // Where the time went, ms after the pull's spawn / the POST: the engine's Created and
      // StartedAt of the containers ([first, last] per round), and Gantry's own moments (the
      // pre-pull asked, the agent's pull done, the pre-pull concluded, the first instance.pulling,
      // rollout.prepulled and instance.placed events).
      byHandContainersMs: { created: byHandCreated, started: byHandStarted },
      gantryContainersMs: { created: gantryCreated, started: gantryStarted },
      gantryMomentsMs: gantryMoments,
      blobFetches: blobs,
      prepull: prepullSeen.length > 0,
      ...(prepullSeen.length > 0 ? { prepullRecord: prepullSeen.at(-1) } : {}),
      rolloutPhase: phases,
      ...(unpinned.length > 0 ? { unpinned } : {}),
    },
    pullToNodes: {
      nodes: NODES,
      oneNodeMs: m2.one,
      threeNodesMs: m2.many,
      ratio: ratio(m2.many, m2.one),
      target: 1.3,
      samples: { oneNodeMs: round(one), threeNodesMs: round(many) },
      spreadOverNodes: spreadOver,
      layers,
      blobFetches: Math.max(...manyBlobs),
      expectedAtMost: (layers + 1) * NODES,
      blobFetchesPerRound: { oneNode: oneBlobs, threeNodes: manyBlobs },
      oneNodeExpectedAtMost: layers + 1,
      agentPulls: { oneNode: onePulls, threeNodes: manyPulls },
      // The same pulls by hand (docker pull on one engine, on all at once): what this machine does.
      dockerPull: { oneNodeMs: median(dockerOne), threeNodesMs: median(dockerMany), ratio: ratio(median(dockerMany), median(dockerOne)), samples: { oneNodeMs: round(dockerOne), threeNodesMs: round(dockerMany) } },
    },
    totalS: Math.round((performance.now() - startedAt) / 1000),
  }));
} finally {
  await cleanup();
}
