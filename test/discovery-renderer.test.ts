// The upstream renderer: deterministic rendering, atomic install with check/rollback/reload,
// coalescing, clear template errors; then a real nginx fed by it while instances are scaled
// up, down and killed under a continuous request loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '../src/model/registry.js';
import { StaticEndpointSource } from '../src/discovery/source.js';
import { UpstreamRenderer, templateData, validateTemplate, type RenderOutcome, type RendererConfig } from '../src/discovery/renderer.js';
import { Backend, TestNginx, freePort, get, loadLoop, skipWithoutNginx, sleep, until } from './helpers/nginx.js';

const EXAMPLE = readFileSync(join(import.meta.dirname, '..', 'examples', 'nginx-upstreams.hbs'), 'utf8');

// (`{{/each}}}` would not parse: `}}}` closes a triple-stache, hence the standalone lines.)
const SIMPLE = `{{#each apps}}
{{#each entries}}
upstream {{upstreamName ../app ../env entry}} {
{{#each (withPort endpoints)}}
  server {{addr this "http"}};
{{else}}
  server 127.0.0.1:1 down;
{{/each}}
}
{{/each}}
{{/each}}
`;

function ep(id: string, port: number, over: Partial<Endpoint> = {}): Endpoint {
  return { id, app: 'shop', env: 'prod', entry: 'web', address: '127.0.0.1', ports: { http: port }, labels: {}, registeredAt: 1000, source: 'agent', node: 'n1', release: 1, ...over };
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-renderer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A renderer whose outcomes are recorded; stopped when the test ends. */
function makeRenderer(t: { after(fn: () => Promise<void>): void }, source: StaticEndpointSource, config: RendererConfig) {
  const outcomes: RenderOutcome[] = [];
  const renderer = new UpstreamRenderer(source, config, (o) => outcomes.push(o));
  t.after(() => renderer.stop());
  /** The first outcome (after `from`) of a render that saw the source's current revision. */
  const settled = (from = 0, rev = source.revision) => until(`a render of revision ${rev}`, () => outcomes.slice(from).find((o) => o.revision >= rev), 10_000, 10);
  return { renderer, outcomes, settled };
}

const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).length : 0);

