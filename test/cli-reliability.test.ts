// Reliability of `gantry apply` and the waits around it. Re-applying an unchanged spec (as YAML
// or as JSON) is a no-op: one release, no rollout, no event, and the CLI says "unchanged". A
// wait (apply, scale, rm) rides out a server that restarts meanwhile, while only the command's
// own request fails fast; it reads the app again as soon as the server's watch stream shows a
// change to it. And the first start of `gantry server` or `gantry up` never overwrites a user's
// CLI config that is about another server. The waits are checked against a fake server that goes
// away and comes back (or streams changes), and end to end against real server and agent
// processes, the server killed with SIGKILL mid-wait.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { freePort, GANTRY, TestCluster, until } from './helpers/cluster.js';
import { ApiRequestError, GantryClient, ServerUnreachableError } from '../src/cli/client.js';
import { configSaveConflict } from '../src/cli/config.js';
import { CliError, EXIT } from '../src/cli/errors.js';
import { serverAway, waitForConvergence, waitForRemoval } from '../src/cli/wait.js';
import type { AppDetailResponse, ApplyResponse, EventListResponse } from '../src/model/api.js';
import type { ReleaseRecord } from '../src/model/types.js';
import { openStore } from '../src/store/index.js';
import { ClusterState } from '../src/server/state.js';
import { AppService } from '../src/server/services/apps.js';
import { STORE } from '../src/server/keys.js';
import { EventLog } from '../src/server/services/events.js';
import { ReleaseService } from '../src/server/services/releases.js';

const ROOT = join(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- the waits against a fake server that goes away ----

function appDetail(healthy: number, instances: string[] = []): AppDetailResponse {
  const now = Date.now();
  return {
    app: { name: 'shop', env: 'default', spec: {} as AppDetailResponse['app']['spec'], release: 1, stopped: false, createdAt: now, updatedAt: now, updatedBy: 'test' },
    summary: { name: 'shop', env: 'default', release: 1, stopped: false, updatedAt: now, entries: [{ name: 'web', runtime: 'process', desired: 1, running: 1, healthy }] },
    instances: instances.map((id) => ({ id, app: 'shop', entry: 'web', desired: 'running', status: { id, state: 'running', healthy: healthy > 0 } }) as unknown as AppDetailResponse['instances'][number]),
    unplaced: [],
  };
}

/** A fake API on a fixed port that can go away (connections refused) and come back. */
class FlakyServer {
  port = 0;
  requests = 0;
  private server?: Server;

  constructor(private readonly handler: (req: IncomingMessage, res: ServerResponse) => void) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    const server = createServer((req, res) => {
      this.requests++;
      this.handler(req, res);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const capture = () => {
  const out = { text: '', write: (t: string) => (out.text += t) };
  return out;
};

test('serverAway: refused connections and 502-504 are waited out; API errors and certificates are not', () => {
  assert.equal(serverAway(new ServerUnreachableError('http://x', 'ECONNREFUSED')), true);
  assert.equal(serverAway(new ApiRequestError(503, { error: 'busy' })), true);
  assert.equal(serverAway(new ApiRequestError(404, { error: 'no app named "shop"' })), false);
  assert.equal(serverAway(new ApiRequestError(500, { error: 'bug' })), false);
  assert.equal(serverAway(new Error('bad JSON')), false);
});

test('a wait rides out a server that goes away and comes back, saying so once each way', async () => {
  let healthy = 0;
  let reads = 0;
  // It answers the watch stream with JSON too, as a proxy might: the wait polls.
  const fake = new FlakyServer((req, res) => {
    if (!req.url!.startsWith('/v1/watch')) reads++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(appDetail(healthy)));
  });
  await fake.start();
  try {
    const out = capture();
    const waiting = waitForConvergence(new GantryClient({ server: fake.url }), 'shop', { timeoutMs: 20_000, intervalMs: 50, retryDelayMs: 20, maxRetryDelayMs: 100, out });
    await until('the first poll', () => reads >= 1, 5000, 10);
    await fake.stop();
    await sleep(600); // several failed polls while it is away
    healthy = 1;
    await fake.start();
    const { tookMs, alreadyConverged } = await waiting;
    assert.equal(alreadyConverged, false);
    assert.ok(tookMs >= 600, `took ${tookMs}ms`);
    const lost = out.text.split('\n').filter((l) => l.startsWith('lost the Gantry server'));
    assert.deepEqual(lost.length, 1, out.text);
    assert.match(lost[0]!, new RegExp(`^lost the Gantry server at ${fake.url} \\(ECONNREFUSED\\); retrying until the timeout \\(\\d+s left\\)$`));
    assert.equal(out.text.split('\n').filter((l) => /^the Gantry server at .* is back \(away for [\dmsh]+\)$/.test(l)).length, 1, out.text);
    assert.match(out.text, /web {2}1\/1 running {2}1\/1 healthy\n$/);
  } finally {
    await fake.stop();
  }
});

test('a server still away at the timeout ends the wait with exit 4, naming the server and what was waited for', async () => {
  const fake = new FlakyServer((_req, res) => res.end('{}'));
  fake.port = await freePort(); // never started: nobody listens there
  const out = capture();
  const client = new GantryClient({ server: fake.url });
  const started = Date.now();
  await assert.rejects(waitForRemoval(client, 'shop', { timeoutMs: 400, intervalMs: 50, retryDelayMs: 20, maxRetryDelayMs: 50, out }), (err: unknown) => {
    assert.ok(err instanceof CliError);
    assert.equal(err.exitCode, EXIT.unreachable);
    assert.match(err.message, new RegExp(`^gave up waiting for the instances of shop to be removed after 400ms: the Gantry server at ${fake.url} has been unreachable for \\d+ms \\(ECONNREFUSED\\)`));
    return true;
  });
  assert.ok(Date.now() - started >= 400, 'retried until the timeout');
  assert.match(out.text, /^lost the Gantry server at /);

  // An answer that is an error of the API is not an outage: it ends the wait at once.
  let reads = 0;
  const notFound = new FlakyServer((req, res) => {
    if (!req.url!.startsWith('/v1/watch')) reads++;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'no app named "shop"' }));
  });
  await notFound.start();
  try {
    await assert.rejects(waitForConvergence(new GantryClient({ server: notFound.url }), 'shop', { timeoutMs: 5000, out: capture() }), ApiRequestError);
    assert.equal(reads, 1);
  } finally {
    await notFound.stop();
  }
});

