// Hostile and absurd specs: each is refused with a SpecError naming where, and refused quickly,
// from YAML text and from an already-decoded JSON body alike. Timings are only bounded
// generously (the machine is shared); the measured times are printed as diagnostics.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LIMITS, MAX_SPEC_ALIASES, MAX_SPEC_BYTES, MAX_SPEC_DEPTH, MAX_SPEC_NODES, MAX_SPEC_TOKENS, parseAppSpec, parseAppSpecText, privilegedHostPorts, SpecError } from '../src/model/spec.js';
import { parseDuration, parseSize } from '../src/model/units.js';
import { parseAlertRules } from '../src/server/alerts/rules-file.js';

function refusal(parse: () => unknown): string[] {
  try {
    parse();
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('expected the spec to be refused');
}
const fromText = (text: string) => refusal(() => parseAppSpecText(text));
const fromObject = (input: unknown) => refusal(() => parseAppSpec(input));

/** Refuses `text` and checks it took less than 2 s (it takes milliseconds; the old parser took 16 s). */
function refusedQuickly(t: TestContext, label: string, text: string): string[] {
  const start = performance.now();
  const problems = fromText(text);
  const ms = performance.now() - start;
  t.diagnostic(`${label}: refused in ${ms.toFixed(1)} ms`);
  assert.ok(ms < 2000, `${label} took ${ms.toFixed(0)} ms`);
  return problems;
}

/** A spec with one process entrypoint `w` and these extra lines (indented four spaces) in it. */
const withEntry = (lines: string) => `app: a\nentrypoints:\n  w:\n    command: x\n${lines}`;
const entryObject = (fields: Record<string, unknown>) => ({ app: 'a', entrypoints: { w: { command: 'x', ...fields } } });
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a 4 MB nested document is refused before it is parsed', (t) => {
  const levels = 2 * 1024 * 1024;
  const flow = refusedQuickly(t, 'nested flow sequences', '['.repeat(levels) + ']'.repeat(levels));
  assert.deepEqual(flow, [`: the spec is too large: more than ${MAX_SPEC_BYTES} bytes (256 KiB); an app spec is a few KiB`]);
  const maps = refusedQuickly(t, 'nested flow maps', '{a: '.repeat(levels / 2) + '}'.repeat(levels / 2));
  assert.match(maps[0]!, /too large/);
});

test('nesting deeper than MAX_SPEC_DEPTH is refused by a linear pre-scan, with its line and column', (t) => {
  const n = 100_000;
  assert.deepEqual(refusedQuickly(t, 'flow sequences', '['.repeat(n) + ']'.repeat(n)), [`line 1, column ${MAX_SPEC_DEPTH + 1}: nested too deeply: more than ${MAX_SPEC_DEPTH} levels`]);
  assert.match(refusedQuickly(t, 'flow maps', '{a: '.repeat(n / 2) + '}'.repeat(n / 2))[0]!, /^line 1, column \d+: nested too deeply/);
  assert.match(refusedQuickly(t, 'block sequences', '- '.repeat(n) + 'x')[0]!, /^line 1, column \d+: nested too deeply/);
  const block = Array.from({ length: 500 }, (_, i) => `${' '.repeat(i)}a:`).join('\n');
  assert.match(refusedQuickly(t, 'block maps', block)[0]!, new RegExp(`^line ${MAX_SPEC_DEPTH + 1}, column \\d+: nested too deeply`));
  // Brackets in quoted strings, comments and block scalars are text, not nesting.
  const text = '['.repeat(200);
  const spec = parseAppSpecText(withEntry(`    env: { A: "${text}", B: '${text}' } # ${text}\n    hooks:\n      afterStart: |\n        echo ${text}\n`));
  assert.equal(spec.entrypoints.w!.env.A, text);
});

