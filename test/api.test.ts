// The server's API against a real server process: auth, bad specs (400, nothing stored),
// the OpenAPI document, and the CLI's handling of invalid files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from './helpers/cluster.js';
import type { AppDetailResponse } from '../src/model/api.js';

const GOOD = `app: keep
entrypoints:
  web:
    command: [sleep, "1000"]
    replicas: 0
`;

const BAD: [string, string, RegExp][] = [
  ['wrong type', 'app: keep\nentrypoints:\n  web:\n    command: [sleep, "1"]\n    replicas: "three"\n', /entrypoints\.web\.replicas: .*expected number/],
  ['negative cpu', 'app: keep\nentrypoints:\n  web:\n    command: [sleep, "1"]\n    resources: { cpu: -0.5 }\n', /entrypoints\.web\.resources\.cpu: cpu must be greater than 0/],
  ['unknown field', 'app: keep\nentrypoints:\n  web:\n    command: [sleep, "1"]\n    replica: 3\n', /entrypoints\.web\.replica: unknown field/],
  ['duplicate ports', 'app: keep\nentrypoints:\n  web:\n    image: x\n    ports: [{ name: a, container: 80 }, { name: b, container: 80 }]\n', /entrypoints\.web\.ports\[1\]\.container: duplicate port container 80/],
  ['bad yaml', 'app: keep\nentrypoints:\n  web: [\n', /line \d+, column \d+/],
  ['bad memory', 'app: keep\nentrypoints:\n  web:\n    command: [sleep, "1"]\n    resources: { memory: 12XB }\n', /entrypoints\.web\.resources\.memory: expected a size/],
  ['no image nor command', 'app: keep\nentrypoints:\n  web:\n    replicas: 1\n', /entrypoints\.web\.image: either image/],
];