test('a wait reads the app again as soon as the watch stream shows a change to it: not at the next poll, not for other apps', async () => {
  let healthy = 0;
  let reads = 0;
  const streams = new Map<string, ServerResponse>();
  const asked: string[] = [];
  const fake = new FlakyServer((req, res) => {
    const url = new URL(req.url!, 'http://fake');
    if (url.pathname === '/v1/watch') {
      const prefix = url.searchParams.get('prefix')!;
      asked.push(`${prefix} since=${url.searchParams.get('since')} last-event-id=${req.headers['last-event-id']}`);
      // As the real server: a snapshot when not resuming, else nothing (not even the headers) until a change.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (!url.searchParams.has('since')) res.write(`id: 10\nevent: snapshot\ndata: {"revision":10,"items":[]}\n\n`);
      streams.set(prefix, res);
      return;
    }
    reads++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(appDetail(healthy, ['shop-web-1'])));
  });
  const change = (revision: number, type: 'put' | 'delete', key: string) => `id: ${revision}\nevent: change\ndata: ${JSON.stringify({ revision, changes: [{ type, key, value: {} }] })}\n\n`;
  await fake.start();
  try {
    const out = capture();
    // Neither the poll nor the safety net comes within the test: only a change can end the wait.
    const waiting = waitForConvergence(new GantryClient({ server: fake.url }), 'shop', { timeoutMs: 20_000, intervalMs: 30_000, rereadMs: 30_000, out });
    await until('the three streams, the later two from the snapshot\'s revision', () => streams.size === 3, 5000, 10);
    assert.deepEqual(asked.sort(), ['apps since=null last-event-id=undefined', 'instances since=10 last-event-id=10', 'status since=10 last-event-id=10']);
    await sleep(300);
    const settled = reads;
    assert.ok(settled >= 2, `read once, and again after the snapshot (${settled} reads)`);

    streams.get('status')!.write(change(11, 'put', '/status/other-web-1'));
    streams.get('instances')!.write(change(12, 'put', '/instances/other/other-web-1'));
    streams.get('apps')!.write(change(13, 'put', '/apps/other'));
    await sleep(300);
    assert.equal(reads, settled, 'changes of another app are no reason to read this one');

    // A dropped stream resumes from the last revision it saw.
    const before = asked.length;
    streams.get('status')!.destroy();
    await until('the status stream to resume', () => asked.length > before, 5000, 10);
    assert.equal(asked.at(-1), 'status since=11 last-event-id=11');

    healthy = 1;
    const changedAt = Date.now();
    streams.get('status')!.write(change(14, 'put', '/status/shop-web-1'));
    const { alreadyConverged } = await waiting;
    const reactedMs = Date.now() - changedAt;
    assert.equal(alreadyConverged, false);
    assert.ok(reactedMs < 500, `converged ${reactedMs}ms after the change: the old poll came every 500ms`);
    assert.match(out.text, /web {2}1\/1 running {2}1\/1 healthy\n$/);
  } finally {
    await fake.stop();
  }
});

