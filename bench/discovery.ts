// Discovery latency: time from an instance's health changing to (a) Gantry's DNS answer changing
// and (b) the rendered nginx upstream being reloaded, over a few hundred changes. Prints one JSON
// line (progress goes to stderr). Run: npx tsx bench/discovery.ts
//
// Set-up, all real processes on this machine (so one clock): a private nginx (test/helpers/nginx),
// a `gantry server` with `--renderer` (debounce 10ms, check `nginx -t`, reload `nginx -s reload`)
// and `--dns-port`, one `gantry agent` on the process runtime, and an app of INSTANCES process
// instances of `web` (a node HTTP server on $PORT) with an exec health check on a marker file:
// `$MARKS/down-$GANTRY_INSTANCE` present → the check fails. retries 1, restart policy `always`
// (the default): on a failed check the agent withdraws the endpoint at once, stops the instance
// and starts it again; once the marker is gone the next check passes and it registers again. So
// every toggle of a marker is one change: "down" (registered → withdrawn) or "up" (→ registered).
//
// Pacing: the agent runs health checks from its tick (1 s, src/agent/main.ts; the spec's 50ms
// interval cannot make them more frequent), so all checks of a tick start together. To keep
// changes apart, the check first sleeps `$MARKS/delay-$GANTRY_INSTANCE` seconds (when that file
// exists): each round sets up 2 downs and 2 ups at 0, SLOT, 2·SLOT and 3·SLOT ms into the next
// tick, waits until all four are seen in DNS and nginx, then sets up the next round. (The check's
// own duration is before the clock starts, so the sleep is not measured.)
//
// Clock start of a change: the `time` of its `instance.unhealthy` / `instance.healthy` event: the
// agent's Date.now() when the check result came in, just before it sends the withdrawal /
// registration (read from the /v1/events SSE stream; the agent flushes events on its next tick,
// so they arrive late, but carry that time).
// Ends (all Date.now() on this machine):
//   dns      first UDP answer from Gantry's DNS for the instance's own name
//            `{id}.web.{app}.default.gantry.test` that reflects the change (A record present /
//            NXDOMAIN), polled every DNS_POLL_MS (2) per pending change from when its marker was
//            toggled; the time is when that answer was received (an upper bound, ≤ poll + RTT late).
//   nginx    the `time` of the first `discovery.rendered` event whose revision ≥ the store
//            revision of the change (taken from the /v1/watch?prefix=registry stream). The server
//            records it right after `nginx -t` passed and `nginx -s reload` exited, i.e. once the
//            master has been sent SIGHUP.
//   serving  first request through nginx (a fresh connection, Host `{id}.web.{app}.default.test`)
//            answered by the new config: the bench's template is examples/nginx-upstreams.hbs plus
//            one `server` per endpoint answering 200 for that name (404 from the default server
//            once it is gone). Polled every HTTP_POLL_MS (3) from when DNS showed the change
//            (nginx cannot be earlier: the renderer waits its debounce first). This is when a
//            light client first gets the new config. nginx's master starts the new workers within
//            a few ms of SIGHUP but only tells the old ones to stop accepting 100 ms later
//            (`ngx_msleep(100)` in ngx_master_process_cycle); meanwhile idle old workers win
//            almost every accept(), so `serving` ≈ `nginx` + ~100 ms whatever Gantry does.
// Breakdown figures: `registry` (agent event → the change seen on /v1/watch: agent → WebSocket →
// server queue → store txn → watch → SSE), `render` (the renderer's own durationMs: template,
// atomic install with fsyncs, nginx -t, nginx -s reload, from the event message), and
// `renderWait` (watch → render start: debounce + a render already running), `reloadLag`
// (`discovery.rendered` → `serving`: nginx's own reload).
//
// Environment: CHANGES (300, a multiple of 4), INSTANCES (8, even, ≥ 4), SLOT_MS (200),
// DNS_POLL_MS (2), HTTP_POLL_MS (3).
import dgram from 'node:dgram';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { TestCluster, freePort, until } from '../test/helpers/cluster.js';
import { TestNginx, get, nginxMissing } from '../test/helpers/nginx.js';

