// The cost of one registry change to discovery, against the size of the registry: the work
// must follow what changed, not how much is registered (the server's one event loop also
// serves the API and heartbeats). Prints one JSON line (progress goes to stderr).
// Run: npx tsx bench/discovery-change.ts
//
// Everything runs in this process on a StaticEndpointSource holding SIZES endpoints (apps of 10
// entries of 3 endpoints, so an app's size stays the same as the registry grows: a fleet grows
// by apps, not by fattening one). Each size runs three phases, one component at a time so their
// event-loop time is not mixed up:
//   dns       a DnsServer with WORKERS worker processes. Per change: `dnsMs`, from the change to
//             the main process' answer for the changed instance name reflecting it (responder
//             .answer(), so index upkeep and encoding, no network), and `busyMs`, the main
//             thread's active time (performance.eventLoopUtilization) from the change until
//             SETTLE_MS later: index upkeep plus what is sent to the workers.
//   single    the upstream renderer writing one file (examples/nginx-upstreams.hbs, debounce 0,
//             no check or reload: Gantry's own work only). `renderMs`: change → outcome;
//             `busyMs` as above; `fileBytes`: the size of what is written per change.
//   perApp    the same with `output: .../gantry-{app}-{env}.conf` (one file per app/env; skipped
//             when MODES leaves it out, e.g. on code that has no such mode).
// A change alternates between withdrawing a random endpoint and registering it again at a new
// address. WARMUP changes per phase are not counted.
//
// Environment: SIZES (1000,10000,50000), CHANGES per phase (60), WARMUP (5), WORKERS (1),
// SETTLE_MS (30), MODES (dns,single,perApp).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import dnsPacket from 'dns-packet';
import type { Endpoint } from '../src/model/registry.js';
import { StaticEndpointSource } from '../src/discovery/source.js';
import { DnsServer } from '../src/discovery/dns.js';
import { UpstreamRenderer, type RenderOutcome } from '../src/discovery/renderer.js';

const SIZES = (process.env.SIZES ?? '1000,10000,50000').split(',').map(Number);
const CHANGES = Number(process.env.CHANGES ?? 60);
const WARMUP = Number(process.env.WARMUP ?? 5);
const WORKERS = Number(process.env.WORKERS ?? 1);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 30);
const MODES = new Set((process.env.MODES ?? 'dns,single,perApp').split(','));
const DOMAIN = 'gantry.local';
const EXAMPLE = readFileSync(join(import.meta.dirname, '..', 'examples', 'nginx-upstreams.hbs'), 'utf8');
// Per file, the catch-all default server would be declared once per app: leave it out.
const PER_APP = EXAMPLE.replace(/\nserver \{\n {4}listen \{\{vars\.listen\}\} default_server;\n {4}return 404;\n\}\n/, '\n');
const VARS = { listen: '127.0.0.1:8080', domain: 'apps.test' };