// ---- the services, in process on an in-memory store ----

async function services() {
  const store = openStore('sqlite::memory:');
  const state = await ClusterState.load(store);
  const apps = new AppService(store, state, new EventLog(store));
  return { store, apps, releases: new ReleaseService(store, apps), close: async () => { state.close(); await store.close(); } };
}

const SPEC = 'app: shop\nentrypoints:\n  web:\n    command: serve\n    restart: always\n    ports: [{ name: http }]\n';

test('AppService.apply: an unchanged spec, as text or as an object, changes nothing and writes nothing', async () => {
  const { store, apps, close } = await services();
  try {
    assert.equal((await apps.apply(SPEC, 'alice')).created, true);
    const revision = (await store.get('/apps/shop'))!.modRevision;
    for (const input of [SPEC, SPEC, parseYaml(SPEC) as object, JSON.stringify(parseYaml(SPEC))]) {
      const result = await apps.apply(input, 'bob');
      assert.deepEqual([result.created, result.changed, result.app.release, result.app.updatedBy], [false, false, 1, 'alice']);
    }
    assert.equal((await store.get('/apps/shop'))!.modRevision, revision);
    assert.equal((await store.range('/releases/shop/')).kvs.length, 1);
    assert.equal(await store.get('/rollouts/shop'), undefined);
    const scaled = await apps.apply(SPEC.replace('command: serve', 'command: serve\n    replicas: 3'), 'bob');
    assert.deepEqual([scaled.changed, scaled.app.release], [true, 1], 'a replica count alone is no release');
  } finally {
    await close();
  }
});

test('rollback by default goes to the newest earlier release that differs, past empty ones an older version left', async () => {
  const { store, apps, releases, close } = await services();
  try {
    await apps.apply(SPEC, 'alice');
    const two = await apps.apply(SPEC.replace('command: serve', 'command: serve --fast'), 'alice');
    // What the bug left behind: release 3, the same spec as release 2.
    const empty: ReleaseRecord = { app: 'shop', release: 3, spec: two.app.spec, createdAt: Date.now(), createdBy: 'alice', changes: [] };
    const kv = (await store.get('/apps/shop'))!;
    await store.txn({ compare: [], success: [{ type: 'put', key: STORE.releases.key('shop', 3), value: JSON.stringify(empty) }, { type: 'put', key: '/apps/shop', value: JSON.stringify({ ...JSON.parse(kv.value), release: 3 }) }] });
    await until('the app at release 3', () => apps.get('shop').release === 3, 5000, 10);
    assert.deepEqual(await releases.rollback('shop', undefined, 'alice'), { from: 3, to: 1, release: 4 });
  } finally {
    await close();
  }
});