const CHANGES = Math.max(4, Math.round(Number(process.env.CHANGES ?? 300) / 4) * 4);
const INSTANCES = Math.max(4, Number(process.env.INSTANCES ?? 8) & ~1);
const SLOT_MS = Number(process.env.SLOT_MS ?? 200);
const DNS_POLL_MS = Number(process.env.DNS_POLL_MS ?? 2);
const HTTP_POLL_MS = Number(process.env.HTTP_POLL_MS ?? 3);
const HEALTH_INTERVAL_MS = 50;
const DEBOUNCE_MS = 10;
const AGENT_TICK_MS = 1000; // src/agent/main.ts default; `gantry agent` has no flag for it
const OBSERVE_TIMEOUT_MS = 5000;
const TEMPLATE = join(import.meta.dirname, '..', 'examples', 'nginx-upstreams.hbs');
const DOMAIN = 'gantry.test';

const log = (line: string) => process.stderr.write(`[bench/discovery] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Probes

/** One UDP socket, many outstanding A queries; answers matched by id. */
class DnsProbe {
  private readonly socket = dgram.createSocket('udp4');
  private readonly pending = new Map<number, (present: boolean | undefined) => void>();
  private nextId = 1;

  constructor(private readonly port: number) {
    this.socket.on('message', (message) => {
      const id = message.readUInt16BE(0);
      const done = this.pending.get(id);
      if (!done) return;
      this.pending.delete(id);
      try {
        const answer = dnsPacket.decode(message);
        done((answer.answers ?? []).some((a) => a.type === 'A'));
      } catch {
        done(undefined);
      }
    });
  }

  /** Whether `name` has an A record now; undefined when no (readable) answer came within 250 ms. */
  present(name: string): Promise<boolean | undefined> {
    const id = this.nextId;
    this.nextId = (this.nextId % 65535) + 1;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, 250);
      this.pending.set(id, (present) => {
        clearTimeout(timer);
        resolve(present);
      });
      this.socket.send(dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ type: 'A', name }] }), this.port, '127.0.0.1');
    });
  }

  close(): void {
    this.socket.close();
  }
}

/** Polls `probe` every `everyMs` until it returns `want`; the Date.now() of that answer, or undefined at the deadline. */
async function pollUntil(probe: () => Promise<boolean | undefined>, want: boolean, everyMs: number, deadline: number): Promise<number | undefined> {
  while (Date.now() < deadline) {
    const started = Date.now();
    const got = await probe().catch(() => undefined);
    if (got === want) return Date.now();
    await sleep(Math.max(0, everyMs - (Date.now() - started)));
  }
  return undefined;
}

/** A Server-Sent Events reader over fetch; calls onMessage(event, data, receivedAt) per message. */
function followSse(url: string, token: string, onMessage: (event: string, data: string, receivedAt: number) => void): { opened: Promise<void>; close(): void } {
  const abort = new AbortController();
  let opened!: () => void;
  const openedP = new Promise<void>((r) => (opened = r));
  void (async () => {
    try {
      const response = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal });
      if (!response.ok || !response.body) throw new Error(`${url}: HTTP ${response.status}`);
      opened();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const receivedAt = Date.now();
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length > 0) onMessage(event, data.join('\n'), receivedAt);
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) log(`SSE ${url} failed: ${(err as Error).message}`);
    }
  })();
  return { opened: openedP, close: () => abort.abort() };
}

// ---------------------------------------------------------------------------------------------
// Figures

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function figures(values: (number | undefined)[]): { p50: number | null; p99: number | null; max: number | null; n: number } {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? null, n: sorted.length };
}

// ---------------------------------------------------------------------------------------------
// The run

interface GEvent {
  seq?: number;
  time: number;
  type: string;
  instance?: string;
  message: string;
  data?: Record<string, unknown>;
}

interface RegistryChange {
  revision: number;
  receivedAt: number;
  type: 'put' | 'delete';
  key: string;
}

interface Change {
  round: number;
  instance: string;
  dir: 'down' | 'up';
  delayMs: number;
  markerAt: number;
  dnsAt?: number;
  servedAt?: number;
}

const cluster = new TestCluster();
const nginx = new TestNginx();
const app = `bd-${cluster.id}`;
const nodeName = `bn-${cluster.id}`;
const marks = join(cluster.dir, 'marks');
let dns: DnsProbe | undefined;
const streams: { close(): void }[] = [];
let applied = false;
let cleaned: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const s of streams) s.close();
    dns?.close();
    if (applied) {
      const removed = await cluster.cli(['rm', app, '--timeout', '30s']).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
      if (removed.code !== 0) log(`gantry rm ${app} failed: ${removed.stdout}${removed.stderr}`);
    }
    await cluster.close().catch((err: Error) => log(`stopping gantry: ${err.message}`));
    await nginx.stop().catch((err: Error) => log(`stopping nginx: ${err.message}`));
  })();
  return cleaned;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const missing = await nginxMissing();
  if (missing) throw new Error(missing);
  const started = Date.now();
  mkdirSync(marks, { recursive: true });

  // nginx and the renderer: the example template plus one vhost per endpoint (the serving probe).
  const listen = await freePort();
  const dnsPort = await freePort();
  await nginx.start();
  const template = join(cluster.dir, 'nginx-bench.hbs');
  writeFileSync(
    template,
    `${readFileSync(TEMPLATE, 'utf8')}
# bench/discovery: one vhost per endpoint (names longer than the default hash bucket allows)
server_names_hash_bucket_size 128;
{{#each endpoints}}

server {
    listen {{@root.vars.listen}};
    server_name {{id}}.{{entry}}.{{app}}.{{env}}.{{@root.vars.domain}};
    location / {
        return 200 "{{id}}";
    }
}
{{/each}}
`,
  );
  const rendererFile = join(cluster.dir, 'nginx-renderer.yaml');
  writeFileSync(rendererFile, JSON.stringify({ name: 'nginx', template, output: nginx.include, check: nginx.checkCommand, reload: nginx.reloadCommand, vars: { listen: `127.0.0.1:${listen}`, domain: 'test' }, debounce: `${DEBOUNCE_MS}ms` }));
  await cluster.startServer({ nodeTimeout: 30, registryTtl: 15, extra: ['--renderer', rendererFile, '--dns-port', String(dnsPort), '--dns-domain', DOMAIN] });
  await cluster.startAgent({ name: nodeName, portRange: '31300-31499', dockerSocket: join(cluster.dir, 'none.sock') });

  // Event and registry streams, from now on.
  const events: GEvent[] = [];
  const registry: RegistryChange[] = [];
  const eventStream = followSse(`${cluster.url}/v1/events?follow=1`, cluster.token, (_e, data) => events.push(JSON.parse(data) as GEvent));
  const watchStream = followSse(`${cluster.url}/v1/watch?prefix=registry`, cluster.token, (event, data, receivedAt) => {
    if (event !== 'change') return;
    const change = JSON.parse(data) as { revision: number; changes: { type: 'put' | 'delete'; key: string }[] };
    for (const c of change.changes) registry.push({ revision: change.revision, receivedAt, type: c.type, key: c.key });
  });
  streams.push(eventStream, watchStream);
  await Promise.all([eventStream.opened, watchStream.opened]);

  const check = `if [ -f ${marks}/delay-$GANTRY_INSTANCE ]; then read d < ${marks}/delay-$GANTRY_INSTANCE; sleep "$d"; fi; test ! -f ${marks}/down-$GANTRY_INSTANCE`;
  const spec = `app: ${app}
entrypoints:
  web:
    command: [node, -e, "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE)).listen(process.env.PORT)"]
    replicas: ${INSTANCES}
    ports: [{ name: http }]
    health: { exec: { command: ${JSON.stringify(check)} }, interval: ${HEALTH_INTERVAL_MS}ms, timeout: 3s, retries: 1 }
    stop: { grace: 2s }
`;
  applied = true;
  const result = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: spec });
  if (result.code !== 0) throw new Error(`gantry apply failed: ${result.stdout}${result.stderr}`);
  const ids = await until(
    `${INSTANCES} endpoints`,
    async () => {
      const { endpoints } = (await cluster.api('GET', `/v1/registry?app=${app}`)) as { endpoints: { id: string }[] };
      return endpoints.length === INSTANCES ? endpoints.map((e) => e.id).sort() : undefined;
    },
    60_000,
    100,
  );
  dns = new DnsProbe(dnsPort);
  const probe = dns;
  const dnsName = (id: string) => `${id}.web.${app}.default.${DOMAIN}`;
  const httpName = (id: string) => `${id}.web.${app}.default.test`;
  const inNginx = async (id: string) => {
    const reply = await get(listen, httpName(id), '/', 1000);
    return reply.status === 200 ? true : reply.status === 404 ? false : undefined;
  };
  for (const id of ids) {
    await until(`${id} in DNS and nginx`, async () => (await probe.present(dnsName(id))) === true && (await inNginx(id)) === true, 20_000, 50).catch(async (err: Error) => {
      const failures = events.filter((e) => e.type === 'discovery.render_failed').map((e) => e.message);
      throw new Error(`${err.message} (DNS: ${await probe.present(dnsName(id))}, nginx: ${await inNginx(id).catch((e: Error) => e.message)}; render failures: ${failures.slice(-2).join(' | ') || 'none'})`);
    });
  }
  log(`set up in ${Date.now() - started} ms: ${INSTANCES} instances on node ${nodeName}; ${CHANGES} changes follow`);

  // Rounds: 2 instances go down (slots 0, 1), the 2 that went down in the round before come up (slots 2, 3).
  const changes: Change[] = [];
  const rounds = CHANGES / 4;
  const pair = (r: number) => [ids[(2 * r) % ids.length]!, ids[(2 * r + 1) % ids.length]!];
  const loopStarted = Date.now();
  for (let r = 0; r <= rounds; r++) {
    const planned: Omit<Change, 'markerAt'>[] = [];
    if (r < rounds) pair(r).forEach((instance, i) => planned.push({ round: r, instance, dir: 'down', delayMs: i * SLOT_MS }));
    if (r > 0) pair(r - 1).forEach((instance, i) => planned.push({ round: r, instance, dir: 'up', delayMs: (2 + i) * SLOT_MS }));
    const involved = new Set(planned.map((c) => c.instance));
    for (const id of ids) if (!involved.has(id)) rmSync(join(marks, `delay-${id}`), { force: true });
    const round: Change[] = [];
    for (const c of planned) {
      const delayFile = join(marks, `delay-${c.instance}`);
      if (c.delayMs > 0) writeFileSync(delayFile, `${(c.delayMs / 1000).toFixed(3)}\n`);
      else rmSync(delayFile, { force: true });
      const markerAt = Date.now();
      if (c.dir === 'down') writeFileSync(join(marks, `down-${c.instance}`), '');
      else rmSync(join(marks, `down-${c.instance}`), { force: true });
      round.push({ ...c, markerAt });
    }
    await Promise.all(
      round.map(async (c) => {
        const want = c.dir === 'up';
        c.dnsAt = await pollUntil(() => probe.present(dnsName(c.instance)), want, DNS_POLL_MS, c.markerAt + OBSERVE_TIMEOUT_MS);
        if (c.dnsAt === undefined) return log(`round ${r}: ${c.instance} ${c.dir} not seen in DNS within ${OBSERVE_TIMEOUT_MS} ms`);
        c.servedAt = await pollUntil(() => inNginx(c.instance), want, HTTP_POLL_MS, c.dnsAt + OBSERVE_TIMEOUT_MS);
        if (c.servedAt === undefined) log(`round ${r}: ${c.instance} ${c.dir} not seen through nginx within ${OBSERVE_TIMEOUT_MS} ms`);
      }),
    );
    changes.push(...round);
    if (r % 10 === 0) log(`round ${r}/${rounds} (${Math.round((Date.now() - loopStarted) / 1000)} s)`);
  }
  // The agent sends its events on its next tick: wait for the last ones.
  const lastMarker = Math.max(...changes.map((c) => c.markerAt));
  await until('the last health events', () => changes.slice(-2).every((c) => events.some((e) => e.instance === c.instance && e.time >= c.markerAt && e.type === (c.dir === 'down' ? 'instance.unhealthy' : 'instance.healthy'))), 10_000, 100).catch(() => log('some health events never arrived'));
  await sleep(200);
  const loopSeconds = (Date.now() - loopStarted) / 1000;

  // Match: health event (start) → registry revision → first render covering it.
  const rendered = events.filter((e) => e.type === 'discovery.rendered').map((e) => ({ time: e.time, revision: Number(e.data?.revision), durationMs: Number(/reloaded in (\d+)ms/.exec(e.message)?.[1] ?? NaN) }));
  const renderFailures = events.filter((e) => e.type === 'discovery.render_failed').length;
  const rows = changes.map((c) => {
    const type = c.dir === 'down' ? 'instance.unhealthy' : 'instance.healthy';
    const start = events.find((e) => e.type === type && e.instance === c.instance && e.time >= c.markerAt);
    if (!start) return { c };
    const reg = registry.find((g) => g.key.endsWith(`/${c.instance}`) && g.type === (c.dir === 'down' ? 'delete' : 'put') && g.receivedAt >= start.time);
    const render = reg ? rendered.find((x) => x.revision >= reg.revision) : undefined;
    return {
      c,
      t0: start.time,
      dns: c.dnsAt === undefined ? undefined : c.dnsAt - start.time,
      serving: c.servedAt === undefined ? undefined : c.servedAt - start.time,
      registry: reg ? reg.receivedAt - start.time : undefined,
      nginx: render ? render.time - start.time : undefined,
      renderWait: render && reg ? render.time - render.durationMs - reg.receivedAt : undefined,
      reloadLag: render && c.servedAt !== undefined ? c.servedAt - render.time : undefined,
      render: render?.durationMs,
    };
  });
  const ok = rows.filter((r) => r.t0 !== undefined);
  const by = (pick: (r: (typeof rows)[number]) => number | undefined, dir?: 'down' | 'up') => figures(ok.filter((r) => !dir || r.c.dir === dir).map(pick));
  const dnsF = by((r) => r.dns);
  const nginxF = by((r) => r.nginx);
  const servingF = by((r) => r.serving);
  const direction = (dir: 'down' | 'up') => {
    const d = by((r) => r.dns, dir);
    const n = by((r) => r.nginx, dir);
    const s = by((r) => r.serving, dir);
    return { dnsP50Ms: d.p50, dnsP99Ms: d.p99, nginxP50Ms: n.p50, nginxP99Ms: n.p99, servingP50Ms: s.p50, servingP99Ms: s.p99 };
  };
  const regF = by((r) => r.registry);
  const renderF = figures(rendered.map((x) => x.durationMs));
  const waitF = by((r) => r.renderWait);
  const lagF = by((r) => r.reloadLag);
  const unmatched = rows.length - ok.length;
  const slowest = [...ok].sort((a, b) => (b.nginx ?? 0) - (a.nginx ?? 0)).slice(0, 5).map((r) => ({ dir: r.c.dir, nginx: r.nginx, dns: r.dns, registry: r.registry, renderWait: r.renderWait, render: r.render, reloadLag: r.reloadLag }));
  log(`slowest nginx: ${JSON.stringify(slowest)}`);
  log(`${changes.length} changes in ${loopSeconds.toFixed(1)} s; ${rendered.length} renders, ${renderFailures} failed; last marker ${Date.now() - lastMarker} ms ago`);

  const line = {
    bench: 'discovery',
    changes: changes.length,
    measured: ok.length,
    unmatched,
    dnsP50Ms: dnsF.p50,
    dnsP99Ms: dnsF.p99,
    dnsMaxMs: dnsF.max,
    nginxP50Ms: nginxF.p50,
    nginxP99Ms: nginxF.p99,
    nginxMaxMs: nginxF.max,
    servingP50Ms: servingF.p50,
    servingP99Ms: servingF.p99,
    servingMaxMs: servingF.max,
    down: direction('down'),
    up: direction('up'),
    registryP50Ms: regF.p50,
    registryP99Ms: regF.p99,
    renderWaitP50Ms: waitF.p50,
    renderWaitP99Ms: waitF.p99,
    reloadLagP50Ms: lagF.p50,
    reloadLagP99Ms: lagF.p99,
    renderP50Ms: renderF.p50,
    renderP99Ms: renderF.p99,
    renders: rendered.length,
    renderFailures,
    targetP99Ms: 100,
    instances: INSTANCES,
    healthIntervalMs: HEALTH_INTERVAL_MS,
    agentTickMs: AGENT_TICK_MS,
    debounceMs: DEBOUNCE_MS,
    slotMs: SLOT_MS,
    dnsPollMs: DNS_POLL_MS,
    httpPollMs: HTTP_POLL_MS,
    loopSeconds: Math.round(loopSeconds),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  log(`last output of gantry:\n${cluster.output.slice(-40).join('\n')}`);
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);
