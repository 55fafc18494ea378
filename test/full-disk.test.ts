// A full disk under the store (reliability finding 2). The data directory is a small tmpfs the
// test mounts and fills with dd, so "no space left" is the kernel's real answer, not a mock.
// First the store alone: a write that finds no space fails whole with StoreFullError, uses no
// revision, reaches no watcher, stops the lease clock, and the store works again by itself once
// space is freed. Then a real server and agent: with the disk full, apply answers 503 with
// what to do, the server and the app it runs carry on, and after the space is freed a new apply
// converges without a restart.
//
// Mounting needs root: skipped without it, except under CI=true, where it must run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestCluster, until } from './helpers/cluster.js';
import { skipWithoutProgram } from './helpers/env.js';
import { openSqliteStore, type WatchEvent } from '../src/store/index.js';
import type { AppDetailResponse } from '../src/model/api.js';

const run = promisify(execFile);

function skipUnlessRoot(): string | false {
  const missing = skipWithoutProgram('mount', 'mount') || skipWithoutProgram('dd', 'coreutils');
  if (missing) return missing;
  if (process.getuid?.() === 0) return false;
  if (process.env.CI === 'true') throw new Error('CI runs the tests as root: this one mounts a small tmpfs (mount -t tmpfs) and fills it');
  return 'mounting a tmpfs to fill needs root';
}
const skip = skipUnlessRoot();

/** A small tmpfs of the test's own, to fill and empty again. */
class Tmpfs {
  readonly dir = mkdtempSync(join(tmpdir(), 'gantry-full-'));
  private mounted = false;

  async mount(size: string): Promise<void> {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', this.dir]);
    this.mounted = true;
  }

  /** Fills it: dd writes until the kernel says no space is left (dd then exits non-zero). */
  async fill(): Promise<void> {
    await run('dd', ['if=/dev/zero', `of=${join(this.dir, 'filler')}`, 'bs=64k']).then(
      () => assert.fail('dd ended without filling the tmpfs'),
      (err: { stderr?: string }) => assert.match(err.stderr ?? '', /No space left on device/),
    );
    const fs = statfsSync(this.dir);
    assert.equal(fs.bavail, 0, 'the tmpfs is full');
  }

  unfill(): void {
    rmSync(join(this.dir, 'filler'), { force: true });
  }