describe('API', () => {
  const cluster = new TestCluster();
  before(() => cluster.startServer());
  after(() => cluster.close());

  test('health and OpenAPI need no token; /v1 does', async () => {
    assert.equal((await fetch(`${cluster.url}/healthz`)).status, 200);
    const doc = (await (await fetch(`${cluster.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/v1/apps'] && doc.components.schemas.AppSpec);
    assert.equal((await fetch(`${cluster.url}/v1/apps`)).status, 401);
    assert.equal((await fetch(`${cluster.url}/v1/apps`, { headers: { authorization: 'Bearer nope' } })).status, 401);
  });

  test('a bad spec gets a 400 naming the field and leaves the stored app as it was', async () => {
    const created = await fetch(`${cluster.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'text/yaml' }, body: GOOD });
    assert.equal(created.status, 201);
    const before = (await cluster.api('GET', '/v1/apps/keep')) as AppDetailResponse;
    for (const [what, body, expected] of BAD) {
      const response = await fetch(`${cluster.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'text/yaml' }, body });
      assert.equal(response.status, 400, what);
      const error = (await response.json()) as { problems: { path: string; message: string }[] };
      const text = error.problems.map((p) => `${p.path}: ${p.message}`).join('\n');
      assert.match(text, expected, `${what}: ${text}`);
    }
    const after = (await cluster.api('GET', '/v1/apps/keep')) as AppDetailResponse;
    assert.deepEqual(after.app, before.app);
    const { apps } = (await cluster.api('GET', '/v1/apps')) as { apps: unknown[] };
    assert.equal(apps.length, 1);
  });

  test('the CLI rejects an invalid file with the field path and a non-zero exit, sending nothing', async () => {
    for (const [what, body, expected] of BAD) {
      const result = await cluster.cli(['apply', '-f', '-', '--no-wait'], { input: body.replace('app: keep', 'app: never-stored') });
      assert.equal(result.code, 2, `${what}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, expected, what);
    }
    const { apps } = (await cluster.api('GET', '/v1/apps')) as { apps: { name: string }[] };
    assert.ok(!apps.some((a) => a.name === 'never-stored'));
  });

  test('releases: history with diffs, rollback as a new release, scaling is no release', async () => {
    const post = (body: string) => fetch(`${cluster.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'text/yaml' }, body });
    assert.equal((await post(GOOD.replace('replicas: 0', 'replicas: 0\n    env: { MODE: fast }'))).status, 200);
    await cluster.api('POST', '/v1/apps/keep/entries/web/scale', { replicas: 0 });
    const { changes } = (await cluster.api('GET', '/v1/apps/keep/diff?from=1&to=2')) as { changes: { path: string; kind: string; to: unknown }[] };
    assert.deepEqual(changes, [{ path: 'entrypoints.web.env.MODE', kind: 'added', to: 'fast' }]);

    const cli = await cluster.cli(['rollback', 'keep', '--no-wait']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /release 3 rolls release 2 back to release 1/);
    const { releases } = (await cluster.api('GET', '/v1/apps/keep/releases')) as { releases: { release: number; note?: string; spec: unknown }[] };
    assert.deepEqual(releases.map((r) => [r.release, r.note]), [[1, undefined], [2, undefined], [3, 'rollback to release 1']]);
    assert.deepEqual(releases[2]!.spec, releases[0]!.spec);
    const again = await cluster.cli(['rollback', 'keep', '1', '--no-wait']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /release 1 is what app keep runs already/);
    const history = await cluster.cli(['history', 'keep']);
    assert.match(history.stdout, /rollback to release 1/);
    const diffText = await cluster.cli(['diff', 'keep', '2', '3']);
    assert.match(diffText.stdout, /^- entrypoints\.web\.env\.MODE: fast$/m);
  });

  test('scaling an unknown entry is a 404 with a helpful message', async () => {
    const response = await fetch(`${cluster.url}/v1/apps/keep/entries/nope/scale`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' }, body: '{"replicas":2}' });
    assert.equal(response.status, 404);
    assert.match(((await response.json()) as { error: string }).error, /no entrypoint "nope" \(it has: web\)/);
    const bad = await fetch(`${cluster.url}/v1/apps/keep/entries/web/scale`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' }, body: '{"replicas":-1}' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /replicas/);
  });

  test('path parameters are names: __proto__, constructor and encoded slashes are refused, nothing is polluted', async () => {
    const scale = (path: string) => fetch(`${cluster.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' }, body: '{"replicas":7}' });
    const proto = await scale('/v1/apps/keep/entries/__proto__/scale');
    assert.equal(proto.status, 400);
    assert.match(JSON.stringify(await proto.json()), /entry.*lower-case letters/);
    assert.equal((await scale('/v1/apps/keep/entries/constructor/scale')).status, 404);
    assert.equal((await scale('/v1/apps/__proto__/entries/web/scale')).status, 400);
    assert.equal((await scale('/v1/apps/keep%2f..%2fx/entries/web/scale')).status, 400);
    assert.equal((await scale(`/v1/apps/${'a'.repeat(300)}/entries/web/scale`)).status, 414); // longer than any route parameter
    // Every later apply still works (the report: one such request broke every apply until a restart).
    const applied = await fetch(`${cluster.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'text/yaml' }, body: GOOD.replace('app: keep', 'app: after-proto') });
    assert.equal(applied.status, 201, await applied.text());
  });

  test('a privileged host port is refused unless an admin allowed it', async () => {
    const spec = (port: number) => `app: priv\nentrypoints:\n  web:\n    command: [sleep, "1000"]\n    replicas: 0\n    ports: [{ name: ssh, host: ${port} }]\n`;
    const refused = await fetch(`${cluster.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'text/yaml' }, body: spec(22) });
    assert.equal(refused.status, 400);
    const { problems } = (await refused.json()) as { problems: { path: string; message: string }[] };
    assert.deepEqual(problems.map((p) => p.path), ['entrypoints.web.ports[0].host']);
    assert.match(problems[0]!.message, /host port 22 is privileged .*--allow-host-port 22/);

    const allowing = new TestCluster();
    try {
      await allowing.startServer({ extra: ['--allow-host-port', '22'] });
      const allowed = await fetch(`${allowing.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${allowing.token}`, 'content-type': 'text/yaml' }, body: spec(22) });
      assert.equal(allowed.status, 201, await allowed.text());
      const other = await fetch(`${allowing.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${allowing.token}`, 'content-type': 'text/yaml' }, body: spec(80) });
      assert.equal(other.status, 400);
    } finally {
      await allowing.close();
    }
  });
});