test('nesting exactly MAX_SPEC_DEPTH deep reaches validation; one more does not', () => {
  // The top map is level 1, so 63 more collections make 64.
  const nested = (levels: number) => `app: a\nentrypoints: { w: { command: x } }\nx: ${'['.repeat(levels)}${']'.repeat(levels)}\n`;
  assert.deepEqual(fromText(nested(MAX_SPEC_DEPTH - 1)), ['x: unknown field']);
  assert.match(fromText(nested(MAX_SPEC_DEPTH))[0]!, /nested too deeply/);
  const value = (levels: number) => {
    let v: unknown = 'x';
    for (let i = 0; i < levels; i++) v = [v];
    return { app: 'a', entrypoints: { w: { command: 'x' } }, x: v };
  };
  assert.deepEqual(fromObject(value(MAX_SPEC_DEPTH - 1)), ['x: unknown field']);
  assert.match(fromObject(value(MAX_SPEC_DEPTH))[0]!, /^x(\[0\]){63}: nested too deeply/);
});

test('an alias bomb is a SpecError (the server answers 400), not an exception', (t) => {
  // Billion laughs: ten aliases of the level below on each of twenty levels.
  let laughs = 'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
  for (let i = 1; i < 20; i++) laughs += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  assert.deepEqual(refusedQuickly(t, 'billion laughs', laughs), [`line 7, column 10: too many aliases: more than ${MAX_SPEC_ALIASES}`]);
  // Few aliases in the text, still exponential when expanded: the library's own alias limit.
  let few = 'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
  for (let i = 1; i < 4; i++) few += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  assert.deepEqual(refusedQuickly(t, 'a few laughs', few), [`: aliases expand to too much data: more than ${MAX_SPEC_ALIASES} alias expansions`]);
  assert.deepEqual(fromText('app: *nowhere\n'), [': cannot read the YAML: Unresolved alias (the anchor must be set before the alias): nowhere']);
  // A few aliases are fine.
  const spec = parseAppSpecText('app: a\nentrypoints:\n  w: &w { command: x, env: { A: "1" } }\n  v: *w\n');
  assert.deepEqual(spec.entrypoints.v!.env, { A: '1' });
});

test('many tokens are refused quickly: the library compares every key of a map with every other', (t) => {
  let keys = '';
  for (let i = 0; keys.length < MAX_SPEC_BYTES - 100; i++) keys += `k${i}: v\n`;
  const tooLong = `the spec is too long: more than ${MAX_SPEC_TOKENS} YAML tokens (keys, values, punctuation, line breaks)`;
  assert.match(refusedQuickly(t, 'a 256 KiB map', keys)[0]!, new RegExp(`^line \\d+, column \\d+: ${escape(tooLong)}$`));
  let items = 'c: [';
  while (items.length < MAX_SPEC_BYTES - 100) items += 'x,';
  assert.match(refusedQuickly(t, 'a 256 KiB list', `${items}]\n`)[0]!, /too long/);
  assert.match(refusedQuickly(t, '256 KiB of line breaks', '\n'.repeat(MAX_SPEC_BYTES))[0]!, /too long/);
  // Errors cost a stack trace each; a document of stray brackets stops at the first.
  assert.deepEqual(refusedQuickly(t, '256 KiB of stray brackets', ']'.repeat(MAX_SPEC_BYTES)), ['line 1, column 1: Unexpected flow-seq-end token in YAML document']);
  assert.match(refusedQuickly(t, 'many anchors on one node', `a: ${'&a '.repeat(20_000)}x`)[0]!, /too long|at most one anchor/);
  // Duplicate keys are still found, with their position.
  assert.deepEqual(fromText(withEntry('    env: { A: 1, B: 2, "A": 3 }\n')), ['line 5, column 24: Map keys must be unique']);
});

