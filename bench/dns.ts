// Queries per second of Gantry's DNS server against dnsmasq (Debian's package) serving the
// same names on the same machine, measured in the same run with dnsperf (Debian's package).
// Prints one JSON line. Run: npx tsx bench/dns.ts
//
// Gantry runs in a child process (bench/dns/server.ts) so the driver's event loop is not in
// the way. dnsmasq gets the same names from an addn-hosts file (A for entry and instance
// names) and srv-host lines (SRV per port name), with `local=/domain/` so it never forwards,
// and its default cache settings (cache-size=150; hosts and srv-host records are served from
// their own tables, not that cache). Runs alternate Gantry and dnsmasq ROUNDS times after a
// short warm-up of each; the reported rates are the medians. A second comparison (aOnly)
// runs A queries only against a dnsmasq with the hosts file alone, its fastest set-up.
// Gantry is measured twice in each: with GANTRY_WORKERS extra worker processes sharing the
// UDP socket (gantryQps, ratio) and as a single process (gantrySingleQps, ratioSingle).
//
// Environment: ENTRIES (1000), PER_ENTRY (3), DURATION seconds per run (10), ROUNDS (2),
// CLIENTS (dnsperf -c, 4), OUTSTANDING (dnsperf -q, 100), SRV_SHARE of SRV queries (0.25),
// GANTRY_WORKERS (1).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import dgram from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import dnsPacket from 'dns-packet';
import { benchEndpoints, entryName } from './dns/names.js';

const entries = Number(process.env.ENTRIES ?? 1000);
const perEntry = Number(process.env.PER_ENTRY ?? 3);
const durationS = Number(process.env.DURATION ?? 10);
const rounds = Number(process.env.ROUNDS ?? 2);
const clients = Number(process.env.CLIENTS ?? 4);
const outstanding = Number(process.env.OUTSTANDING ?? 100);
const srvShare = Number(process.env.SRV_SHARE ?? 0.25);
const gantryWorkers = Number(process.env.GANTRY_WORKERS ?? 1);
const domain = 'gantry.local';

const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-dns-'));
const children = new Set<ChildProcess>();
const cleanup = () => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** A port free for both UDP and TCP on 127.0.0.1. */
async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    server.close();
    const socket = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => resolve(true));
    });
    socket.close();
    if (ok) return port;
  }
}

// --- the names, for dnsmasq and dnsperf ---
const endpoints = benchEndpoints(entries, perEntry);
const hosts: string[] = [];
const srv: string[] = [];
const queries: string[] = [];
const seenEntries = new Set<string>();
for (const ep of endpoints) {
  const name = entryName(ep, domain);
  const instance = `${ep.id}.${name}`;
  hosts.push(`${ep.address} ${name} ${instance}`);
  for (const [portName, port] of Object.entries(ep.ports)) srv.push(`srv-host=_${portName}._tcp.${name},${instance},${port},0,10`);
  if (!seenEntries.has(name)) {
    seenEntries.add(name);
    queries.push(`${name} A`);
  }
}
// SRV queries: a share of the query mix, spread over the entries.
const entryNames = [...seenEntries];
const srvCount = Math.round((queries.length * srvShare) / (1 - srvShare));
const mixed: string[] = [];
for (let i = 0, s = 0; i < queries.length; i++) {
  mixed.push(queries[i]!);
  while (s < srvCount && s * queries.length <= i * srvCount) mixed.push(`_http._tcp.${entryNames[s++ % entryNames.length]} SRV`);
}
const hostsFile = join(dir, 'hosts');
const confFile = join(dir, 'dnsmasq.conf');
const emptyConfFile = join(dir, 'dnsmasq-a.conf');
const queryFile = join(dir, 'queries');
const aQueryFile = join(dir, 'queries-a');
writeFileSync(hostsFile, `${hosts.join('\n')}\n`);
writeFileSync(confFile, `${srv.join('\n')}\nlocal=/${domain}/\n`);
writeFileSync(emptyConfFile, `local=/${domain}/\n`);
writeFileSync(queryFile, `${mixed.join('\n')}\n`);
writeFileSync(aQueryFile, `${queries.join('\n')}\n`);