// ---- the CLI config of the user who starts a server ----

test('configSaveConflict: saving is refused over a config for another server or token, or one that cannot be read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-reliability-'));
  try {
    const env = { GANTRY_CONFIG: join(dir, 'config.json') } as NodeJS.ProcessEnv;
    const ours = { server: 'http://127.0.0.1:7070', token: 'gty_ours' };
    assert.equal(configSaveConflict(ours, env), undefined, 'no file');
    writeFileSync(env.GANTRY_CONFIG!, JSON.stringify({ server: '127.0.0.1:7070/' }));
    assert.equal(configSaveConflict(ours, env), undefined, 'the same server, no token');
    writeFileSync(env.GANTRY_CONFIG!, JSON.stringify(ours));
    assert.equal(configSaveConflict(ours, env), undefined, 'the same server and token');
    writeFileSync(env.GANTRY_CONFIG!, JSON.stringify({ server: 'https://prod.example:7070', token: 'gty_prod' }));
    assert.equal(configSaveConflict(ours, env), 'points at another server (https://prod.example:7070)');
    writeFileSync(env.GANTRY_CONFIG!, JSON.stringify({ server: 'http://127.0.0.1:7070', token: 'gty_before' }));
    assert.equal(configSaveConflict(ours, env), 'holds another token');
    writeFileSync(env.GANTRY_CONFIG!, '{ nope');
    assert.match(configSaveConflict(ours, env) ?? '', /^cannot be read as a config \(the config file .* is not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- end to end ----

/** A CLI run whose output can be watched while it runs (cluster.cli only answers at the end). */
function startCli(cluster: TestCluster, args: string[]): { output: () => string; done: Promise<{ code: number; stdout: string; stderr: string }> } {
  const child: ChildProcess = spawn(process.execPath, [...GANTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, GANTRY_SERVER: cluster.url, GANTRY_TOKEN: cluster.token, GANTRY_CONFIG: join(cluster.dir, 'cli.json') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code: code ?? 128, stdout, stderr });
  }));
  return { output: () => stdout + stderr, done };
}

