// A real Prometheus (Debian's 2.42) against a real Gantry server and agent (process runtime, no
// Docker): it scrapes the server's /metrics and what the instances use (/v1/metrics/instances),
// and discovers the instances through Gantry's HTTP SD, with the configuration the docs show
// (examples/prometheus.yml, read here so the two cannot drift), as an operator's scoped token.
// Asked through Prometheus' own HTTP API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, freePort, until } from './helpers/cluster.js';
import { Daemon, replaced as replacedIn } from './helpers/daemons.js';
import type { AppDetailResponse } from '../src/model/api.js';

const ROOT = join(import.meta.dirname, '..');
const EXAMPLE = readFileSync(join(ROOT, 'examples', 'prometheus.yml'), 'utf8');
const PASSWORD = 'prometheus test password';

interface Target { scrapePool: string; labels: Record<string, string>; health: string; lastError: string }

const replaced = (text: string, from: string, to: string, times: number) => replacedIn(text, from, to, times, 'examples/prometheus.yml');

describe('Prometheus scrapes the server and discovers instances', () => {
  const cluster = new TestCluster();
  const app = `prom-${cluster.id}`;
  const node = `prom-${cluster.id}`;
  let token = '';
  let prometheus: Daemon | undefined;
  let promUrl = '';
  const prom = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${promUrl}${path}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(response.status, 200, `${path}: ${response.status}`);
    return ((await response.json()) as { data: T }).data;
  };
  const metrics = async (bearer = token) => fetch(`${cluster.url}/metrics`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '33100-33149', dockerSocket: join(cluster.dir, 'no-docker.sock'), extra: ['--sample-interval', '1s'] });
    // The token the docs say to make: an operator's personal token narrowed to reading the cluster, discovery and instances.
    await cluster.api('POST', '/v1/users', { name: 'monitor', password: PASSWORD, role: 'operator' });
    const login = await fetch(`${cluster.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'monitor', password: PASSWORD }) });
    const session = ((await login.json()) as { token: string }).token;
    const made = await fetch(`${cluster.url}/v1/me/tokens`, { method: 'POST', headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'prometheus', scope: ['cluster:read', 'discovery:read', 'instance:read'] }) });
    assert.equal(made.status, 201, await made.clone().text());
    token = ((await made.json()) as { token: string }).token;

    await cluster.api('POST', '/v1/apps', {
      app,
      entrypoints: {
        web: {
          command: ['node', '-e', "require('http').createServer((q, s) => s.end('hello_requests_total 1\\n')).listen(process.env.PORT)"],
          replicas: 2,
          resources: { cpu: 0.05, memory: '64Mi' },
          ports: [{ name: 'metrics' }],
        },
      },
    });
    await until('both instances running', async () => {
      const { instances } = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
      return instances.length === 2 && instances.every((i) => i.status?.state === 'running');
    }, 60_000);

    const dir = join(cluster.dir, 'prometheus');
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'gantry.token'), token, { mode: 0o600 });
    let config = replaced(EXAMPLE, 'gantry:7070', `127.0.0.1:${cluster.port}`, 3);
    config = replaced(config, '/etc/prometheus/gantry.token', join(dir, 'gantry.token'), 3);
    config = replaced(config, 'scrape_interval: 15s', 'scrape_interval: 1s', 1);
    config = replaced(config, 'scrape_interval: 10s', 'scrape_interval: 1s', 1);
    config = replaced(config, 'refresh_interval: 30s', 'refresh_interval: 1s', 1);
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = new Daemon('prometheus', 'prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], cluster.output);
    await until('prometheus to be ready', async () => (await fetch(`${promUrl}/-/ready`)).ok, 30_000);
  });

  after(async () => {
    await prometheus?.stop();
    await cluster.api('DELETE', `/v1/apps/${app}`).catch(() => {});
    await cluster.close();
  });

  test('the docs show exactly the configuration this test runs', () => {
    assert.ok(readFileSync(join(ROOT, 'docs', 'discovery.md'), 'utf8').includes(EXAMPLE), 'docs/discovery.md must show examples/prometheus.yml as it is');
  });

  test('/metrics wants a token that may read the cluster', async () => {
    assert.equal((await metrics('')).status, 401);
    const member = await cluster.api('POST', '/v1/users', { name: 'someone', password: PASSWORD }).then(async () => {
      const login = await fetch(`${cluster.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'someone', password: PASSWORD }) });
      return ((await login.json()) as { token: string }).token;
    });
    assert.equal((await metrics(member)).status, 403);
    assert.equal((await metrics()).status, 200);
  });

  test('route labels are the matched pattern, never the URL a client sent', async () => {
    await cluster.api('GET', `/v1/apps/${app}`);
    await fetch(`${cluster.url}/v1/no-such-route-${cluster.id}`, { headers: { authorization: `Bearer ${cluster.token}` } });
    const text = await (await metrics()).text();
    assert.match(text, /gantry_http_request_duration_seconds_count\{route="\/v1\/apps\/:app",method="GET",status="2xx"\} [1-9]/);
    assert.match(text, /gantry_http_request_duration_seconds_count\{route="unmatched",method="GET",status="4xx"\} [1-9]/);
    assert.ok(!text.includes(`no-such-route-${cluster.id}`) && !text.includes(`/v1/apps/${app}`), 'a raw URL made it into a label');
    assert.match(text, /^gantry_instances\{state="running"\} 2$/m);
    assert.match(text, /^gantry_agents_connected 1$/m);
    assert.match(text, /^gantry_placements_total [2-9]/m);
    assert.match(text, /^gantry_reconcile_pass_duration_seconds_count [1-9]/m);
    assert.match(text, /^gantry_store_operation_duration_seconds_count\{operation="txn"\} [1-9]/m);
    assert.match(text, /^process_resident_memory_bytes /m);
  });

  test('Prometheus scrapes the Gantry server with the token', async () => {
    const server = await until('the gantry-server target to be up', async () => {
      const { activeTargets } = await prom<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
      return activeTargets.find((t) => t.scrapePool === 'gantry-server' && t.health === 'up');
    }, 60_000);
    assert.equal(server.labels.instance, `127.0.0.1:${cluster.port}`);
    const series = await until('the instances-by-state gauge in Prometheus', async () => {
      const { result } = await prom<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent('gantry_instances{job="gantry-server",state="running"}')}`);
      return result.length > 0 ? result : undefined;
    }, 60_000);
    assert.equal(series[0]!.value[1], '2');
  });

  test('Prometheus discovers the instances through Gantry with their app, env, entry, instance and node', async () => {
    const { instances } = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
    const found = await until('both instances discovered', async () => {
      const { activeTargets } = await prom<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
      const ours = activeTargets.filter((t) => t.scrapePool === 'gantry-instances' && t.labels.app === app);
      return ours.length === 2 ? ours : undefined;
    }, 60_000);
    // Their health is the app's business (this one answers anything, so they are likely up): the labels are Gantry's.
    assert.deepEqual(found.map((t) => t.labels.instance).sort(), instances.map((i) => i.id).sort());
    for (const target of found) {
      assert.equal(target.labels.env, 'default');
      assert.equal(target.labels.entry, 'web');
      assert.equal(target.labels.node, node);
      assert.equal(target.labels.job, 'gantry-instances');
    }
  });

  test("Prometheus scrapes what the instances use, each series with Gantry's labels", async () => {
    const { instances } = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
    const query = encodeURIComponent(`gantry_instance_memory_bytes{app="${app}"}`);
    const series = await until("both instances' memory series in Prometheus", async () => {
      const { result } = await prom<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${query}`);
      return result.length === 2 ? result : undefined;
    }, 60_000);
    for (const { metric, value } of series) {
      const instance = instances.find((i) => i.id === metric.instance);
      assert.ok(instance, `series of an instance the app does not have: ${JSON.stringify(metric)}`);
      // honor_labels: Gantry's `instance` stays the instance id (not the scrape target), and nothing is renamed exported_*.
      assert.deepEqual(metric, { __name__: 'gantry_instance_memory_bytes', job: 'gantry-usage', app, env: 'default', entry: 'web', instance: instance.id, node, team: 'default' });
      // A node process serving HTTP holds megabytes, well under its 64 MiB limit.
      assert.ok(Number(value[1]) > 1024 * 1024 && Number(value[1]) < 64 * 1024 * 1024, `memory of ${metric.instance}: ${value[1]}`);
    }
    const limit = await prom<{ result: { value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(`gantry_instance_memory_limit_bytes{app="${app}",entry="web"}`)}`);
    assert.deepEqual(limit.result.map((r) => r.value[1]), [String(64 * 1024 * 1024), String(64 * 1024 * 1024)]);
  });
});
