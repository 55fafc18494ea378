// Gantry's state is private to the user it runs as (directories 0700, files 0600), also when an older
// version left it 0755/0644; and a failing agent cache write (ENOTDIR, EISDIR, EMFILE) never throws.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { AgentCache } from '../src/agent/cache.js';
import { ensurePrivateDir } from '../src/host/private-files.js';
import type { Instance } from '../src/model/types.js';
import { ProcessRuntime } from '../src/runtime/process.js';
import type { RunSpec } from '../src/runtime/runtime.js';
import { openStore } from '../src/store/index.js';

const root = mkdtempSync(join(tmpdir(), 'gantry-modes-'));
after(() => rmSync(root, { recursive: true, force: true }));

const modeOf = (path: string) => statSync(path).mode & 0o777;
const octal = (mode: number) => mode.toString(8).padStart(4, '0');

function assertMode(path: string, mode: number): void {
  assert.equal(octal(modeOf(path)), octal(mode), `${path}`);
}

/** A directory as an older version (umask 022) made it: 0755. */
function oldDir(path: string): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, 0o755);
  return path;
}

/** A file as an older version made it: 0644. */
function oldFile(path: string, content: string): string {
  writeFileSync(path, content);
  chmodSync(path, 0o644);
  return path;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('store: the data dir (made private as the server does), db, -wal and -shm of an older version become 0700/0600', async () => {
  const dataDir = oldDir(join(root, 'server-data'));
  const dbPath = join(dataDir, 'gantry.db');
  // An older Gantry still has the db open (WAL): -wal and -shm exist, all 0644.
  const old = new Database(dbPath);
  try {
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE old_version (x); INSERT INTO old_version VALUES (1)');
    for (const path of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
      assert.ok(existsSync(path), path);
      chmodSync(path, 0o644);
    }
    ensurePrivateDir(dataDir); // startServer's first step
    const store = openStore(`sqlite:${dbPath}`);
    try {
      await store.put('secret', 'SECRET=hunter2');
      assertMode(dataDir, 0o700);
      for (const path of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) assertMode(path, 0o600);
    } finally {
      await store.close();
    }
  } finally {
    old.close();
  }
});

test('store: a new db in new dirs is 0600 with 0700 dirs; SQLite gives its -wal and -shm the db file mode', async () => {
  const dbDir = join(root, 'fresh', 'nested', 'store');
  const dbPath = join(dbDir, 'x.db');
  const store = openStore(`sqlite:${dbPath}`);
  try {
    await store.put('a', 'b');
    for (const dir of [join(root, 'fresh'), join(root, 'fresh', 'nested'), dbDir]) assertMode(dir, 0o700);
    for (const path of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
      assert.ok(existsSync(path), path);
      assertMode(path, 0o600);
    }
  } finally {
    await store.close();
  }
});

test('store: a directory the user named that exists is left alone, only the db files become 0600', async () => {
  const shared = oldDir(join(root, 'shared'));
  const other = oldFile(join(shared, 'someone-elses.txt'), 'x');
  const dbPath = join(shared, 'x.db');
  const store = openStore(dbPath);
  try {
    await store.put('a', 'b');
    assertMode(shared, 0o755);
    assertMode(other, 0o644);
    for (const path of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) assertMode(path, 0o600);
  } finally {
    await store.close();
  }
});

test('agent cache: an older version\'s dir and files become 0700/0600 when it opens; new files are 0600', () => {
  const dir = oldDir(join(root, 'agent-old'));
  const files = ['assignments.json', 'statuses.json', 'boot.json'].map((name) => oldFile(join(dir, name), '[]'));
  oldFile(join(dir, 'boot.json'), JSON.stringify({ bootId: 'b1' }));
  const cache = new AgentCache(dir, { log: (m) => assert.fail(m) });
  assertMode(dir, 0o700);
  for (const path of files) assertMode(path, 0o600);
  assert.equal(cache.rebootedSinceLastRun('b1'), false);
  assertMode(join(dir, 'boot.json'), 0o600);

  const fresh = join(root, 'agent-new', 'agent');
  const created = new AgentCache(fresh, { log: (m) => assert.fail(m) });
  assert.equal(created.saveStatuses([]), true);
  assert.equal(created.saveAssignments([{ id: 'a', env: { SECRET: 'x' } } as unknown as Instance]), true);
  assertMode(join(root, 'agent-new'), 0o700);
  assertMode(fresh, 0o700);
  for (const name of ['assignments.json', 'statuses.json']) assertMode(join(fresh, name), 0o600);
  assert.equal(existsSync(join(fresh, 'assignments.json.tmp')), false);
});

test('process runtime: an older version\'s state becomes private on probe; a new instance\'s dir, record and logs too', async () => {
  const stateDir = oldDir(join(root, 'process'));
  const oldInstance = oldDir(join(stateDir, 'old-1'));
  const oldFiles = ['record.json', 'stdout.log', 'stderr.log', 'stdout.log.1', 'exit'].map((name) => oldFile(join(oldInstance, name), '{}'));
  const theirs = oldFile(join(oldInstance, 'written-by-the-instance.txt'), 'x'); // its working dir: its own files stay
  const volumes = oldDir(join(stateDir, '_volumes'));
  const volumesOfOld = oldDir(join(volumes, 'old-1'));
  const volume = oldDir(join(volumesOfOld, 'data'));
  const cgroupRoot = mkdtempSync(join(root, 'nocgroup-'));
  const rt = new ProcessRuntime({ stateDir, cgroupRoot, logCheckMs: 60_000, logMaxBytes: 64 });
  const id = `modes-${process.pid}`;
  try {
    assert.deepEqual(await rt.probe(), { ok: true });
    for (const dir of [stateDir, oldInstance, volumes, volumesOfOld]) assertMode(dir, 0o700);
    for (const path of oldFiles) assertMode(path, 0o600);
    assertMode(theirs, 0o644);
    assertMode(volume, 0o755); // the instance's data

    const spec: RunSpec = {
      instanceId: id, app: 'demo', appEnv: 'test', entry: 'web', release: 1, args: [],
      // Ignores TERM, so stop() has to SIGKILL it and writes the exit file itself.
      command: ['sh', '-c', 'trap "" TERM; i=0; while [ $i -lt 20 ]; do echo "line $i of output"; i=$((i+1)); done; echo err >&2; sleep 30'],
      env: { DB_PASSWORD: 'hunter2' }, cpu: 0, memoryBytes: 0, ports: [], labels: {},
      volumes: [{ name: 'cache', path: '/cache' }],
    };
    const { instance } = await rt.start(spec);
    assert.equal(instance.state, 'running');
    const dir = join(stateDir, id);
    const record = join(dir, 'record.json');
    assert.match(readFileSync(record, 'utf8'), /hunter2/);
    assertMode(dir, 0o700);
    assertMode(record, 0o600);
    for (const name of ['stdout.log', 'stderr.log']) assertMode(join(dir, name), 0o600);
    assertMode(join(volumes, id), 0o700);
    // Rotation writes stdout.log.1, 0600 too.
    for (let i = 0; i < 200 && !(readFileSync(join(dir, 'stdout.log'), 'utf8').includes('line 19')); i++) await sleep(25);
    await rt.capLogs();
    assertMode(join(dir, 'stdout.log.1'), 0o600);
    await rt.stop(id, 'TERM', 300);
    assertMode(join(dir, 'exit'), 0o600);
    assert.equal((await rt.inspect(id))?.exitCode, 137);
    // Rewriting the record (new cores of an exited instance: only the record changes) makes a 0600 one.
    chmodSync(record, 0o644);
    await rt.updateCpuset(id, [0]);
    assert.deepEqual((JSON.parse(readFileSync(record, 'utf8')) as { spec: RunSpec }).spec.cpuset, [0]);
    assertMode(record, 0o600);
    assertMode(dir, 0o700);
  } finally {
    await rt.remove(id).catch(() => undefined);
    await rt.close();
  }
});

test('agent cache: a failing write does not throw, keeps the old file, is reported once, and the next write retries', () => {
  const dir = join(root, 'agent-fail');
  const logs: string[] = [];
  const cache = new AgentCache(dir, { log: (m) => logs.push(m) });
  const v = (id: string) => [{ id }] as unknown as Instance[];
  const stored = () => JSON.parse(readFileSync(join(dir, 'assignments.json'), 'utf8')) as { id: string }[];
  cache.saveAssignments(v('v1'));
  assert.deepEqual(stored(), [{ id: 'v1' }]);
  // The temp file's path is taken by a directory: the write cannot happen (EISDIR).
  mkdirSync(join(dir, 'assignments.json.tmp', 'blocker'), { recursive: true });
  assert.equal(cache.saveAssignments(v('v2')), false);
  assert.equal(cache.saveAssignments(v('v3')), false);
  assert.deepEqual(stored(), [{ id: 'v1' }]);
  assert.equal(logs.length, 1, logs.join('\n'));
  assert.match(logs[0] ?? '', /cannot write the agent cache file .*assignments\.json: EISDIR/);
  rmSync(join(dir, 'assignments.json.tmp'), { recursive: true });
  assert.equal(cache.saveAssignments(v('v4')), true);
  assert.deepEqual(stored(), [{ id: 'v4' }]);
  assertMode(join(dir, 'assignments.json'), 0o600);
  assert.equal(logs.length, 2);
  assert.match(logs[1] ?? '', /written again/);
});

test('agent cache: a cache dir whose parent is a regular file (ENOTDIR) fails softly until the file is gone', () => {
  const parent = join(root, 'not-a-dir');
  writeFileSync(parent, 'x');
  const dir = join(parent, 'agent');
  const logs: string[] = [];
  const cache = new AgentCache(dir, { log: (m) => logs.push(m) });
  assert.equal(cache.saveStatuses([]), false);
  assert.equal(cache.saveAssignments([]), false);
  assert.equal(cache.rebootedSinceLastRun('b'), false);
  assert.equal(logs.length, 1, logs.join('\n'));
  assert.match(logs[0] ?? '', /ENOTDIR/);
  rmSync(parent);
  assert.equal(cache.saveAssignments([]), true);
  assertMode(parent, 0o700);
  assertMode(dir, 0o700);
  assertMode(join(dir, 'assignments.json'), 0o600);
});

test('agent cache: out of file descriptors (EMFILE, in a child process) the save fails softly and the process lives on', () => {
  const dir = join(root, 'agent-emfile');
  const cacheModule = pathToFileURL(resolve('src/agent/cache.ts')).href;
  const script = `
    import { closeSync, openSync, readFileSync } from 'node:fs';
    const { AgentCache } = await import(${JSON.stringify(cacheModule)});
    const logs = [];
    const cache = new AgentCache(process.env.CACHE_DIR, { log: (m) => logs.push(m) });
    const before = cache.saveAssignments([{ id: 'before' }]);
    const fds = [];
    let code;
    for (;;) {
      try { fds.push(openSync('/dev/null', 'r')); } catch (err) { code = err.code; break; }
    }
    const during = [cache.saveAssignments([{ id: 'during' }]), cache.saveStatuses([]), cache.saveAssignments([{ id: 'again' }])];
    for (const fd of fds) closeSync(fd);
    const stored = JSON.parse(readFileSync(process.env.CACHE_DIR + '/assignments.json', 'utf8'));
    const afterwards = cache.saveAssignments([{ id: 'after' }]);
    console.log(JSON.stringify({ code, opened: fds.length, before, during, stored, afterwards, logs }));
  `;
  // Node raises the soft limit to the hard one at start: lower both, for the child only.
  const child = spawnSync('/bin/sh', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, CACHE_DIR: dir }, encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  const out = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as {
    code: string; opened: number; before: boolean; during: boolean[]; stored: { id: string }[]; afterwards: boolean; logs: string[];
  };
  assert.equal(out.code, 'EMFILE');
  assert.ok(out.opened > 0 && out.opened < 256);
  assert.equal(out.before, true);
  assert.deepEqual(out.during, [false, false, false]);
  assert.deepEqual(out.stored, [{ id: 'before' }]);
  assert.equal(out.afterwards, true);
  assert.equal(out.logs.length, 2, out.logs.join('\n'));
  assert.match(out.logs[0] ?? '', /EMFILE/);
  assert.match(out.logs[1] ?? '', /written again/);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'assignments.json'), 'utf8')), [{ id: 'after' }]);
  assertMode(join(dir, 'assignments.json'), 0o600);
});
