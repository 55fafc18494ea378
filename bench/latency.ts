// The latency a user feels: `gantry apply` of a pre-pulled image until it returns (converged),
// against raw Docker doing the same work, and the CLI's own start. Prints one JSON line
// (progress goes to stderr). Run: npm run build && npx tsx bench/latency.ts
//
// In one run, on this machine, ROUNDS times each (medians; the rounds interleave the
// measurements so that a noisy stretch of the machine hits them all alike):
//   docker1     `docker run -d -p 127.0.0.1:<port>:8080` of gantry/busybox:test running httpd
//               (scripts/test-image.sh builds it), from the spawn until the port answers HTTP 200
//               (polled every 5 ms): what `apply` of one replica does at best (a container, and a
//               first successful probe);
//   docker10    ten of those in parallel, until all ten answer;
//   apply1      `gantry apply -f spec` of one replica of the same container with an HTTP health
//               check (interval 1s), from the spawn until the command exits (it waits until the
//               app converged: running and healthy); then `gantry rm` (not timed);
//   apply10     the same with ten replicas;
//   ps          `gantry ps` on a cluster with nothing deployed, spawn to exit, PS_RUNS times; and
//   node        `node -e 0` alike, the floor of any Node CLI here.
// The cluster is a real `gantry up` (server, agent and store in one process) started by the bench
// on a free port with a temporary data dir. The CLI is run as users run it, `node bin/gantry`
// (the build in dist/ when there is one); GANTRY_BIN=<path to another bin/gantry> measures another
// tree (e.g. an older commit) with the same bench.
//
// Targets: apply1 ≤ 1.5 × docker1, apply10 ≤ 1.1 × docker10, ps ≤ 150 ms.
// Environment: ROUNDS (5), PS_RUNS (15), GANTRY_BIN (bin/gantry), GANTRY_TEST_IMAGE.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '..');
const BIN = resolve(process.env.GANTRY_BIN ?? join(ROOT, 'bin', 'gantry'));
const IMAGE = process.env.GANTRY_TEST_IMAGE ?? 'gantry/busybox:test';
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PS_RUNS = Number(process.env.PS_RUNS ?? 15);
const id = randomBytes(3).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-latency-'));
const token = `gty_bench_${randomBytes(12).toString('hex')}`;
const run = promisify(execFile);
const log = (line: string) => process.stderr.write(`[bench/latency] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer().once('error', fail).listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** Runs a command to its exit; the milliseconds from spawn to exit, or throws with its output. */
function timed(command: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<number> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.stdin.end(input);
    child.once('error', fail);
    child.once('exit', (code) => {
      const ms = performance.now() - started;
      if (code === 0) done(ms);
      else fail(new Error(`${command} ${args.join(' ')} exited ${code}: ${output.trim()}`));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.once('error', () => done(false)).once('timeout', () => req.destroy());
    req.end();
  });
}

async function untilAnswers(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await answers(port))) {
    if (Date.now() > deadline) throw new Error(`port ${port} never answered`);
    await sleep(5);
  }
}

/** `count` raw `docker run`s in parallel, until every container answers HTTP. */
async function rawDocker(count: number): Promise<number> {
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const started = performance.now();
  await Promise.all(ports.map(async (port) => {
    await timed('docker', ['run', '-d', '--label', `gantry-bench=${id}`, '-p', `127.0.0.1:${port}:8080`, IMAGE, 'httpd', '-f', '-p', '8080', '-h', '/www']);
    await untilAnswers(port);
  }));
  const ms = performance.now() - started;
  const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=gantry-bench=${id}`]);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await run('docker', ['rm', '-f', ...ids]);
  return ms;
}

const cli = (args: string[], input?: string) => timed(process.execPath, [BIN, ...args], { GANTRY_SERVER: url, GANTRY_TOKEN: token, GANTRY_CONFIG: join(dir, 'cli.json') }, input);

function spec(app: string, replicas: number): string {
  return [
    `app: ${app}`, 'entrypoints:', '  web:', `    image: ${IMAGE}`, '    command: [httpd, -f, -p, "8080", -h, /www]', `    replicas: ${replicas}`,
    '    ports: [{ name: http, container: 8080 }]', '    health: { http: { port: http, path: / }, interval: 1s }', '    stop: { grace: 1s }', '',
  ].join('\n');
}