  /** Lazily, so that a process still holding a file there cannot keep it (or fail the test run). */
  async unmount(): Promise<void> {
    if (this.mounted) await run('umount', ['-l', this.dir]).catch((err: Error) => console.error(`umount -l ${this.dir}: ${err.message}`));
    this.mounted = false;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('the store on a full disk', { skip }, () => {
  const tmpfs = new Tmpfs();
  before(() => tmpfs.mount('2m'));
  after(() => tmpfs.unmount());

  test('a write that finds no space fails whole with StoreFullError, changes nothing, stops the lease clock; the store then recovers by itself', async () => {
    const said: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => void said.push(args.map(String).join(' '));
    const store = openSqliteStore(join(tmpfs.dir, 'store.db'), { leaseCheckIntervalMs: 20 });
    try {
      await store.put('/a', '1');
      const lease = await store.grantLease(300);
      await store.put('/leased', 'x', { lease });
      const seen: WatchEvent[] = [];
      const watcher = store.watch('/', (events) => seen.push(...events));

      await tmpfs.fill();
      const full = { name: 'StoreFullError', statusCode: 503, message: `store full: free space on ${tmpfs.dir}` };
      const revision = await store.revision();
      await assert.rejects(store.txn({ compare: [], success: [{ type: 'put', key: '/b', value: '1' }, { type: 'put', key: '/c', value: 'y'.repeat(64 * 1024) }] }), full);
      await assert.rejects(store.put('/d', '1'), full);
      await assert.rejects(store.keepAlive(lease), full);
      assert.equal(await store.revision(), revision, 'the failed writes used no revision');
      assert.equal(await store.get('/b'), undefined, 'nothing of the failed transaction landed');

      // No holder can keep a lease alive now: it must not expire meanwhile (nor right after).
      await sleep(700);
      assert.equal((await store.get('/leased'))?.value, 'x');
      assert.equal(await store.leaseTimeToLive(lease), 300, 'the lease clock is stopped');
      assert.equal(said.filter((line) => /lease expiry failed/.test(line)).length, 1, `the reaper's failure is said once, not every tick:\n${said.join('\n')}`);

      tmpfs.unfill();
      assert.equal(await store.put('/e', '1'), revision + 1, 'the next write lands, with the next revision');
      const left = await store.leaseTimeToLive(lease);
      assert.ok(left !== undefined && left > 0 && left <= 300, `the lease got its TTL back and its clock runs again (${left} ms left)`);
      assert.equal((await store.get('/leased'))?.value, 'x');
      // Not kept alive any more: it expires as any lease does.
      const deadline = Date.now() + 2000;
      while ((await store.get('/leased')) !== undefined) {
        assert.ok(Date.now() < deadline, 'the lease expires once its clock runs again');
        await sleep(20);
      }
      await sleep(50);
      watcher.close();
      assert.deepEqual(
        seen.map((e) => [e.type, e.kv.key, e.revision]),
        [
          ['put', '/e', revision + 1],
          ['delete', '/leased', revision + 2],
        ],
        'watchers heard only of the writes that landed, at consecutive revisions',
      );
      assert.ok(said.some((line) => /lease expiry works again/.test(line)), said.join('\n'));
    } finally {
      console.error = consoleError;
      await store.close();
    }
  });
});

describe('a server whose data directory fills up', { skip }, () => {
  const tmpfs = new Tmpfs();
  const cluster = new TestCluster();
  const app = `full-${cluster.id}`;
  const node = `full-${cluster.id}`;
  let serverPid = 0;
  let first: { id: string; pid: number; port: number } | undefined;

  const spec = (greeting: string) =>
    JSON.stringify({
      app,
      env: 'dev',
      entrypoints: {
        web: {
          command: ['node', '-e', "require('http').createServer((q, s) => s.end(process.env.GREETING + ' from ' + process.env.GANTRY_INSTANCE + '\\n')).listen(process.env.PORT)"],
          env: { GREETING: greeting },
          replicas: 1,
          resources: { cpu: 0.1, memory: '64Mi' },
          ports: [{ name: 'http' }],
          health: { http: { port: 'http', path: '/' }, interval: '1s', timeout: '1s' },
        },
      },
    });
  const request = async (method: string, path: string, body?: string) => {
    const res = await fetch(`${cluster.url}${path}`, { method, headers: { authorization: `Bearer ${cluster.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as { error?: string } };
  };
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const registered = async () => ((await cluster.api('GET', `/v1/registry?app=${app}`)) as { endpoints: { id: string }[] }).endpoints.map((e) => e.id);
  const answers = async (port: number) => (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).text();
  const pidAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const serverRunning = () => cluster.server !== undefined && cluster.server.exitCode === null && cluster.server.signalCode === null && cluster.server.pid === serverPid;

  before(async () => {
    await tmpfs.mount('4m');
    // A registry TTL of 3 s (agents heartbeat every second): the outage below outlasts it.
    await cluster.startServer({ dataDir: tmpfs.dir, registryTtl: 3 });
    serverPid = cluster.server!.pid!;
    await cluster.startAgent({ name: node, portRange: '30700-30749', dockerSocket: join(cluster.dir, 'no-docker.sock') });
  });

  after(async () => {
    try {
      tmpfs.unfill();
      await cluster.cli(['rm', app, '--timeout', '30s']);
      await cluster.close();
    } finally {
      await tmpfs.unmount();
    }
  });

  test('a process app runs, its store on the tmpfs', async () => {
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec('v1') });
    assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
    const [instance] = (await detail()).instances;
    assert.equal(instance?.status?.state, 'running');
    first = { id: instance.id, pid: Number(instance.status.runtimeId!.replace('pid:', '')), port: instance.ports[0]!.host };
    assert.equal(await answers(first.port), `v1 from ${first.id}\n`);
    await until('its endpoint in the registry', async () => (await registered()).includes(first!.id));
  });

  test('with the disk full, apply answers 503 "store full: free space on <dir>"; the server and the app carry on', async () => {
    assert.ok(first, 'the app ran');
    await tmpfs.fill();
    // A write that failed part-way may have left room in the store's log for a smaller one:
    // harmless writes take it, until one is refused too.
    let refused: { status: number; body: { error?: string } } | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const res = await request('POST', '/v1/tokens', JSON.stringify({ name: `filler-${i}`, role: 'admin' }));
      if (res.status !== 201) refused = res;
    }
    const message = `store full: free space on ${tmpfs.dir}`;
    assert.deepEqual(refused, { status: 503, body: { error: message } });

    const applied = await request('POST', '/v1/apps', spec('v2'));
    assert.deepEqual(applied, { status: 503, body: { error: message } }, 'apply of a changed spec');
    const cli = await cluster.cli(['apply', '-f', '-', '--no-wait'], { input: spec('v2') });
    assert.equal(cli.code, 1, cli.stdout + cli.stderr);
    assert.match(cli.stderr, new RegExp(`error: ${message}`));

    // More writes, and a few reconcile periods (1 s), and longer than the registry TTL (3 s).
    for (const [method, path, body] of [['POST', '/v1/apps', spec('v3')], ['POST', `/v1/apps/${app}/entries/web/scale`, JSON.stringify({ replicas: 2 })], ['POST', `/v1/apps/${app}/stop`, undefined]] as const) {
      assert.deepEqual(await request(method, path, body), { status: 503, body: { error: message } }, `${method} ${path}`);
    }
    await sleep(6000);

    assert.ok(serverRunning(), `the server process is still the one started:\n${cluster.output.join('\n')}`);
    assert.equal((await request('GET', '/healthz')).status, 200);
    assert.ok(pidAlive(first.pid), 'the app process still runs');
    assert.equal(await answers(first.port), `v1 from ${first.id}\n`);
    const { app: record, instances } = await detail();
    assert.equal(record.release, 1);
    assert.equal(record.stopped, false);
    assert.deepEqual(instances.map((i) => [i.id, i.desired, i.status?.state]), [[first.id, 'running', 'running']]);
    assert.deepEqual(await registered(), [first.id], 'no heartbeat could keep the registry lease alive, yet the endpoint stays');
    // Whatever failed over and over (lease checks, heartbeats, the reconcile pass) is said once per reason.
    const failures = cluster.output.filter((line) => line.startsWith('[server]') && /failed/.test(line));
    assert.equal(new Set(failures).size, failures.length, `a failure said more than once:\n${failures.join('\n')}`);
  });

  test('once space is freed, a new apply succeeds and converges, without a restart', async () => {
    assert.ok(first, 'the app ran');
    tmpfs.unfill();
    // The registry lease gets its TTL back with the first write that lands: the endpoint never
    // leaves the registry (discovery front ends would drop the app until the next heartbeat).
    for (const end = Date.now() + 2500; Date.now() < end; await sleep(50)) assert.deepEqual(await registered(), [first.id], 'the endpoint stays registered');
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec('v2') });
    assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}\n${cluster.output.slice(-40).join('\n')}`);
    assert.match(applied.stdout, /configured \(release 2\)/);
    const { instances } = await until('only release 2 left', async () => {
      const d = await detail();
      return d.instances.length === 1 && d.instances[0]!.release === 2 && d.instances[0]!.status?.state === 'running' ? d : undefined;
    });
    assert.equal(await answers(instances[0]!.ports[0]!.host), `v2 from ${instances[0]!.id}\n`);
    assert.ok(serverRunning(), 'the same server process, never restarted');
  });
});