test('template data is sorted and the same endpoints always render the same text', async (t) => {
  const dir = tempDir(t);
  const eps = [
    ep('b', 8002, { ports: { admin: 9002, http: 8002 } }),
    ep('a', 8001, { ports: { http: 8001, admin: 9001 }, node: undefined, release: undefined, source: 'api' }),
    ep('x', 7000, { app: 'my-app', env: 'staging', entry: 'api', address: 'fd00::7', ports: { metrics: 7001, grpc: 7000 } }),
    ep('ext', 0, { app: 'my-app', env: 'staging', entry: 'db', ports: {}, labels: { zone: 'b', a: '1' } }),
  ];
  const one = new StaticEndpointSource();
  const two = new StaticEndpointSource();
  for (const e of eps) one.set(e);
  for (const e of [...eps].reverse()) two.set({ ...e, ports: Object.fromEntries(Object.entries(e.ports).reverse()) });

  const data = templateData(one.list(), 7);
  assert.deepEqual(templateData(two.list(), 7), data);
  assert.deepEqual(
    data.apps.map((a) => [a.app, a.env, a.entries.map((e) => [e.entry, e.endpoints.map((x) => x.id)])]),
    [
      ['my-app', 'staging', [['api', ['x']], ['db', ['ext']]]],
      ['shop', 'prod', [['web', ['a', 'b']]]],
    ],
  );
  assert.equal(data.apps[1]!.entries[0]!.endpoints[0]!.node, null, 'absent node is null, so strict templates can test it');
  assert.deepEqual(Object.keys(data.endpoints[1]!.labels), ['a', 'zone']);

  const outputs = [join(dir, 'one.conf'), join(dir, 'two.conf')];
  const texts: string[] = [];
  for (const [i, source] of [one, two].entries()) {
    const { renderer } = makeRenderer(t, source, { name: 'simple', template: SIMPLE, output: outputs[i]! });
    assert.equal((await renderer.start()).ok, true);
    texts.push(readFileSync(outputs[i]!, 'utf8'));
  }
  assert.equal(texts[0], texts[1]);
  assert.equal(
    texts[0],
    [
      'upstream gantry_my_app_staging_api {',
      '  server [fd00::7]:7000;', // no "http" port: the first port by name (grpc)
      '}',
      'upstream gantry_my_app_staging_db {',
      '  server 127.0.0.1:1 down;', // an endpoint without ports: placeholder, never an empty upstream
      '}',
      'upstream gantry_shop_prod_web {',
      '  server 127.0.0.1:8001;',
      '  server 127.0.0.1:8002;',
      '}',
      '',
    ].join('\n'),
  );

  // The example template renders the same way, with the placeholder for the port-less entry.
  const example = join(dir, 'example.conf');
  const { renderer } = makeRenderer(t, one, { name: 'nginx', template: EXAMPLE, output: example, vars: { listen: '127.0.0.1:8080', domain: 'apps.test' } });
  assert.equal((await renderer.start()).ok, true);
  const text = readFileSync(example, 'utf8');
  assert.match(text, /upstream gantry_shop_prod_web \{\n {4}server 127\.0\.0\.1:8001 max_fails=1 fail_timeout=2s;\n {4}server 127\.0\.0\.1:8002 max_fails=1 fail_timeout=2s;\n\}/);
  assert.match(text, /upstream gantry_my_app_staging_db \{\n {4}server 127\.0\.0\.1:1 down;/);
  assert.match(text, /server_name web\.shop\.prod\.apps\.test;\n.*\n\s+proxy_pass http:\/\/gantry_shop_prod_web;/);
  assert.match(text, /listen 127\.0\.0\.1:8080 default_server;/);
  assert.doesNotMatch(text, /\{\{|\}\}/);
});

test('values that could break out of a config line never reach the file, whatever their source', async (t) => {
  const dir = tempDir(t);
  const source = new StaticEndpointSource();
  source.set(ep('good', 8001, { labels: { zone: 'a', weight: '1; } server { listen 9999' } }));
  source.set(ep('evil', 8002, { address: '127.0.0.1:1; } server { listen 9998; location / { return 200; }' }));
  source.set(ep('evil2', 8003, { entry: 'web;}', address: '127.0.0.2' }));
  source.set(ep('evil3', 8004, { ports: { 'http;': 8004 }, address: '127.0.0.3' }));
  source.set(ep('evil4', 8005, { ports: { http: 70000 }, address: '127.0.0.4' }));
  const template = `{{#each endpoints}}
server {{addr this "http"}} {{label this "weight" "0"}} {{label this "zone"}};
{{/each}}
`;
  const output = join(dir, 'out.conf');
  const { renderer, outcomes } = makeRenderer(t, source, { name: 'guarded', template, output });
  const outcome = await renderer.start();
  assert.equal(outcome.ok, true);
  assert.equal(readFileSync(output, 'utf8'), 'server 127.0.0.1:8001 0 a;\n');
  const refused = outcomes.flatMap((o) => o.refused ?? []).join('\n');
  for (const id of ['evil', 'evil2', 'evil3', 'evil4']) assert.match(refused, new RegExp(`/${id} left out`), refused);
  assert.match(refused, /good: label "weight" dropped/);
  // Said once, not on every render while nothing changed.
  source.set(ep('other', 8009));
  await renderer.renderNow();
  assert.equal(outcomes.at(-1)!.refused, undefined);
});

test('unchanged output: no write, no check, no reload', async (t) => {
  const dir = tempDir(t);
  const output = join(dir, 'out', 'upstreams.conf');
  mkdirSync(join(dir, 'out'));
  const checks = join(dir, 'checks');
  const reloads = join(dir, 'reloads');
  const source = new StaticEndpointSource();
  source.set(ep('a', 8001));
  const { renderer, outcomes, settled } = makeRenderer(t, source, {
    name: 'counted',
    template: SIMPLE,
    output,
    check: ['sh', '-c', 'echo check >> "$0"', checks],
    reload: ['sh', '-c', 'echo reload >> "$0"', reloads],
  });
  const first = await renderer.start();
  assert.equal(first.changed, true);
  assert.equal(first.ok, true);
  assert.ok(first.reloadedAt);
  assert.deepEqual([lines(checks), lines(reloads)], [1, 1]);
  const before = statSync(output);

  // A re-registration (new registeredAt, same address and ports) renders the same text.
  const from = outcomes.length;
  source.set(ep('a', 8001, { registeredAt: 99_999 }));
  const again = await settled(from);
  assert.deepEqual({ changed: again.changed, ok: again.ok, reloadedAt: again.reloadedAt }, { changed: false, ok: true, reloadedAt: undefined });
  const after = statSync(output);
  assert.equal(after.ino, before.ino, 'the file was not replaced');
  assert.equal(after.mtimeMs, before.mtimeMs, 'the file was not rewritten');
  assert.deepEqual([lines(checks), lines(reloads)], [1, 1], 'neither check nor reload ran');
  assert.deepEqual(readdirSync(join(dir, 'out')), ['upstreams.conf'], 'no temp or backup file is left behind');
});

test('invalid templates fail with a clear error naming template and line, never a crash', async (t) => {
  const dir = tempDir(t);
  assert.throws(() => validateTemplate('bad', 'upstream x {\n{{#each apps}}\n{{/if}}\n'), /^Error: invalid template "bad" \(line 2, column \d+\): each doesn't match if$/);
  assert.throws(() => validateTemplate('bad', 'ok\nupstream {{ foo'), /^Error: invalid template "bad": Parse error on line 2:/);
  assert.throws(() => validateTemplate('bad', 'a\n  {{nope}}\n'), /^Error: template "bad" failed to render \(line 2, column 5\): "nope" is not defined \(strict mode\)$/);
  assert.doesNotThrow(() => validateTemplate('example', EXAMPLE, { listen: '80', domain: 'example.com' }));
  assert.throws(() => validateTemplate('example', EXAMPLE), /template "example" failed to render \(line \d+, column \d+\): "listen" is not defined/);

  const source = new StaticEndpointSource();
  source.set(ep('a', 8001));
  const output = join(dir, 'never.conf');
  // At start: the error throws (a configuration error), nothing is written.
  for (const template of ['{{#each apps}}\n{{/each', 'upstream {{missing}} {}']) {
    const { renderer } = makeRenderer(t, source, { name: 'broken', template, output });
    await assert.rejects(renderer.start(), /template "broken"/);
    assert.equal(existsSync(output), false);
  }
  const { renderer: noVars } = makeRenderer(t, source, { name: 'nginx', template: EXAMPLE, output });
  await assert.rejects(noVars.start(), /template "nginx" failed to render \(line \d+, column \d+\): "listen" is not defined/);

  // At runtime: a reference that only fails with some data keeps the previous file.
  const empty = new StaticEndpointSource();
  const zoned = join(dir, 'zoned.conf');
  const template = '# zones\n{{#each endpoints}}\nserver {{address}}; # {{labels.zone}}\n{{/each}}\n';
  const { renderer, outcomes, settled } = makeRenderer(t, empty, { name: 'zones', template, output: zoned, reload: ['false'] });
  assert.equal((await renderer.start()).changed, true);
  const before = readFileSync(zoned);
  empty.set(ep('a', 8001)); // no "zone" label
  const failed = await settled(outcomes.length);
  assert.equal(failed.ok, false);
  assert.equal(failed.changed, false);
  assert.equal(failed.error, 'template "zones" failed to render (line 3, column 25): "zone" is not defined (strict mode)');
  assert.deepEqual(readFileSync(zoned), before);
  empty.delete(ep('a', 8001));
  empty.set(ep('b', 8002, { labels: { zone: 'eu-1' } }));
  await settled(outcomes.length);
  assert.equal(readFileSync(zoned, 'utf8'), '# zones\nserver 127.0.0.1; # eu-1\n');
});

test('a failing check restores the previous file byte for byte, reports its stderr and skips the reload', async (t) => {
  const dir = tempDir(t);
  const outDir = join(dir, 'conf');
  mkdirSync(outDir);
  const output = join(outDir, 'upstreams.conf');
  const reloads = join(dir, 'reloads');
  const source = new StaticEndpointSource();
  source.set(ep('a', 8001));
  source.set(ep('b', 8002));
  const check = ['sh', '-c', 'if grep -q BAD "$0"; then echo "  nginx: [emerg] BAD address in $0  " >&2; exit 1; fi', output];
  const { renderer } = makeRenderer(t, source, { name: 'checked', template: SIMPLE, output, check, reload: ['sh', '-c', 'echo reload >> "$0"', reloads] });
  assert.equal((await renderer.start()).ok, true);
  const before = readFileSync(output);
  const beforeStat = statSync(output);

  source.set(ep('c', 8003, { address: 'BAD' }));
  const outcome = await renderer.renderNow();
  assert.equal(outcome.ok, false);
  assert.equal(outcome.changed, true);
  assert.equal(outcome.reloadedAt, undefined);
  assert.match(outcome.error!, /^check \(sh -c .*\) failed: exit code 1: nginx: \[emerg\] BAD address in .*upstreams\.conf$/, 'stderr, trimmed');
  assert.deepEqual(readFileSync(output), before, 'previous content, byte for byte');
  assert.equal(statSync(output).ino, beforeStat.ino, 'the very same file (the backup link renamed back)');
  assert.equal(statSync(output).mode, beforeStat.mode);
  assert.equal(lines(reloads), 1, 'no reload after a failed check');
  assert.deepEqual(readdirSync(outDir), ['upstreams.conf'], 'no temp or backup file is left behind');

  // Fixed data renders and reloads again.
  source.delete(ep('c', 8003));
  source.set(ep('c', 8003));
  const fixed = await renderer.renderNow();
  assert.equal(fixed.ok, true);
  assert.match(readFileSync(output, 'utf8'), /server 127\.0\.0\.1:8003;/);
  assert.equal(lines(reloads), 2);

  // No previous file: a failing check removes the new one. A hanging check times out.
  for (const [name, cmd, timeoutMs, why] of [
    ['false', ['false'], 10_000, /exit code 1$/],
    ['hangs', ['sleep', '5'], 200, /timed out after 200ms$/],
    ['missing', ['/nonexistent/nginx', '-t'], 10_000, /command not found: \/nonexistent\/nginx$/],
  ] as const) {
    const fresh = join(outDir, `${name}.conf`);
    const { renderer: r } = makeRenderer(t, source, { name, template: SIMPLE, output: fresh, check: [...cmd], timeoutMs });
    const o = await r.start();
    assert.equal(o.ok, false, name);
    assert.match(o.error!, why);
    assert.equal(existsSync(fresh), false, `${name}: the new file is removed when there was none before`);
  }

  // A failed reload keeps the (checked) new file, reports it, and is retried on the next render.
  const flag = join(dir, 'reload-works-now');
  const reloadOnce = join(outDir, 'reload-once.conf');
  const { renderer: r } = makeRenderer(t, source, {
    name: 'reload',
    template: SIMPLE,
    output: reloadOnce,
    check: ['true'],
    reload: ['sh', '-c', 'test -e "$0" && exit 0; touch "$0"; echo "reload: no such process" >&2; exit 2', flag],
  });
  const broken = await r.start();
  assert.deepEqual({ ok: broken.ok, changed: broken.changed, error: broken.error }, { ok: false, changed: true, error: `reload (sh -c test -e "$0" && exit 0; touch "$0"; echo "reload: no such process" >&2; exit 2 ${flag}) failed: exit code 2: reload: no such process` });
  assert.equal(readFileSync(reloadOnce, 'utf8'), readFileSync(output, 'utf8'), 'the new file stays');
  const retried = await r.renderNow();
  assert.equal(retried.changed, false);
  assert.equal(retried.ok, true);
  assert.ok(retried.reloadedAt, 'the reload owed is run even though the text is unchanged');
});

test('bursts of changes are coalesced, renders never overlap, and the file ends at the last state', async (t) => {
  const dir = tempDir(t);
  const output = join(dir, 'upstreams.conf');
  // The check fails (exit 3) if two renders ever run at the same time.
  const check = (seconds: number, lock: string) => ['sh', '-c', `mkdir "$0" || exit 3; sleep ${seconds}; rmdir "$0"`, lock];
  const source = new StaticEndpointSource();
  const { renderer, outcomes, settled } = makeRenderer(t, source, { name: 'burst', template: SIMPLE, output, check: check(0.05, join(dir, 'burst.lock')), debounceMs: 50 });
  await renderer.start();

  let from = outcomes.length;
  for (let i = 0; i < 100; i++) source.set(ep(`i${String(i).padStart(3, '0')}`, 10_000 + i));
  const last = await settled(from);
  await sleep(150);
  const burst = outcomes.slice(from);
  assert.ok(burst.length <= 3, `100 changes took ${burst.length} renders`);
  assert.equal(burst.length, 1);
  assert.equal(last.revision, source.revision);
  assert.ok(burst.every((o) => o.ok));
  assert.equal((readFileSync(output, 'utf8').match(/server 127\.0\.0\.1:100\d\d;/g) ?? []).length, 100);

  // A slow render: changes during it cause exactly one more render after it.
  const slowLock = join(dir, 'slow.lock');
  const { renderer: slow, outcomes: slowOutcomes, settled: slowSettled } = makeRenderer(t, source, { name: 'slow', template: SIMPLE, output: join(dir, 'slow.conf'), check: check(0.4, slowLock), debounceMs: 20 });
  await slow.start();
  from = slowOutcomes.length;
  source.delete(ep('i000', 0));
  await until('the slow render to be in its check', () => existsSync(slowLock), 5000, 5);
  for (let i = 1; i <= 10; i++) source.delete(ep(`i${String(i).padStart(3, '0')}`, 0));
  await slowSettled(from);
  await sleep(600);
  const slowRenders = slowOutcomes.slice(from);
  assert.equal(slowRenders.length, 2, `expected the render plus exactly one more, got ${slowRenders.length}`);
  assert.ok(slowRenders.every((o) => o.ok), JSON.stringify(slowRenders));
  assert.equal(slowRenders[1]!.revision, source.revision);
  assert.equal(lines(join(dir, 'slow.conf')), 2 + 89);
  await slow.stop();

  // Spread-out changes while renders run: still few renders, never two at once.
  from = outcomes.length;
  const spreadStart = Date.now();
  for (let i = 100; i < 130; i++) {
    source.set(ep(`j${i}`, 10_000 + i));
    await sleep(10);
  }
  const spreadMs = Date.now() - spreadStart;
  await settled(from);
  await sleep(200);
  const spread = outcomes.slice(from);
  // At most one render per debounce window (plus the trailing one), and far fewer than changes.
  assert.ok(spread.length <= Math.min(10, Math.ceil(spreadMs / 50) + 1), `30 changes over ${spreadMs} ms took ${spread.length} renders`);
  assert.ok(spread.every((o) => o.ok), JSON.stringify(spread));
  assert.equal(lines(output), 2 + 119);

  // Concurrent renderNow() calls share the follow-up render.
  from = outcomes.length;
  source.set(ep('k', 9999));
  const all = await Promise.all([renderer.renderNow(), renderer.renderNow(), renderer.renderNow(), renderer.renderNow()]);
  assert.ok(outcomes.length - from <= 2);
  assert.ok(all.every((o) => o.ok && o.revision === source.revision));
});

test('through a real nginx: traffic keeps flowing while instances come, go and crash', { skip: await skipWithoutNginx() }, async (t) => {
  const nginx = new TestNginx();
  const backends: Backend[] = [];
  t.after(async () => {
    await Promise.all(backends.map((b) => b.kill()));
    await nginx.stop();
  });
  const port = await freePort();
  const host = 'web.shop.prod.test';
  const source = new StaticEndpointSource();
  const backend = async (id: string) => {
    const b = await Backend.start(id);
    backends.push(b);
    return b;
  };
  const endpointOf = (b: Backend) => ep(b.id, b.port, { registeredAt: Date.now() });
  const [b1, b2, b3] = await Promise.all([backend('b1'), backend('b2'), backend('b3')]);
  source.set(endpointOf(b1!));
  source.set(endpointOf(b2!));

  await nginx.start();
  const { renderer, outcomes, settled } = makeRenderer(t, source, {
    name: 'nginx',
    template: EXAMPLE,
    output: nginx.include,
    check: nginx.checkCommand,
    reload: nginx.reloadCommand,
    vars: { listen: `127.0.0.1:${port}`, domain: 'test' },
  });
  const first = await renderer.start();
  assert.equal(first.ok, true, first.error);
  assert.ok(first.reloadedAt);

  /** Which backends answer `n` requests (nginx reloads asynchronously: poll for the new set). */
  const seen = async (n = 12) => {
    const ids = new Set<string>();
    for (let i = 0; i < n; i++) {
      const reply = await get(port, host);
      if (reply.status === 200) ids.add(reply.body);
    }
    return [...ids].sort().join(',');
  };
  const reloadedAndServing = async (from: number, expected: string) => {
    const outcome = await settled(from);
    assert.equal(outcome.ok, true, outcome.error);
    assert.ok(outcome.reloadedAt, 'reloaded');
    await until(`nginx to serve from ${expected}`, async () => (await seen()) === expected);
  };

  await t.test('requests through nginx reach the registered backends', async () => {
    await until('nginx to serve from b1,b2', async () => (await seen()) === 'b1,b2');
    assert.equal((await get(port, 'unknown.test')).status, 404, 'unknown host names hit the default server');
  });

  await t.test('scale up: a new instance gets traffic after the reload', async () => {
    const from = outcomes.length;
    source.set(endpointOf(b3!));
    await reloadedAndServing(from, 'b1,b2,b3');
  });

  await t.test('scale down (deregister, then stop): zero failed requests', async () => {
    const load = loadLoop(port, host);
    await sleep(300);
    const from = outcomes.length;
    source.delete(endpointOf(b3!));
    const outcome = await settled(from);
    assert.equal(outcome.ok, true, outcome.error);
    await sleep(300); // as Gantry does: deregister, then stop the instance shortly after
    await b3!.stop();
    await sleep(500);
    const stats = await load.stop();
    assert.deepEqual(stats.failures, []);
    assert.ok(stats.ok > 50, `only ${stats.ok} requests went through`);
    assert.equal(await seen(), 'b1,b2');
  });

  await t.test('an instance killed abruptly, deregistered ~1 s later: zero failed requests', async () => {
    const b4 = await backend('b4');
    let from = outcomes.length;
    source.set(endpointOf(b4));
    await reloadedAndServing(from, 'b1,b2,b4');
    const load = loadLoop(port, host);
    await sleep(300);
    await b4.kill(); // SIGKILL: in-flight connections are reset, new ones refused
    const killedAt = Date.now();
    await sleep(1000); // the agent notices
    from = outcomes.length;
    source.delete(endpointOf(b4));
    assert.equal((await settled(from)).ok, true);
    await sleep(500);
    const stats = await load.stop();
    // proxy_next_upstream error: a refused or reset attempt (a GET, nothing sent to the client
    // yet) is retried on the next server, and max_fails=1 keeps b4 out of rotation meanwhile.
    assert.deepEqual(stats.failures.map((f) => ({ ...f, at: f.at - killedAt })), []);
    assert.ok((stats.byBackend.get('b4') ?? 0) > 0, 'b4 had traffic before it was killed');
    assert.ok(stats.ok > 50);
  });

  await t.test('a render that nginx -t rejects never reaches the running nginx', async () => {
    const load = loadLoop(port, host, 2);
    const before = readFileSync(nginx.include);
    const reloadsBefore = nginx.reloads();

    // Data the renderer lets through but nginx refuses: a host name that does not resolve.
    let from = outcomes.length;
    source.set(ep('broken', 8080, { address: 'no-such-host.invalid' }));
    const rejected = await settled(from);
    assert.equal(rejected.ok, false);
    assert.equal(rejected.changed, true);
    assert.equal(rejected.reloadedAt, undefined);
    assert.match(rejected.error!, /^check \(.*nginx -t .*\) failed: exit code 1: nginx: \[emerg\] host not found in upstream "no-such-host\.invalid:8080"/);
    assert.deepEqual(readFileSync(nginx.include), before, 'the old file content is back');

    // A bad template: an upstream without servers.
    const { renderer: bad } = makeRenderer(t, source, { name: 'bad', template: 'upstream gantry_nothing {\n}\n', output: nginx.include, check: nginx.checkCommand, reload: nginx.reloadCommand });
    const badOutcome = await bad.start();
    await bad.stop();
    assert.equal(badOutcome.ok, false);
    assert.match(badOutcome.error!, /no servers are inside upstream/);
    assert.deepEqual(readFileSync(nginx.include), before);

    await sleep(300);
    assert.equal(nginx.reloads(), reloadsBefore, 'nginx was never told to reload');
    assert.equal(await seen(), 'b1,b2', 'still serving with the previous config');

    // The bad endpoint goes away: the render equals the file again, nothing to do.
    from = outcomes.length;
    source.delete(ep('broken', 0));
    const recovered = await settled(from);
    assert.deepEqual({ ok: recovered.ok, changed: recovered.changed }, { ok: true, changed: false });
    const stats = await load.stop();
    assert.deepEqual(stats.failures, []);
    assert.ok(stats.ok > 20);
  });

  await renderer.stop();
});