// --- servers ---
async function startGantry(workers: number): Promise<{ port: number; child: ChildProcess }> {
  const script = fileURLToPath(new URL('./dns/server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ENTRIES: String(entries), PER_ENTRY: String(perEntry), DOMAIN: domain, WORKERS: String(workers) }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  return { port: (JSON.parse(line) as { port: number }).port, child };
}

async function startDnsmasq(conf: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const args = [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--addn-hosts=${hostsFile}`,
    `--conf-file=${conf}`,
    '--pid-file=',
    '--user=root',
    '--log-facility=-',
  ];
  const child = spawn('dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  // Ready when it answers.
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = dgram.createSocket('udp4');
      const timer = setTimeout(() => (socket.close(), resolve(false)), 100);
      socket.on('message', () => (clearTimeout(timer), socket.close(), resolve(true)));
      const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: entryNames[0]! }] });
      socket.send(q, port, '127.0.0.1');
    });
    if (ok) return { port, child };
  }
  throw new Error(`dnsmasq did not answer: ${stderr}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.pid !== undefined) {
    process.kill(child.pid, 'SIGTERM');
    await once(child, 'exit');
  }
  children.delete(child);
}

interface PerfResult {
  qps: number;
  sent: number;
  lost: number;
  noerror: number;
}

function dnsperf(port: number, seconds: number, file: string): Promise<PerfResult> {
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', String(clients), '-q', String(outstanding)];
  return new Promise((resolve, reject) => {
    execFile('dnsperf', args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`dnsperf failed: ${error.message}\n${stderr}`));
      const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
      const result = { qps: num(/Queries per second:\s+([\d.]+)/), sent: num(/Queries sent:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/), noerror: num(/NOERROR (\d+)/) };
      if (!Number.isFinite(result.qps)) return reject(new Error(`cannot parse dnsperf output:\n${stdout}`));
      resolve(result);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const sum = (xs: PerfResult[], k: keyof PerfResult) => xs.reduce((a, x) => a + x[k], 0);

/** Runs every target ROUNDS times on one query file, rotating the order each round; medians. */
async function measure(targets: Record<string, number>, file: string): Promise<Record<string, PerfResult[]>> {
  const names = Object.keys(targets);
  const results: Record<string, PerfResult[]> = {};
  // Warm-up (JIT, lazily encoded answers, dnsmasq's tables): not counted.
  for (const name of names) {
    await dnsperf(targets[name]!, 2, file);
    results[name] = [];
  }
  for (let r = 0; r < rounds; r++) {
    // Rotate who goes first, so drift on the shared machine hits all alike.
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]!;
      results[name]!.push(await dnsperf(targets[name]!, durationS, file));
    }
  }
  return results;
}

function summary(results: Record<string, PerfResult[]>) {
  const qps = (name: string) => Math.round(median(results[name]!.map((x) => x.qps)));
  const gantryQps = qps('gantry');
  const gantrySingleQps = qps('gantrySingle');
  const dnsmasqQps = qps('dnsmasq');
  const runs = Object.fromEntries(Object.entries(results).map(([name, xs]) => [name, xs.map((x) => Math.round(x.qps))]));
  const noerror = Object.fromEntries(Object.entries(results).map(([name, xs]) => [name, Number((sum(xs, 'noerror') / Math.max(1, sum(xs, 'sent'))).toFixed(4))]));
  return {
    gantryQps,
    dnsmasqQps,
    ratio: Number((gantryQps / dnsmasqQps).toFixed(3)),
    lostGantry: sum(results.gantry!, 'lost'),
    lostDnsmasq: sum(results.dnsmasq!, 'lost'),
    gantrySingleQps,
    ratioSingle: Number((gantrySingleQps / dnsmasqQps).toFixed(3)),
    lostGantrySingle: sum(results.gantrySingle!, 'lost'),
    runs,
    noerror,
  };
}

const gantry = await startGantry(gantryWorkers);
const gantrySingle = await startGantry(0);
try {
  // 1. Same names, A and SRV: dnsmasq with the hosts file and every srv-host line.
  const full = await startDnsmasq(confFile);
  const mix = await measure({ gantry: gantry.port, gantrySingle: gantrySingle.port, dnsmasq: full.port }, queryFile).finally(() => stop(full.child));
  // 2. A queries only, dnsmasq with the hosts file alone (its best case: srv-host lines are
  //    scanned linearly on every query, which is what slows it down in 1).
  const hostsOnly = await startDnsmasq(emptyConfFile);
  const aOnly = await measure({ gantry: gantry.port, gantrySingle: gantrySingle.port, dnsmasq: hostsOnly.port }, aQueryFile).finally(() => stop(hostsOnly.child));
  console.log(
    JSON.stringify({
      bench: 'dns',
      ...summary(mix),
      names: seenEntries.size,
      endpoints: endpoints.length,
      srvShare,
      durationS,
      rounds,
      clients,
      outstanding,
      gantryWorkers,
      aOnly: summary(aOnly),
    }),
  );
} finally {
  await stop(gantry.child);
  await stop(gantrySingle.child);
}