test('a decoded (JSON) spec is bounded too: depth, size and count, without recursion', (t) => {
  const deep = JSON.parse(`${'['.repeat(1_000_000)}"x"${']'.repeat(1_000_000)}`) as unknown;
  const start = performance.now();
  const problems = fromObject(entryObject({ env: { A: deep } }));
  t.diagnostic(`a million levels: refused in ${(performance.now() - start).toFixed(1)} ms`);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^entrypoints\.w\.env\.A(\[0\])+: nested too deeply: more than 64 levels$/);
  assert.deepEqual(fromObject(entryObject({ env: { A: 'x'.repeat(MAX_SPEC_BYTES) } })), [': the spec is too large: more than 262144 bytes (256 KiB) as JSON; an app spec is a few KiB']);
  assert.deepEqual(fromObject(entryObject({ args: Array(MAX_SPEC_NODES + 1).fill('') })), [`: the spec is too long: more than ${MAX_SPEC_NODES} values`]);
});

test('NUL is refused in every string that becomes an argument, env value, path or header', () => {
  const nul = (s: string) => JSON.stringify(`${s}\0`);
  assert.deepEqual(
    fromText(`app: a\nentrypoints:\n  w:\n    command: [sh, ${nul('-c')}]\n    args: [${nul('x')}]\n    env: { A: ${nul('v')} }\n    workdir: ${nul('/srv')}\n    hooks: { afterStart: ${nul('a')}, beforeStop: [${nul('b')}] }\n    init: { command: ${nul('c')}, image: ${nul('i')} }\n    volumes: [{ name: v, path: ${nul('/v')} }]\n    health: { exec: { command: ${nul('h')} } }\n  d:\n    image: ${nul('busybox')}\n`),
    [
      'entrypoints.w.command[1]: must not contain NUL (\\0) characters',
      'entrypoints.w.args[0]: must not contain NUL (\\0) characters',
      'entrypoints.w.env.A: must not contain NUL (\\0) characters',
      'entrypoints.w.workdir: must not contain NUL (\\0) characters',
      'entrypoints.w.health.exec.command: must not contain NUL (\\0) characters',
      'entrypoints.w.hooks.afterStart: must not contain NUL (\\0) characters',
      'entrypoints.w.hooks.beforeStop[0]: must not contain NUL (\\0) characters',
      'entrypoints.w.init.image: image names are visible ASCII characters: no spaces or control characters',
      'entrypoints.w.init.command: must not contain NUL (\\0) characters',
      'entrypoints.w.volumes[0].path: must not contain NUL (\\0) characters',
      'entrypoints.d.image: image names are visible ASCII characters: no spaces or control characters',
    ],
  );
});

test('env: bounded count and value length', () => {
  const vars = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`V${i}`, 'x']));
  assert.equal(Object.keys(parseAppSpec(entryObject({ env: vars(LIMITS.envVars) })).entrypoints.w!.env).length, LIMITS.envVars);
  assert.deepEqual(fromObject(entryObject({ env: vars(LIMITS.envVars + 1) })), [`entrypoints.w.env: at most ${LIMITS.envVars} environment variables`]);
  // As YAML too, well inside the token limit.
  const yaml = withEntry(`    env:\n${Object.keys(vars(LIMITS.envVars)).map((name) => `      ${name}: "some value"\n`).join('')}`);
  assert.equal(Object.keys(parseAppSpecText(yaml).entrypoints.w!.env).length, LIMITS.envVars);
  assert.equal((parseAppSpec(entryObject({ env: { A: 'x'.repeat(LIMITS.envValueLength) } })).entrypoints.w!.env.A as string).length, LIMITS.envValueLength);
  assert.deepEqual(fromObject(entryObject({ env: { A: 'x'.repeat(LIMITS.envValueLength + 1) } })), ['entrypoints.w.env.A: at most 65536 characters']);
});

