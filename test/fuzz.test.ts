// Random and mutated input against a real server (HTTP on a port, the agent WebSocket): API
// bodies and query strings, YAML specs, agent messages. Whatever comes in, the server answers
// below 500, answers at all (within a few seconds), never crashes, and afterwards still answers
// /healthz and lists its apps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../src/server/main.js';

const ADMIN = 'gty_fuzz_admin';
const RUNS = Number(process.env.GANTRY_FUZZ_RUNS ?? 150);
const EXAMPLES = join(import.meta.dirname, '..', 'examples');

/** Values that have broken parsers and validators before. */
const nasty = fc.constantFrom<unknown>(
  '__proto__', 'constructor', 'prototype', '', ' ', '\u0000', '\r\n', '../..', '%2f', '${x}', '{{x}}', '; } server {', 'a'.repeat(5000),
  -1, 0, 1e308, -1e308, 2 ** 53 + 1, 1.5, 99999999999, true, null, [], {}, [[[[[]]]]], { __proto__: { polluted: 1 } }, '99999999999Ti', '1e300', '-5s',
);
const value: fc.Arbitrary<unknown> = fc.oneof({ weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }) }, { weight: 2, arbitrary: nasty });

/** Sets a random path of `target` (a clone) to `replacement`, or deletes it. */
function mutate(target: unknown, steps: number[], replacement: unknown, remove: boolean): unknown {
  const root = structuredClone(target) as Record<string, unknown>;
  let node: unknown = root;
  for (const [i, step] of steps.entries()) {
    if (node === null || typeof node !== 'object') break;
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[step % keys.length]!;
    const last = i === steps.length - 1 || typeof (node as Record<string, unknown>)[key] !== 'object' || (node as Record<string, unknown>)[key] === null;
    if (last) {
      if (remove) delete (node as Record<string, unknown>)[key];
      else Object.defineProperty(node, key, { value: replacement, enumerable: true, writable: true, configurable: true });
      break;
    }
    node = (node as Record<string, unknown>)[key];
  }
  return root;
}

const specs = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml') && !f.includes('renderer'))
  .map((f) => parseYaml(readFileSync(join(EXAMPLES, f), 'utf8')) as unknown)
  .filter((s): s is Record<string, unknown> => typeof s === 'object' && s !== null && 'app' in s);
const mutatedSpec = fc.record({ spec: fc.constantFrom(...specs), steps: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), replacement: value, remove: fc.boolean() }).map(({ spec, steps, replacement, remove }) => mutate(spec, steps, replacement, remove));