const log = (line: string) => process.stderr.write(`[bench/discovery-change] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function endpoint(i: number, generation = 0): Endpoint {
  const n = i + generation * 7919;
  return {
    id: `i${i}`,
    app: `app${Math.floor(i / 30)}`,
    env: 'prod',
    entry: `e${Math.floor(i / 3) % 10}`,
    node: `node${i % 50}`,
    address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    ports: { http: 8000 + (i % 3), metrics: 9100 },
    labels: {},
    registeredAt: 0,
    source: 'agent',
  };
}

function registry(size: number): StaticEndpointSource {
  const source = new StaticEndpointSource();
  for (let i = 0; i < size; i++) source.set(endpoint(i));
  return source;
}

function figures(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1)!) };
}

/** The changes of one phase: withdraw a random endpoint, then register it again elsewhere. */
function* changes(size: number): Generator<{ apply: (s: StaticEndpointSource) => void; name: string; present: string | undefined }> {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let k = 0; ; k++) {
    const i = Math.floor(random() * size);
    const e = endpoint(i, k + 1);
    const name = `${e.id}.${e.entry}.${e.app}.${e.env}.${DOMAIN}`;
    yield { apply: (s) => s.delete(e), name, present: undefined };
    yield { apply: (s) => s.set(e), name, present: e.address };
  }
}

function aAnswer(server: DnsServer, name: string): string | undefined | null {
  const reply = server.responder.answer(dnsPacket.encode({ type: 'query', id: 1, flags: 0, questions: [{ type: 'A', name }] }));
  if (!reply) return null;
  const a = dnsPacket.decode(reply).answers?.find((r) => r.type === 'A');
  return a && a.type === 'A' ? String(a.data) : undefined;
}

async function dnsPhase(size: number): Promise<Record<string, unknown>> {
  const source = registry(size);
  const server = new DnsServer(source, { port: 0, domain: DOMAIN, workers: WORKERS });
  const startedAt = performance.now();
  await server.start();
  const startMs = performance.now() - startedAt;
  const dns: number[] = [];
  const busy: number[] = [];
  const sync: number[] = [];
  const gen = changes(size);
  for (let k = 0; k < WARMUP + CHANGES; k++) {
    const change = gen.next().value!;
    await sleep(5);
    const elu = performance.eventLoopUtilization();
    const t0 = performance.now();
    change.apply(source);
    const t1 = performance.now();
    const got = aAnswer(server, change.name);
    const t2 = performance.now();
    if (got !== change.present) throw new Error(`DNS answered ${got} for ${change.name}, expected ${change.present}`);
    await sleep(SETTLE_MS);
    if (k < WARMUP) continue;
    sync.push(t1 - t0);
    dns.push(t2 - t0);
    busy.push(performance.eventLoopUtilization(elu).active);
  }
  await server.stop();
  return { startMs: Math.round(startMs), changeMs: figures(sync), dnsMs: figures(dns), busyMs: figures(busy) };
}

async function renderPhase(size: number, output: string): Promise<Record<string, unknown>> {
  const source = registry(size);
  let waiting: ((o: RenderOutcome) => void) | undefined;
  let failed: string | undefined;
  const renderer = new UpstreamRenderer(source, { name: 'bench', template: output.includes('{app}') ? PER_APP : EXAMPLE, output, vars: VARS, debounceMs: 0 }, (o) => {
    if (!o.ok) failed = o.error;
    if (waiting && o.revision >= source.revision) waiting(o);
  });
  const startedAt = performance.now();
  const first = await renderer.start();
  if (!first.ok) throw new Error(`first render failed: ${first.error}`);
  const startMs = performance.now() - startedAt;
  const render: number[] = [];
  const busy: number[] = [];
  const gen = changes(size);
  for (let k = 0; k < WARMUP + CHANGES; k++) {
    const change = gen.next().value!;
    await sleep(5);
    const elu = performance.eventLoopUtilization();
    const t0 = performance.now();
    const done = new Promise<RenderOutcome>((resolve) => (waiting = resolve));
    change.apply(source);
    const outcome = await done;
    const t1 = performance.now();
    if (failed || !outcome.changed) throw new Error(`render: ${failed ?? 'nothing changed'}`);
    await sleep(SETTLE_MS);
    if (k < WARMUP) continue;
    render.push(t1 - t0);
    busy.push(performance.eventLoopUtilization(elu).active);
  }
  await renderer.stop();
  const single = output.includes('{app}') ? output.replace('{app}', 'app0').replace('{env}', 'prod') : output;
  return { startMs: Math.round(startMs), renderMs: figures(render), busyMs: figures(busy), fileBytes: statSync(single).size };
}

const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-change-'));
try {
  const results: Record<string, unknown>[] = [];
  for (const size of SIZES) {
    const row: Record<string, unknown> = { endpoints: size };
    if (MODES.has('dns')) row.dns = await dnsPhase(size);
    log(`${size}: dns ${JSON.stringify(row.dns)}`);
    if (MODES.has('single')) row.single = await renderPhase(size, join(dir, `single-${size}.conf`));
    log(`${size}: single ${JSON.stringify(row.single)}`);
    if (MODES.has('perApp')) {
      mkdirSync(join(dir, `apps-${size}`));
      row.perApp = await renderPhase(size, join(dir, `apps-${size}`, 'gantry-{app}-{env}.conf'));
    }
    log(`${size}: perApp ${JSON.stringify(row.perApp)}`);
    results.push(row);
  }
  process.stdout.write(`${JSON.stringify({ bench: 'discovery-change', changes: CHANGES, workers: WORKERS, settleMs: SETTLE_MS, sizes: results })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