test('the HTTP health check path cannot split the request line', () => {
  const health = (path: string) => withEntry(`    health: { http: { port: 80, path: ${JSON.stringify(path)} } }\n`);
  const refused = 'entrypoints.w.health.http.path: expected a path starting with "/" of visible ASCII characters: no spaces, CR, LF or control characters (percent-encode them)';
  for (const path of ['/x\r\nHost: evil', '/x\nX: y', '/a b', '/a\tb', '/a\0', '/\x7f', 'healthz', '', '/é']) assert.deepEqual(fromText(health(path)), [refused], JSON.stringify(path));
  assert.deepEqual(fromText(health(`/${'a'.repeat(LIMITS.healthPathLength)}`)), [`entrypoints.w.health.http.path: at most ${LIMITS.healthPathLength} characters`]);
  assert.equal(parseAppSpecText(health('/healthz?full=1&x=%20')).entrypoints.w!.health!.http!.path, '/healthz?full=1&x=%20');
});

test('units: results beyond a safe integer are no result', () => {
  assert.equal(parseSize('99999999999Ti'), undefined);
  assert.equal(parseSize(`${'9'.repeat(400)}`), undefined);
  assert.equal(parseSize(1e300), undefined);
  assert.equal(parseSize(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  assert.equal(parseDuration(`${'9'.repeat(400)}h`), undefined);
  assert.equal(parseDuration('99999999999999h'), undefined);
  assert.equal(parseDuration(1e300), undefined);
  assert.equal(parseDuration(Infinity), undefined);
  assert.equal(parseDuration(1.5), 2);
});

test('memory is at most 64 TiB', () => {
  const memory = (m: string) => withEntry(`    resources: { memory: ${m} }\n`);
  for (const m of ['99999999999Ti', '65Ti', '70368744177665']) assert.deepEqual(fromText(memory(m)), ['entrypoints.w.resources.memory: must be at most 64Ti'], m);
  assert.deepEqual(fromText(memory('1e300')), ['entrypoints.w.resources.memory: expected a whole number of bytes, at most 64Ti']);
  assert.equal(parseAppSpecText(memory('64Ti')).entrypoints.w!.resources.memory, 64 * 1024 ** 4);
});

test('every duration has a maximum, named in the message', () => {
  const cases: [lines: string, path: string, max: string][] = [
    ['    health: { tcp: { port: 80 }, interval: @ }\n', 'health.interval', '1h'],
    ['    health: { tcp: { port: 80 }, timeout: @ }\n', 'health.timeout', '5m'],
    ['    health: { tcp: { port: 80 }, startPeriod: @ }\n', 'health.startPeriod', '1h'],
    ['    restart: { backoff: { initial: @ } }\n', 'restart.backoff.initial', '1h'],
    ['    restart: { backoff: { max: @ } }\n', 'restart.backoff.max', '1h'],
    ['    stop: { grace: @ }\n', 'stop.grace', '1h'],
    ['    stop: { drain: @ }\n', 'stop.drain', '10m'],
    ['    update: { minHealthy: @ }\n', 'update.minHealthy', '1h'],
    ['    update: { progressDeadline: @ }\n', 'update.progressDeadline', '24h'],
    ['    update: { strategy: canary, autoPromote: @ }\n', 'update.autoPromote', '7d'],
    ['    update: { strategy: blue-green, keepOld: @ }\n', 'update.keepOld', '7d'],
    ['    init: { command: x, timeout: @ }\n', 'init.timeout', '24h'],
  ];
  const ms = (max: string) => Number(max.slice(0, -1)) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[max.at(-1) as 'm' | 'h' | 'd'];
  for (const [lines, path, max] of cases) {
    const refused = [`entrypoints.w.${path}: must be at most ${max}`];
    for (const over of [String(ms(max) + 1), `${ms(max) / 1000 + 1}s`, '1e300', `${'9'.repeat(400)}h`]) assert.deepEqual(fromText(withEntry(lines.replace('@', over))), refused, `${path}: ${over}`);
    assert.doesNotThrow(() => parseAppSpecText(withEntry(lines.replace('@', String(ms(max))))), path);
  }
  // The finding: grace 1e300 made `gantry rm` wait forever.
  assert.deepEqual(fromObject(entryObject({ stop: { grace: 1e300 } })), ['entrypoints.w.stop.grace: must be at most 1h']);
});

test('every number and list has a maximum', () => {
  const cases: [fields: Record<string, unknown>, problem: string][] = [
    [{ replicas: 10_001 }, 'entrypoints.w.replicas: at most 10000'],
    [{ placement: { strategy: 'fill', perNode: 1001 } }, 'entrypoints.w.placement.perNode: at most 1000'],
    [{ restart: { maxRetries: 1e9 } }, 'entrypoints.w.restart.maxRetries: at most 10000'],
    [{ health: { tcp: { port: 80 }, retries: 101 } }, 'entrypoints.w.health.retries: at most 100'],
    [{ resources: { cpu: 1e300 } }, 'entrypoints.w.resources.cpu: at most 1024 CPUs'],
    [{ update: { maxSurge: '101%' } }, 'entrypoints.w.update.maxSurge: a percentage is at most 100%'],
    [{ update: { maxUnavailable: 10_001 } }, 'entrypoints.w.update.maxUnavailable: at most 10000'],
    [{ update: { strategy: 'canary', canary: '999%' } }, 'entrypoints.w.update.canary: a percentage is at most 100%'],
    [{ update: { maxSurge: '00%', maxUnavailable: 0 } }, 'entrypoints.w.update.maxSurge: maxSurge and maxUnavailable cannot both be 0: the rollout could never progress'],
    [{ args: Array(LIMITS.args + 1).fill('a') }, `entrypoints.w.args: at most ${LIMITS.args} arguments`],
    [{ command: Array(LIMITS.args + 1).fill('a') }, `entrypoints.w.command: at most ${LIMITS.args} arguments`],
    [{ ports: Array.from({ length: LIMITS.ports + 1 }, (_, i) => ({ name: `p${i}` })) }, `entrypoints.w.ports: at most ${LIMITS.ports} ports`],
    [{ volumes: Array.from({ length: LIMITS.volumes + 1 }, (_, i) => ({ name: `v${i}`, path: `/v${i}` })) }, `entrypoints.w.volumes: at most ${LIMITS.volumes} volumes`],
    [{ labels: Object.fromEntries(Array.from({ length: LIMITS.labels + 1 }, (_, i) => [`l${i}`, 'x'])) }, `entrypoints.w.labels: at most ${LIMITS.labels} labels`],
    [{ placement: { labels: { zone: 'a;b' } } }, 'entrypoints.w.placement.labels.zone: label values are letters, digits and " ._:/@=+-" (at most 256)'],
    [{ placement: { labels: { 'a b': 'x' } } }, 'entrypoints.w.placement.labels.a b: label keys are letters, digits, ".", "_", "/", "-"'],
    [{ workdir: `/${'a'.repeat(LIMITS.pathLength)}` }, `entrypoints.w.workdir: at most ${LIMITS.pathLength} characters`],
  ];
  for (const [fields, problem] of cases) assert.deepEqual(fromObject(entryObject(fields)), [problem], JSON.stringify(fields).slice(0, 80));
  const entrypoints = Object.fromEntries(Array.from({ length: LIMITS.entrypoints + 1 }, (_, i) => [`e${i}`, { command: 'x' }]));
  assert.deepEqual(fromObject({ app: 'a', entrypoints }), [`entrypoints: at most ${LIMITS.entrypoints} entrypoints`]);
  // At the maxima, a spec is fine.
  assert.doesNotThrow(() => parseAppSpec(entryObject({ replicas: 10_000, args: Array(LIMITS.args).fill('a'), update: { maxSurge: '100%', canary: 10_000 } })));
});

test('privilegedHostPorts lists each fixed host port below 1024 with its field path', () => {
  const spec = parseAppSpecText(
    'app: a\nentrypoints:\n  web:\n    image: i\n    ports:\n      - { name: http, container: 80, host: 80 }\n      - { name: admin, container: 9000, host: 9000 }\n      - { name: tls, container: 443, host: 443 }\n      - { name: dyn, container: 22 }\n  dns:\n    command: x\n    ports: [{ name: dns, host: 53, protocol: udp }]\n',
  );
  assert.deepEqual(privilegedHostPorts(spec), [
    { path: 'entrypoints.web.ports[0].host', port: 80 },
    { path: 'entrypoints.web.ports[2].host', port: 443 },
    { path: 'entrypoints.dns.ports[0].host', port: 53 },
  ]);
  assert.deepEqual(privilegedHostPorts(parseAppSpecText(withEntry('    ports: [{ name: p, host: 1024 }]\n'))), []);
});

test('__proto__, constructor and prototype are refused as keys, from YAML and from JSON, and pollute nothing', () => {
  const places: [yaml: (key: string) => string, json: (key: string) => string, path: (key: string) => string][] = [
    [(k) => withEntry(`    env: { ${k}: { replicas: 5 } }\n`), (k) => `{"app":"a","entrypoints":{"w":{"command":"x","env":{"${k}":{"replicas":5}}}}}`, (k) => `entrypoints.w.env.${k}`],
    [(k) => withEntry(`    env: { ${k}: "5" }\n`), (k) => `{"app":"a","entrypoints":{"w":{"command":"x","env":{"${k}":"5"}}}}`, (k) => `entrypoints.w.env.${k}`],
    [(k) => withEntry(`    labels: { ${k}: x }\n`), (k) => `{"app":"a","entrypoints":{"w":{"command":"x","labels":{"${k}":"x"}}}}`, (k) => `entrypoints.w.labels.${k}`],
    [(k) => withEntry(`    placement: { labels: { ${k}: { replicas: "7" } } }\n`), (k) => `{"app":"a","entrypoints":{"w":{"command":"x","placement":{"labels":{"${k}":{"replicas":"7"}}}}}}`, (k) => `entrypoints.w.placement.labels.${k}`],
    [(k) => `app: a\nentrypoints:\n  ${k}: { command: x, replicas: 9 }\n  w: { command: x }\n`, (k) => `{"app":"a","entrypoints":{"${k}":{"command":"x","replicas":9},"w":{"command":"x"}}}`, (k) => `entrypoints.${k}`],
    [(k) => `app: a\n${k}: { replicas: 3 }\nentrypoints:\n  w: { command: x }\n`, (k) => `{"app":"a","${k}":{"replicas":3},"entrypoints":{"w":{"command":"x"}}}`, (k) => k],
    [(k) => withEntry(`    health: { tcp: { port: 80, ${k}: { timeout: 1 } } }\n`), (k) => `{"app":"a","entrypoints":{"w":{"command":"x","health":{"tcp":{"port":80,"${k}":{"timeout":1}}}}}}`, (k) => `entrypoints.w.health.tcp.${k}`],
  ];
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    for (const [yaml, json, path] of places) {
      const refused = [`${path(key)}: "${key}" is a reserved name: use another key`];
      assert.deepEqual(fromText(yaml(key)), refused, yaml(key));
      assert.deepEqual(fromObject(JSON.parse(json(key))), refused, json(key));
    }
  }
  const probe = {} as Record<string, unknown>;
  for (const field of ['replicas', 'timeout', 'command', 'env']) {
    assert.equal(probe[field], undefined, `Object.prototype.${field} was set`);
    assert.equal(Object.hasOwn(Object.prototype, field), false);
  }
  // A name that only Object.prototype has is no entrypoint.
  assert.deepEqual(fromText(withEntry('    dependsOn: [constructor]\n')), ['entrypoints.w.dependsOn[0]: no entrypoint named "constructor" in this app']);
});

test('the examples still parse', () => {
  const dir = join(import.meta.dirname, '..', 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  // Every example is an app spec but the server's alert rules file, which has its own parser.
  const parserOf = (file: string) => (file === 'alert-rules.yaml' ? parseAlertRules : parseAppSpecText);
  for (const file of files) assert.doesNotThrow(() => parserOf(file)(readFileSync(join(dir, file), 'utf8'), file), file);
});