describe('apply, waits and first start against real processes', () => {
  const cluster = new TestCluster();
  const node = `reliable-${cluster.id}`;
  const serverOutput = () => cluster.output.filter((l) => l.startsWith('[server]')).join('\n');

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '31800-31849', dockerSocket: join(cluster.dir, 'no-docker.sock') });
  });
  after(async () => {
    // Process instances outlive their agent by design: remove what a failed test left running.
    const left = await (cluster.api('GET', '/v1/apps') as Promise<{ apps: { name: string }[] }>).catch(() => ({ apps: [] }));
    for (const { name } of left.apps) await cluster.cli(['rm', name, '--timeout', '30s']);
    await cluster.close();
  });

  test('gantry server: the first start prints the admin token once and how to use it, and writes no CLI config', () => {
    const text = serverOutput();
    assert.match(text, /This is the first start\. The admin token, shown only this once:/);
    assert.equal(text.split(cluster.token).length - 1, 1, `the token is printed exactly once:\n${text}`);
    assert.match(text, new RegExp(`export GANTRY_SERVER=${cluster.url} GANTRY_TOKEN=<the token above>`));
    assert.match(text, new RegExp(`CLI's config file, ${join(cluster.dir, 'cli.json')}`));
    assert.doesNotMatch(text, /It is saved for the gantry CLI/);
    assert.equal(existsSync(join(cluster.dir, 'cli.json')), false, 'gantry server wrote the CLI config');
  });

  test('re-applying an unchanged spec, as YAML or JSON, makes no release, no rollout and no event; a real change does; rollback goes to 1', async () => {
    const app = `same-${cluster.id}`;
    const yaml = `app: ${app}\nentrypoints:\n  web:\n    command: "sleep 1000"\n    replicas: 1\n    restart: always\n    stop: { grace: 1s, drain: 0s }\n`;
    const yamlFile = join(cluster.dir, 'same.yaml');
    const jsonFile = join(cluster.dir, 'same.json');
    writeFileSync(yamlFile, yaml);
    writeFileSync(jsonFile, JSON.stringify(parseYaml(yaml)));
    const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
    const releases = async () => ((await cluster.api('GET', `/v1/apps/${app}/releases`)) as { releases: ReleaseRecord[] }).releases;

    const created = await cluster.cli(['apply', '-f', yamlFile, '--timeout', '60s']);
    assert.equal(created.code, 0, created.stdout + created.stderr);
    assert.match(created.stdout, new RegExp(`^app ${app} created \\(release 1\\)$`, 'm'));
    const { updatedAt } = (await detail()).app;

    for (const file of [yamlFile, yamlFile, yamlFile, jsonFile]) {
      const again = await cluster.cli(['apply', '-f', file, '--timeout', '60s']);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.equal(again.stdout, `app ${app} unchanged (release 1)\napp ${app} already converged\n`, file);
    }
    for (const [contentType, body] of [['text/yaml', yaml], ['application/json', JSON.stringify(parseYaml(yaml))]] as const) {
      const response = await fetch(`${cluster.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': contentType }, body });
      assert.equal(response.status, 200, contentType);
      const answer = (await response.json()) as ApplyResponse;
      assert.deepEqual([answer.created, answer.changed, answer.app.release, answer.app.updatedAt], [false, false, 1, updatedAt], contentType);
    }
    assert.deepEqual((await releases()).map((r) => r.release), [1]);
    assert.equal(((await cluster.api('GET', `/v1/apps/${app}/rollout`)) as { rollout: unknown }).rollout, null);
    assert.equal((await detail()).app.updatedAt, updatedAt, 'the app record was written again');
    const { events } = (await cluster.api('GET', `/v1/events?app=${app}`)) as EventListResponse;
    assert.deepEqual(events.filter((e) => e.type.startsWith('app.')).map((e) => e.type), ['app.created']);

    writeFileSync(yamlFile, yaml.replace('    replicas: 1\n', '    replicas: 1\n    env: { MODE: changed }\n'));
    const changed = await cluster.cli(['apply', '-f', yamlFile, '--timeout', '60s']);
    assert.equal(changed.code, 0, changed.stdout + changed.stderr);
    assert.match(changed.stdout, new RegExp(`^app ${app} configured \\(release 2\\)$`, 'm'));
    assert.deepEqual((await releases()).map((r) => r.release), [1, 2]);

    const rollback = await cluster.cli(['rollback', app, '--timeout', '60s']);
    assert.equal(rollback.code, 0, rollback.stdout + rollback.stderr);
    assert.match(rollback.stdout, /release 3 rolls release 2 back to release 1/);
    const history = await releases();
    assert.deepEqual(history.map((r) => [r.release, r.note]), [[1, undefined], [2, undefined], [3, 'rollback to release 1']]);
    assert.deepEqual(history[2]!.spec, history[0]!.spec);
    const removed = await cluster.cli(['rm', app, '--timeout', '60s']);
    assert.equal(removed.code, 0, removed.stdout + removed.stderr);
  });

  test('gantry apply waits through a server restart (SIGKILL) and exits 0 once the app converged', async () => {
    const app = `restart-${cluster.id}`;
    const ready = join(cluster.dir, `${app}.ready`);
    // Healthy only once the test says so: the apply is still waiting when the server dies.
    const file = join(cluster.dir, 'restart.yaml');
    writeFileSync(file, `app: ${app}\nentrypoints:\n  web:\n    command: "sleep 1000"\n    replicas: 1\n    stop: { grace: 1s, drain: 0s }\n    health:\n      exec: { command: "test -e ${ready}" }\n      interval: 500ms\n      startPeriod: 10m\n`);
    const apply = startCli(cluster, ['apply', '-f', file, '--timeout', '90s']);
    await until('gantry apply to be waiting for the instance to be healthy', () => apply.output().includes('1/1 running  0/1 healthy') || apply.output().includes('0/1 running  0/1 healthy'), 60_000);
    try {
      await cluster.stopServer('SIGKILL');
      await until('gantry apply to notice the server is gone', () => apply.output().includes('lost the Gantry server'), 20_000);
      await sleep(2000);
    } finally {
      await cluster.startServer();
    }
    writeFileSync(ready, '');
    const result = await apply.done;
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}\n${cluster.output.slice(-40).join('\n')}`);
    assert.match(result.stdout, new RegExp(`^app ${app} created \\(release 1\\)$`, 'm'));
    // Refused if the CLI asked after the kill; reset if a request (its watch stream, a read) was open at that moment.
    assert.match(result.stdout, new RegExp(`^lost the Gantry server at ${cluster.url} \\((ECONNREFUSED|ECONNRESET)\\); retrying until the timeout`, 'm'));
    assert.match(result.stdout, new RegExp(`^the Gantry server at ${cluster.url} is back \\(away for `, 'm'));
    assert.match(result.stdout, /web {2}1\/1 running {2}1\/1 healthy\napp \S+ converged in /);
    assert.equal(result.stdout.split('lost the Gantry server').length - 1, 1, result.stdout);
    const removed = await cluster.cli(['rm', app, '--timeout', '60s']);
    assert.equal(removed.code, 0, removed.stdout + removed.stderr);
  });

  test('gantry rm waits through a server restart until the instances are gone', async () => {
    const app = `rm-${cluster.id}`;
    // SIGTERM ignored: each instance takes its 3s of grace to stop, time enough to restart the server in.
    const spec = `app: ${app}\nentrypoints:\n  web:\n    command: "trap '' TERM; while true; do sleep 1; done"\n    replicas: 2\n    stop: { grace: 3s, drain: 0s }\n`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const rm = startCli(cluster, ['rm', app, '--timeout', '90s']);
    await until('gantry rm to be accepted', () => rm.output().includes(`app ${app} removed`), 30_000);
    try {
      await cluster.stopServer('SIGKILL');
      await until('gantry rm to notice the server is gone', () => rm.output().includes('lost the Gantry server'), 20_000);
      await sleep(1000);
    } finally {
      await cluster.startServer();
    }
    const result = await rm.done;
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /is back \(away for /);
    assert.match(result.stdout, new RegExp(`^all instances of ${app} are gone`, 'm'));
    assert.equal(((await cluster.api('GET', `/v1/instances?app=${app}`)) as { instances: unknown[] }).instances.length, 0);
  });

  test('gantry up leaves a CLI config for another server alone, says so and how to reach this one, and runs on', async () => {
    const up = new TestCluster();
    try {
      up.port = await freePort();
      const config = join(up.dir, 'theirs.json');
      const theirs = `${JSON.stringify({ server: 'https://prod.example:7070', token: 'gty_prod_token' })}\n`;
      writeFileSync(config, theirs);
      const child = up.spawn('up', ['up', '--data-dir', join(up.dir, 'data'), '--port', String(up.port), '--node-name', `up-${up.id}`, '--docker-socket', join(up.dir, 'none.sock'), '--port-range', '31850-31859'], { GANTRY_CONFIG: config });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await until('gantry up to be ready', () => up.output.some((l) => l.includes('agent running as node')), 60_000);
      const text = up.output.join('\n');
      assert.match(text, /This is the first start\. The admin token, shown only this once:/);
      assert.match(text, new RegExp(`It is NOT saved for the gantry CLI: the config file ${config} points at another server \\(https://prod\\.example:7070\\), and is left as it is\\.`));
      assert.match(text, new RegExp(`export GANTRY_SERVER=${up.url} GANTRY_TOKEN=<the token above>`));
      assert.match(text, new RegExp(`or per command: gantry --server ${up.url} `));
      assert.equal(readFileSync(config, 'utf8'), theirs);
      assert.equal((await up.cli(['apps'])).code, 0, 'the server works with the token from the environment');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      await up.close();
    }
  });
});