let applies = 0;
/** `gantry apply` of `replicas` until it returns (converged), then `gantry rm` (not timed). */
async function gantryApply(replicas: number): Promise<number> {
  const app = `lat-${id}-${++applies}`;
  const ms = await cli(['apply', '-f', '-', '--timeout', '2m'], spec(app, replicas));
  await cli(['rm', app, '--timeout', '2m']);
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return Math.round(sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2);
}

const port = await freePort();
const url = `http://127.0.0.1:${port}`;
let up: ChildProcess | undefined;
try {
  await run('docker', ['image', 'inspect', IMAGE]).catch(() => {
    throw new Error(`no image ${IMAGE}: build it with bash scripts/test-image.sh`);
  });
  log(`gantry up on ${url} (${BIN}, ${existsSync(join(BIN, '..', '..', 'dist', 'cli', 'main.js')) ? 'built' : 'sources through tsx'})`);
  up = spawn(process.execPath, [BIN, 'up', '--data-dir', join(dir, 'data'), '--port', String(port), '--node-name', `bench-${id}`, '--port-range', '32100-32199'], {
    env: { ...process.env, GANTRY_BOOTSTRAP_TOKEN: token, GANTRY_CONFIG: join(dir, 'cli.json') },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const ready = Date.now() + 60_000;
  while (!(await nodeReady())) {
    if (Date.now() > ready) throw new Error('gantry up did not get ready');
    await sleep(200);
  }
  await gantryApply(1); // the first start of anything pays for caches: not counted

  const ps: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < PS_RUNS; i++) {
    node.push(await timed(process.execPath, ['-e', '0']));
    ps.push(await cli(['ps']));
  }
  const figures = { docker1: [] as number[], apply1: [] as number[], docker10: [] as number[], apply10: [] as number[] };
  for (let round = 1; round <= ROUNDS; round++) {
    figures.docker1.push(await rawDocker(1));
    figures.apply1.push(await gantryApply(1));
    figures.docker10.push(await rawDocker(10));
    figures.apply10.push(await gantryApply(10));
    log(`round ${round}/${ROUNDS}: ${Object.entries(figures).map(([k, v]) => `${k} ${Math.round(v.at(-1)!)}ms`).join(', ')}`);
  }
  const m = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, median(v)])) as Record<keyof typeof figures, number>;
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  console.log(JSON.stringify({
    bench: 'latency',
    rounds: ROUNDS,
    dockerRun1Ms: m.docker1,
    gantryApply1Ms: m.apply1,
    apply1VsDocker: ratio(m.apply1, m.docker1),
    apply1Target: 1.5,
    dockerRun10Ms: m.docker10,
    gantryApply10Ms: m.apply10,
    apply10VsDocker: ratio(m.apply10, m.docker10),
    apply10Target: 1.1,
    psMs: median(ps),
    psTargetMs: 150,
    psVsTarget: ratio(median(ps), 150),
    nodeStartMs: median(node),
    spreadMs: Object.fromEntries(Object.entries({ ...figures, ps }).map(([k, v]) => [k, [Math.round(Math.min(...v)), Math.round(Math.max(...v))]])),
  }));
} finally {
  up?.kill('SIGTERM');
  await new Promise((done) => (up && up.exitCode === null ? up.once('exit', done) : done(undefined)));
  // What a failed run left: the raw containers, and those of the bench's apps.
  const { stdout } = await run('docker', ['ps', '-a', '--format', '{{.ID}} {{.Label "gantry-bench"}} {{.Label "gantry.app"}}']).catch(() => ({ stdout: '' }));
  const left = stdout.split('\n').filter((line) => line.includes(` ${id} `) || line.includes(` lat-${id}-`)).map((line) => line.split(' ')[0]!);
  if (left.length > 0) await run('docker', ['rm', '-f', ...left]);
  rmSync(dir, { recursive: true, force: true });
}

async function nodeReady(): Promise<boolean> {
  const res = await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
  if (!res?.ok) return false;
  const { nodes } = (await res.json()) as { nodes: { name: string; state: string }[] };
  return nodes.some((n) => n.name === `bench-${id}` && n.state === 'ready');
}