describe('fuzz: nothing a client sends produces a 5xx, a crash or a stuck handler', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-fuzz-'));
  let server: RunningServer;
  let agentToken = '';
  const failures: string[] = [];

  /** Sends a request and returns its status; records anything 5xx or unanswered. */
  const send = async (method: string, path: string, body: string | undefined, contentType = 'application/json'): Promise<number> => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10_000);
    try {
      const response = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': contentType }) }, body, signal: controller.signal });
      const text = await response.text();
      if (response.status >= 500) failures.push(`${method} ${path} ${String(body).slice(0, 300)} → ${response.status} ${text.slice(0, 300)}`);
      return response.status;
    } catch (err) {
      failures.push(`${method} ${path} ${String(body).slice(0, 300)} → ${(err as Error).message}`);
      return 0;
    } finally {
      clearTimeout(timer);
    }
  };
  const stillServing = async () => {
    assert.deepEqual(failures, []);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const apps = await fetch(`${server.url}/v1/apps`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(apps.status, 200);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).replicas, undefined);
  };

  before(async () => {
    server = await startServer({ dataDir: dir, port: 0, bootstrapToken: ADMIN, reconcileIntervalMs: 500 });
    const created = await fetch(`${server.url}/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'fuzz-node', role: 'agent' }) });
    agentToken = ((await created.json()) as { token: string }).token;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('API bodies: random and mutated JSON to every route that takes one', async () => {
    const withBody = server.routes().filter((r) => r.method === 'POST' || r.method === 'PUT');
    assert.ok(withBody.length > 10);
    const fill = (url: string, names: readonly string[]) => url.replace(/:([a-z]+)/g, (_m, p: string) => (p === 'release' ? '1' : names[p.length % names.length]!));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...withBody), fc.oneof(value, mutatedSpec), fc.constantFrom(['shop', 'web'], ['__proto__'], ['constructor'], ['x'.repeat(70)], ['a%2fb']), async (route, body, names) => {
        await send(route.method, fill(route.url, names), JSON.stringify(body));
      }),
      { numRuns: RUNS * 2 },
    );
    await stillServing();
  });

  test('query strings: random values for every GET route', async () => {
    const gets = server.routes().filter((r) => r.method === 'GET' && !r.url.includes('agent/connect') && !r.url.includes('watch') && r.url !== '/v1/events');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...gets), fc.dictionary(fc.constantFrom('app', 'entry', 'node', 'from', 'to', 'tail', 'since', 'limit', 'prefix', 'env', '__proto__'), fc.oneof(fc.string(), fc.constantFrom('-1', '1e308', 'NaN', '__proto__', '%00'))), async (route, query) => {
        const path = route.url.replace(/:([a-z]+)/g, (_m, p: string) => (p === 'release' ? '1' : 'shop'));
        await send('GET', `${path}?${new URLSearchParams(query as Record<string, string>)}`, undefined);
      }),
      { numRuns: RUNS },
    );
    await stillServing();
  });

  test('YAML specs: random text and mutated valid specs', async () => {
    const yamlText = fc.oneof(
      fc.string({ maxLength: 2000 }),
      mutatedSpec.map((spec) => toYaml(spec)),
      fc.tuple(fc.nat(200), fc.constantFrom('[', '{', '- ', '&a ', '*a ', '? ', '!!binary ', '"', "'")).map(([n, token]) => token.repeat(n)),
      mutatedSpec.map((spec) => `${toYaml(spec)}\n${String.fromCharCode(0)}`),
    );
    await fc.assert(
      fc.asyncProperty(yamlText, async (text) => {
        const status = await send('POST', '/v1/apps', text, 'text/yaml');
        assert.ok(status < 500);
      }),
      { numRuns: RUNS * 2 },
    );
    await stillServing();
  });

  test('agent messages: random and mutated messages on the agent connection', async () => {
    const node = { name: 'fuzz-node', address: '127.0.0.1', labels: {}, cores: 2, memoryBytes: 2 ** 30, runtimes: ['process'], runtimeNotes: [], portRange: [41000, 41099], agentVersion: 't', pool: 'default', reserved: { cores: 0, memoryBytes: 0 }, shareBase: 100 };
    const valid: unknown[] = [
      { type: 'heartbeat', node, endpoints: [] },
      { type: 'status', statuses: [{ id: 'shop-web-0a1b2c3d', state: 'running', healthy: true, restarts: 0, exitCode: null, runtimeId: 'x', startedAt: 1, message: null, updatedAt: 1 }] },
      { type: 'registry', requestId: 'r', register: [{ id: 'shop-web-0a1b2c3d', app: 'shop', env: 'default', entry: 'web', address: '127.0.0.1', ports: { http: 1 }, labels: {}, registeredAt: 1, source: 'agent' }], withdraw: [] },
      { type: 'events', events: [{ time: 1, level: 'info', type: 'instance.started', message: 'm' }] },
      { type: 'log.lines', requestId: 'r', lines: ['x'] },
    ];
    const message = fc.oneof(
      value.map((v) => JSON.stringify(v)),
      fc.record({ m: fc.constantFrom(...valid), steps: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), replacement: value, remove: fc.boolean() }).map(({ m, steps, replacement, remove }) => JSON.stringify(mutate(m, steps, replacement, remove))),
      fc.string({ maxLength: 200 }),
    );
    let socket: WebSocket | undefined;
    const open = async () => {
      socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${agentToken}` } });
      socket.on('error', () => {});
      await new Promise((resolve, reject) => {
        socket!.once('open', resolve);
        socket!.once('unexpected-response', (_q, res) => reject(new Error(`agent connection refused: HTTP ${res.statusCode}`)));
      });
      socket.send(JSON.stringify({ type: 'hello', node, statuses: [], endpoints: [] }));
    };
    let closes = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 5 }), async (messages) => {
        if (!socket || socket.readyState !== WebSocket.OPEN) {
          if (socket) closes++;
          await open();
        }
        for (const m of messages) if (socket!.readyState === WebSocket.OPEN) socket!.send(m);
        await new Promise((r) => setTimeout(r, 5));
      }),
      { numRuns: RUNS * 2 },
    );
    socket?.close();
    assert.ok(closes > 10, `only ${closes} connections were closed: the fuzzer sent few invalid messages`);
    await stillServing();
  });
});
