// The process runtime for real: host processes, the sh wrapper, adoption by a new agent, cgroups, logs.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { cgroupsOfPid, childrenOf, detectCgroups, procStat } from '../src/runtime/cgroups.js';
import { ProcessRuntime } from '../src/runtime/process.js';
import type { LogLine, RunSpec } from '../src/runtime/runtime.js';

const stateDir = mkdtempSync(join(tmpdir(), 'gantry-process-'));
const emptyCgroupRoot = mkdtempSync(join(tmpdir(), 'gantry-nocgroup-'));
const cgroupRoot = '/sys/fs/cgroup';
const cgroupParent = `gantry-test-${process.pid}`;
const rt = new ProcessRuntime({ stateDir, cgroupParent, logCheckMs: 60_000 });
const ids = new Set<string>();
let seq = 0;

function spec(command: string[], extra: Partial<RunSpec> = {}): RunSpec {
  const instanceId = `t${process.pid}-${++seq}`;
  ids.add(instanceId);
  return {
    instanceId, app: 'demo', appEnv: 'test', entry: 'web', release: 1, command, args: [], env: {},
    cpu: 0, memoryBytes: 0, ports: [], labels: { team: 'qa' }, ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const exited = (runtime: ProcessRuntime, id: string) =>
  waitFor(`${id} to exit`, async () => {
    const inst = await runtime.inspect(id);
    return inst?.state === 'exited' ? inst : undefined;
  });

const pidOf = (runtimeId: string) => Number(runtimeId.replace('pid:', ''));
/** `<RFC 3339 UTC, µs> <line>` or, for a piece of a line, `<time>+<piece>`: what the log writer writes. */
const RECORD = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z[ +]/;
/** A log file's text without the times (pieces joined); throws on a line that is not a record. */
function unstamped(text: string): string {
  return text.split(/(?<=\n)/).map((record) => {
    assert.match(record, RECORD, `a log record: ${JSON.stringify(record)}`);
    return record[27] === '+' ? record.slice(28).replace(/\n$/, '') : record.slice(28);
  }).join('');
}
const stdoutOf = async (id: string) => unstamped(await readFile(join(stateDir, id, 'stdout.log'), 'utf8'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function collect(stream: Readable, until: (lines: LogLine[]) => boolean, timeoutMs = 5000): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`log stream: got ${JSON.stringify(lines)}`)), timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      resolve(lines);
    };
    stream.on('data', (line: LogLine) => {
      lines.push(line);
      if (until(lines)) finish();
    });
    stream.on('end', finish);
    stream.on('error', reject);
  });
}

after(async () => {
  for (const id of ids) await rt.remove(id).catch(() => undefined);
  await rt.close();
  await rm(stateDir, { recursive: true, force: true });
  await rm(emptyCgroupRoot, { recursive: true, force: true });
  for (const dir of [join(cgroupRoot, 'cpu'), join(cgroupRoot, 'memory'), join(cgroupRoot, 'cpuset'), cgroupRoot]) {
    await rmdir(join(dir, cgroupParent)).catch(() => undefined);
  }
});

test('probe: the process runtime is available on Linux', async () => {
  assert.deepEqual(await rt.probe(), { ok: true });
});

test('serves HTTP on its assigned port with PORT, PORT_<NAME> and spec env; exec runs beside it', async () => {
  const port = await freePort();
  const server = `require('http').createServer((q, s) => s.end([process.env.GREETING, process.env.PORT_WEB_UI, process.cwd()].join(' '))).listen(process.env.PORT, '127.0.0.1')`;
  const s = spec([process.execPath, '-e', server], {
    env: { GREETING: 'hello world' }, ports: [{ name: 'web-ui', host: port, protocol: 'tcp' }],
  });
  const { instance, warnings } = await rt.start(s);
  assert.equal(instance.state, 'running');
  assert.match(instance.runtimeId, /^pid:\d+$/);
  assert.deepEqual(warnings, []);
  assert.equal(instance.labels['gantry.instance'], s.instanceId);
  assert.equal(instance.labels.team, 'qa');
  const body = await waitFor('HTTP answer', () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.text()));
  assert.equal(body, `hello world ${port} ${join(stateDir, s.instanceId)}`);

  const res = await rt.exec(s.instanceId, ['sh', '-c', 'echo "$PORT $GREETING"; pwd; echo oops >&2; exit 2'], 5000);
  assert.equal(res.exitCode, 2);
  assert.equal(res.output.split('\n').sort().join('|'), ['', `${port} hello world`, join(stateDir, s.instanceId), 'oops'].sort().join('|'));
  const slow = await rt.exec(s.instanceId, ['sleep', '10'], 200);
  assert.equal(slow.exitCode, 124);
  assert.match(slow.output, /timed out/);
  const missing = await rt.exec(s.instanceId, ['no-such-command-gantry'], 1000);
  assert.equal(missing.exitCode, 127);
  const big = await rt.exec(s.instanceId, ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x'], 5000);
  assert.ok(big.output.length < 70 * 1024 && /truncated/.test(big.output));
  await rt.stop(s.instanceId, 'SIGTERM', 2000);
  assert.equal((await rt.inspect(s.instanceId))?.state, 'exited');
});

test('captures the exit code; restart runs the same command again in the same dir', async () => {
  const s = spec(['sh', '-c', 'echo run; exit 7']);
  const first = (await rt.start(s)).instance;
  const done = await exited(rt, s.instanceId);
  assert.equal(done.exitCode, 7);
  assert.equal(done.oomKilled, false);
  assert.equal(typeof done.finishedAt, 'number');
  const again = await rt.restart(s.instanceId);
  assert.notEqual(again.runtimeId, first.runtimeId);
  assert.equal((await exited(rt, s.instanceId)).exitCode, 7);
  assert.equal(await stdoutOf(s.instanceId), 'run\nrun\n');
});

test('stop: TERM reaches a trapping command, which exits within the grace period', async () => {
  const s = spec(['sh', '-c', 'trap "echo bye; exit 3" TERM; echo ready; while :; do sleep 0.1; done']);
  await rt.start(s);
  await waitFor('ready', async () => (await stdoutOf(s.instanceId)).includes('ready'));
  const t0 = Date.now();
  await rt.stop(s.instanceId, 'TERM', 5000);
  assert.ok(Date.now() - t0 < 2000, 'stopped well before the grace period');
  const inst = await rt.inspect(s.instanceId);
  assert.equal(inst?.state, 'exited');
  assert.equal(inst?.exitCode, 3);
  assert.match(await stdoutOf(s.instanceId), /bye/);
});

test('stop: INT and QUIT are not inherited as ignored by the command', async () => {
  for (const [sig, code] of [['INT', 4], ['QUIT', 5]] as const) {
    const s = spec(['sh', '-c', `trap "exit ${code}" ${sig}; echo ready; while :; do sleep 0.1; done`]);
    await rt.start(s);
    await waitFor('ready', async () => (await stdoutOf(s.instanceId)).includes('ready'));
    await rt.stop(s.instanceId, sig, 3000);
    assert.equal((await rt.inspect(s.instanceId))?.exitCode, code, sig);
  }
});

test('stop: a TERM-ignoring command is SIGKILLed after the grace period', async () => {
  const s = spec(['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done']);
  await rt.start(s);
  await waitFor('ready', async () => (await stdoutOf(s.instanceId)).includes('ready'));
  const t0 = Date.now();
  await rt.stop(s.instanceId, 'SIGTERM', 500);
  const took = Date.now() - t0;
  assert.ok(took >= 500 && took < 3000, `took ${took} ms`);
  const inst = await rt.inspect(s.instanceId);
  assert.equal(inst?.state, 'exited');
  assert.equal(inst?.exitCode, 137);
});

test('signals: the wrapper forwards what it alone gets; a group signal reaches the command once', async () => {
  const s = spec(['sh', '-c', 'trap "echo usr1" USR1; echo ready; while :; do sleep 0.05; done']);
  const { instance } = await rt.start(s);
  await waitFor('ready', async () => (await stdoutOf(s.instanceId)).includes('ready'));
  process.kill(pidOf(instance.runtimeId), 'SIGUSR1'); // the wrapper only
  await waitFor('forwarded USR1', async () => (await stdoutOf(s.instanceId)).includes('usr1'));
  await rt.stop(s.instanceId, 'USR1', 400); // the whole group; then SIGKILL as it does not exit
  const count = (await stdoutOf(s.instanceId)).split('\n').filter((l) => l === 'usr1').length;
  assert.equal(count, 2);
});

test('adoption: a new agent finds the running instance, stops it and reads its exit code', async () => {
  const s = spec(['sh', '-c', 'trap "exit 5" TERM; echo ready; while :; do sleep 0.1; done']);
  // The first agent is another Node process that starts the instance and exits.
  const script = `
    import { ProcessRuntime } from ${JSON.stringify(new URL('../src/runtime/process.ts', import.meta.url).href)};
    const rt = new ProcessRuntime({ stateDir: ${JSON.stringify(stateDir)}, cgroupParent: ${JSON.stringify(cgroupParent)} });
    const { instance } = await rt.start(${JSON.stringify(s)});
    await rt.close();
    console.log(instance.runtimeId);`;
  const first = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(first.status, 0, first.stderr);
  const runtimeId = first.stdout.trim();
  const pid = pidOf(runtimeId);

  const second = new ProcessRuntime({ stateDir, cgroupParent });
  try {
    // Its trap is set (a TERM before would just kill it), and its log writer outlived the first agent.
    await waitFor('ready', async () => (await stdoutOf(s.instanceId)).includes('ready'));
    const found = (await second.list()).find((i) => i.instanceId === s.instanceId);
    assert.equal(found?.state, 'running');
    assert.equal(found?.runtimeId, runtimeId, 'same pid: adopted, not restarted');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    assert.notEqual(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), process.pid, 'not our child');
    // A generous grace: on a loaded machine the shell may take a while to run its trap; past it the stop is a SIGKILL (137).
    await second.stop(s.instanceId, 'TERM', 10_000);
    const inst = await second.inspect(s.instanceId);
    assert.equal(inst?.state, 'exited');
    assert.equal(inst?.exitCode, 5);
  } finally {
    await second.close();
  }
});

const cgroups = await detectCgroups(cgroupRoot);
const noCgroups = process.getuid?.() !== 0 ? 'not root' : cgroups.version === null ? cgroups.reason : false;

test('limits: cpu and memory cgroups, inherited by the command; remove cleans up everything', { skip: noCgroups }, async () => {
  const s = spec(['sleep', '30'], { cpu: 0.5, memoryBytes: 64 * 1024 * 1024 });
  const { instance, warnings } = await rt.start(s);
  assert.deepEqual(warnings, []);
  const wrapper = pidOf(instance.runtimeId);
  const [command] = await waitFor('the command', async () => {
    const kids = await childrenOf(wrapper);
    return kids.length > 0 && (await readFile(`/proc/${kids[0]}/comm`, 'utf8')).trim() === 'sleep' ? kids : undefined;
  });
  assert.ok(command);
  const paths = await cgroupsOfPid(command);
  const cgDirs: string[] = [];
  if (cgroups.version === 1) {
    const mem = join(cgroupRoot, 'memory', paths.get('memory') ?? '?');
    const cpu = join(cgroupRoot, 'cpu', paths.get('cpu') ?? '?');
    assert.equal(paths.get('memory'), `/${cgroupParent}/${s.instanceId}`);
    assert.equal((await readFile(join(mem, 'memory.limit_in_bytes'), 'utf8')).trim(), String(64 * 1024 * 1024));
    assert.equal((await readFile(join(cpu, 'cpu.cfs_quota_us'), 'utf8')).trim(), '50000');
    assert.equal((await readFile(join(cpu, 'cpu.cfs_period_us'), 'utf8')).trim(), '100000');
    cgDirs.push(mem, cpu);
  } else {
    const dir = join(cgroupRoot, paths.get('') ?? '?');
    assert.equal((await readFile(join(dir, 'memory.max'), 'utf8')).trim(), String(64 * 1024 * 1024));
    assert.equal((await readFile(join(dir, 'cpu.max'), 'utf8')).trim(), '50000 100000');
    cgDirs.push(dir);
  }
  await rt.remove(s.instanceId);
  // Gone, or a zombie until init reaps it (its parent, the wrapper, was killed first).
  const gone = async (pid: number) => ['Z', undefined].includes((await procStat(pid))?.state);
  assert.ok(await gone(wrapper), 'wrapper gone');
  assert.ok(await gone(command), 'command gone');
  for (const dir of cgDirs) assert.equal(existsSync(dir), false, `${dir} removed`);
  assert.equal(existsSync(join(stateDir, s.instanceId)), false, 'state dir removed');
  assert.equal(await rt.inspect(s.instanceId), undefined);
  await rt.remove(s.instanceId); // idempotent
});

/** Cpus_allowed_list of a process, from /proc/<pid>/status. */
async function cpusAllowed(pid: number): Promise<string | undefined> {
  return /^Cpus_allowed_list:\s*(\S+)$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
}

async function commandOf(wrapper: number, comm: string): Promise<number> {
  const [command] = await waitFor(`the ${comm} command`, async () => {
    const kids = await childrenOf(wrapper);
    return kids.length > 0 && (await readFile(`/proc/${kids[0]}/comm`, 'utf8')).trim() === comm ? kids : undefined;
  });
  assert.ok(command);
  return command;
}

const noCpuset = noCgroups || (cgroups.version === 1 && !existsSync(join(cgroupRoot, 'cpuset', 'cgroup.procs')) ? 'no cpuset controller' : false);

test('cpuset: cores and shares in cgroups; updateCpuset re-pins the running command; remove cleans up', { skip: noCpuset }, async () => {
  const s = spec(['sleep', '30'], { cpu: 0.5, cpuset: [1], cpuShares: 512 });
  const { instance, warnings } = await rt.start(s);
  assert.deepEqual(warnings, []);
  const wrapper = pidOf(instance.runtimeId);
  const command = await commandOf(wrapper, 'sleep');
  const paths = await cgroupsOfPid(command);
  let cpusetDir: string;
  if (cgroups.version === 1) {
    assert.equal(paths.get('cpuset'), `/${cgroupParent}/${s.instanceId}`);
    cpusetDir = join(cgroupRoot, 'cpuset', paths.get('cpuset') ?? '?');
    const cpu = join(cgroupRoot, 'cpu', paths.get('cpu') ?? '?');
    assert.equal((await readFile(join(cpu, 'cpu.shares'), 'utf8')).trim(), '512');
    assert.equal((await readFile(join(cpu, 'cpu.cfs_quota_us'), 'utf8')).trim(), '50000', 'the quota stays');
    assert.equal((await readFile(join(cpusetDir, 'cpuset.mems'), 'utf8')).trim(), (await readFile(join(cgroupRoot, 'cpuset', 'cpuset.mems'), 'utf8')).trim());
  } else {
    cpusetDir = join(cgroupRoot, paths.get('') ?? '?');
    assert.equal((await readFile(join(cpusetDir, 'cpu.weight'), 'utf8')).trim(), String(1 + Math.floor((510 * 9999) / 262142)));
  }
  assert.equal((await readFile(join(cpusetDir, 'cpuset.cpus'), 'utf8')).trim(), '1');
  assert.equal(await cpusAllowed(command), '1');
  assert.equal(await cpusAllowed(wrapper), '1');

  await rt.updateCpuset(s.instanceId, [0]);
  assert.equal((await readFile(join(cpusetDir, 'cpuset.cpus'), 'utf8')).trim(), '0');
  assert.equal(await cpusAllowed(command), '0');
  assert.equal(await cpusAllowed(wrapper), '0');
  const still = await rt.inspect(s.instanceId);
  assert.equal(still?.state, 'running');
  assert.equal(still?.runtimeId, instance.runtimeId, 'same pid: not restarted');
  assert.deepEqual((await rt.record(s.instanceId))?.spec.cpuset, [0], 'the record keeps the new cores');
  assert.equal((await childrenOf(wrapper))[0], command, 'same command process');

  // Cores the host does not have: a readable error; the instance keeps its cores.
  await assert.rejects(rt.updateCpuset(s.instanceId, [0, 999]), /cannot move to cores 0,999: E(RANGE|INVAL) on \S+\/cpuset\.cpus: the kernel refused cores "0,999" \(cores available: \S+\)$/);
  await assert.rejects(rt.updateCpuset(s.instanceId, [1.5]), /invalid cpuset/);
  assert.equal(await cpusAllowed(command), '0');

  await rt.remove(s.instanceId);
  assert.equal(existsSync(cpusetDir), false, 'cpuset cgroup removed');
  await assert.rejects(rt.updateCpuset(s.instanceId, [0]), /no process instance/);
});

test('cpuset: an instance started on any core gets a cpuset cgroup on its first move', { skip: noCpuset }, async () => {
  const s = spec(['sh', '-c', 'sleep 30; :']);
  const { instance, warnings } = await rt.start(s);
  assert.deepEqual(warnings, []);
  assert.equal((await rt.record(s.instanceId))?.cgroups, null, 'no limits: no cgroups yet');
  const wrapper = pidOf(instance.runtimeId);
  const command = await commandOf(wrapper, 'sh');
  const all = await cpusAllowed(command);
  await rt.updateCpuset(s.instanceId, []); // any core: nothing to do
  assert.equal((await rt.record(s.instanceId))?.cgroups, null);

  await rt.updateCpuset(s.instanceId, [1]);
  const [sleeper] = await childrenOf(command);
  assert.ok(sleeper);
  for (const pid of [wrapper, command, sleeper]) assert.equal(await cpusAllowed(pid), '1', `pid ${pid}`);
  const rec = await rt.record(s.instanceId);
  assert.ok(rec?.cgroups?.cpusetDir);
  assert.deepEqual(rec.spec.cpuset, [1]);
  assert.equal((await rt.inspect(s.instanceId))?.runtimeId, instance.runtimeId);

  await rt.updateCpuset(s.instanceId, []); // back to any core
  assert.equal(await cpusAllowed(sleeper), all);
  assert.equal((await rt.record(s.instanceId))?.spec.cpuset, undefined);
  const dir = rec.cgroups.cpusetDir;
  await rt.remove(s.instanceId);
  assert.equal(existsSync(dir), false, 'cpuset cgroup removed');
});

test('cpuset: an exited instance keeps the new cores for its restart; unknown cores only warn at start', { skip: noCpuset }, async () => {
  const s = spec(['grep', 'Cpus_allowed_list', '/proc/self/status'], { cpuset: [1] });
  await rt.start(s);
  await exited(rt, s.instanceId);
  await rt.updateCpuset(s.instanceId, [0]);
  await rt.restart(s.instanceId);
  await exited(rt, s.instanceId);
  assert.equal((await stdoutOf(s.instanceId)).replace(/[ \t]+/g, ' '), 'Cpus_allowed_list: 1\nCpus_allowed_list: 0\n');
  await rt.remove(s.instanceId);

  const bad = spec(['sleep', '30'], { cpuset: [999], cpuShares: 2048 });
  const { instance, warnings } = await rt.start(bad);
  assert.equal(instance.state, 'running');
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0] ?? '', /^cpuset \(cores 999\) not applied: E(RANGE|INVAL) on \S+\/cpuset\.cpus: the kernel refused cores "999" \(cores available: \S+\)$/);
  await rt.remove(bad.instanceId);
});

test('limits: an OOM kill is reported as oomKilled', { skip: noCgroups }, async () => {
  // tail keeps a "line" in memory until a newline: /dev/zero has none.
  const s = spec(['sh', '-c', 'head -c 400000000 /dev/zero | tail'], { memoryBytes: 32 * 1024 * 1024 });
  await rt.start(s);
  const inst = await exited(rt, s.instanceId);
  assert.equal(inst.exitCode, 137);
  assert.equal(inst.oomKilled, true);
});

test('limits: without cgroups it starts anyway and warns which limits were not applied', async () => {
  const bare = new ProcessRuntime({ stateDir, cgroupRoot: emptyCgroupRoot });
  try {
    const s = spec(['sleep', '30'], { cpu: 0.25, memoryBytes: 16 * 1024 * 1024 });
    const { instance, warnings } = await bare.start(s);
    assert.equal(instance.state, 'running');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /cpu limit \(0\.25 CPU\) and memory limit \(16777216 bytes\) not applied: no cgroup filesystem/);
    await bare.remove(s.instanceId);

    const pinned = spec(['sleep', '30'], { cpu: 0.25, cpuset: [0], cpuShares: 512 });
    const started = await bare.start(pinned);
    assert.equal(started.instance.state, 'running');
    assert.deepEqual(started.warnings.map((w) => w.replace(/: no cgroup filesystem.*/, '')), [
      'cpu limit (0.25 CPU), cpuset (cores 0) and cpu shares (512) not applied',
    ]);
    await assert.rejects(bare.updateCpuset(pinned.instanceId, [1]), /cannot move to cores 1: no cgroup filesystem/);
    await bare.remove(pinned.instanceId);
  } finally {
    await bare.close();
  }
});

test('logs: each line stamped as written, both streams merged by time, long and partial lines joined, tail, follow until removed', async () => {
  const before = Date.now();
  const script = [
    'echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; echo out2; sleep 0.05; echo err2 >&2; sleep 0.05',
    'head -c 40000 /dev/zero | tr "\\0" x; echo',
    'printf "late\\npartial"; sleep 30',
  ].join('; ');
  const s = spec(['sh', '-c', script]);
  await rt.start(s);
  // "partial" has no newline: the writer puts it down as a piece after half a second.
  await waitFor('late output', async () => (await stdoutOf(s.instanceId)).includes('partial'));
  const raw = await readFile(join(stateDir, s.instanceId, 'stdout.log'), 'utf8');
  const records = raw.split('\n').filter(Boolean);
  assert.ok(records.every((r) => RECORD.test(r)), raw.slice(0, 200));
  assert.ok(records.filter((r) => r[27] === '+').length >= 3, 'the 40000-character line in pieces of 16 KiB, and the partial one');
  assert.ok(records.every((r) => r.length <= 28 + 16 * 1024));
  const long = 'x'.repeat(40000);
  const all = await collect(await rt.logs(s.instanceId, { follow: false }), () => false);
  assert.deepEqual(all.map((l) => `${l.stream}:${l.text}`), ['stdout:out1', 'stderr:err1', 'stdout:out2', 'stderr:err2', `stdout:${long}`, 'stdout:late', 'stdout:partial']);
  const times = all.map((l) => l.time);
  assert.ok(times.every((t) => t !== null && t >= before - 5 && t <= Date.now()), JSON.stringify(times));
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! >= times[i - 1]!, `line ${i} not before line ${i - 1}`);
  assert.ok(times[1]! - times[0]! >= 40, 'err1 came 50 ms after out1');
  const tail = await collect(await rt.logs(s.instanceId, { follow: false, tail: 4 }), () => false);
  assert.deepEqual(tail.map((l) => l.text), ['err2', long, 'late', 'partial']);

  const t = spec(['sh', '-c', 'i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done']);
  await rt.start(t);
  await waitFor('ticks', async () => (await stdoutOf(t.instanceId)).includes('tick2'));
  const follow = await rt.logs(t.instanceId, { follow: true, tail: 1 });
  const lines = await collect(follow, (got) => got.length >= 4);
  const n = Number(lines[0]?.text.replace('tick', ''));
  assert.deepEqual(lines.slice(0, 4).map((l) => l.text), [0, 1, 2, 3].map((k) => `tick${n + k}`));
  for (let i = 1; i < 4; i++) assert.ok(lines[i]!.time! - lines[i - 1]!.time! >= 90, `tick${n + i} stamped 100 ms after the one before: ${lines.map((l) => l.time).join(' ')}`);
  const ended = new Promise((resolve) => follow.on('end', resolve).on('close', resolve));
  follow.resume();
  await rt.remove(t.instanceId);
  await Promise.race([ended, sleep(2000).then(() => assert.fail('follow did not end after remove'))]);
  await rt.remove(s.instanceId);
});

test('logs: rotated to .1 past logMaxBytes; the command keeps appending to the truncated file', async () => {
  const capped = new ProcessRuntime({ stateDir, logMaxBytes: 1000, logCheckMs: 60_000 });
  try {
    const s = spec(['sh', '-c', 'i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo line-$i-xxxxxxxxxxxxxxxxxxxx; done; sleep 0.5; echo after; sleep 30']);
    await capped.start(s);
    const live = join(stateDir, s.instanceId, 'stdout.log');
    await waitFor('100 lines', async () => (await readFile(live, 'utf8')).includes('line-100-'));
    await capped.capLogs();
    const rotated = await readFile(`${live}.1`, 'utf8');
    assert.ok(rotated.length <= 1000, `.1 holds ${rotated.length} bytes`);
    assert.match(unstamped(rotated), /^line-\d+-x+\n/);
    assert.match(unstamped(rotated), /line-100-x+\n$/);
    assert.equal(statSync(live).size, 0);
    await waitFor('after', async () => (await readFile(live, 'utf8')).includes('after'));
    assert.equal(unstamped(await readFile(live, 'utf8')), 'after\n', 'O_APPEND: no hole after the truncate');
    const tail = await collect(await capped.logs(s.instanceId, { follow: false, tail: 2 }), () => false);
    assert.deepEqual(tail.map((l) => l.text), ['line-100-xxxxxxxxxxxxxxxxxxxx', 'after']);
    await capped.remove(s.instanceId);
  } finally {
    await capped.close();
  }
});

test('logs: lines of a file from before the log writer (no times) are still read, before the stamped ones', async () => {
  const s = spec(['sh', '-c', 'echo new; echo new-err >&2']);
  await rt.start(s);
  await exited(rt, s.instanceId);
  const dir = join(stateDir, s.instanceId);
  await writeFile(join(dir, 'stdout.log'), `old 1\nold 2\n${await readFile(join(dir, 'stdout.log'), 'utf8')}`);
  await writeFile(join(dir, 'stderr.log.1'), 'old err\n');
  const all = await collect(await rt.logs(s.instanceId, { follow: false }), () => false);
  // Lines without times keep the old order (the stream written less lately first, here stderr),
  // and go before the stamped lines that follow them.
  assert.deepEqual(all.map((l) => `${l.stream}:${l.text}:${l.time === null ? 'no time' : 'time'}`), [
    'stderr:old err:no time', 'stdout:old 1:no time', 'stdout:old 2:no time', 'stdout:new:time', 'stderr:new-err:time',
  ]);
  await rt.remove(s.instanceId);
});

test('start: a missing executable or workdir is a readable error and leaves nothing behind', async () => {
  const s = spec(['gantry-no-such-program', '--flag']);
  await assert.rejects(rt.start(s), /gantry-no-such-program.*command not found in PATH/);
  assert.equal(existsSync(join(stateDir, s.instanceId)), false);
  assert.equal(await rt.inspect(s.instanceId), undefined);
  await assert.rejects(rt.start(spec(['./nope.sh'])), /no such file/);
  await assert.rejects(rt.start(spec(['sleep', '1'], { workdir: '/nonexistent/dir' })), /working directory/);
  await assert.rejects(rt.start(spec([])), /needs a command/);
  const running = spec(['sleep', '30']);
  await rt.start(running);
  await assert.rejects(rt.start(running), /already running/);
  await rt.remove(running.instanceId);
});

test('arguments reach the command verbatim, without shell interpretation', async () => {
  const weird = ['$HOME', '`id`', "it's", 'a "b"', '; rm -rf /', '', '*'];
  const s = spec(['printf', '[%s]\\n'], { args: weird });
  await rt.start(s);
  assert.equal((await exited(rt, s.instanceId)).exitCode, 0);
  assert.equal(await stdoutOf(s.instanceId), weird.map((w) => `[${w}]\n`).join(''));
});

// ---- Volumes and init steps --------------------------------------------------------------------

const volumeDir = (id: string, name: string) => join(stateDir, '_volumes', id, name);

test('volumes: a dir per volume in GANTRY_VOLUME_<NAME>, kept by remove(keepVolumes), deleted by remove', async () => {
  const s = spec(['sleep', '30'], { volumes: [{ name: 'data', path: '/data' }, { name: 'my-cache', path: '/cache' }] });
  const id = s.instanceId;
  await rt.start(s);
  const data = volumeDir(id, 'data');
  const env = await rt.exec(id, ['sh', '-c', 'echo "$GANTRY_VOLUME_DATA $GANTRY_VOLUME_MY_CACHE"'], 5000);
  assert.deepEqual(env, { exitCode: 0, output: `${data} ${volumeDir(id, 'my-cache')}\n` });
  assert.deepEqual(await rt.exec(id, ['sh', '-c', 'echo hello > "$GANTRY_VOLUME_DATA/f"'], 5000), { exitCode: 0, output: '' });
  assert.ok(!(await rt.list()).some((i) => i.instanceId === '_volumes'), 'the volumes dir is not an instance');

  await rt.stop(id, 'SIGTERM', 2000);
  await rt.remove(id, { keepVolumes: true });
  assert.equal(existsSync(join(stateDir, id)), false, 'the instance dir is gone');
  assert.equal(readFileSync(join(data, 'f'), 'utf8'), 'hello\n', 'the volume stays');

  // Rebuilt in place: started again for the same instance, it finds the data.
  const again = spec(['sh', '-c', 'cat "$GANTRY_VOLUME_DATA/f"; sleep 30'], { instanceId: id, volumes: s.volumes });
  await rt.start(again);
  await waitFor('the data', async () => (await stdoutOf(id)) === 'hello\n');
  assert.deepEqual(await rt.exec(id, ['sh', '-c', 'cat "$GANTRY_VOLUME_DATA/f"'], 5000), { exitCode: 0, output: 'hello\n' });
  // A restart keeps them as well.
  await rt.stop(id, 'SIGTERM', 2000);
  await rt.restart(id);
  await waitFor('the data again', async () => (await stdoutOf(id)) === 'hello\nhello\n');

  await rt.remove(id);
  assert.equal(existsSync(data), false, 'remove() deletes the volumes by default');
  assert.equal(existsSync(join(stateDir, '_volumes', id)), false);
  await rt.remove(id); // idempotent

  await assert.rejects(rt.start(spec(['true'], { volumes: [{ name: '../x', path: '/x' }] })), /invalid volume name/);
  await assert.rejects(rt.start(spec(['true'], { volumes: [{ name: 'a-b', path: '/x' }, { name: 'a_b', path: '/y' }] })), /would both be GANTRY_VOLUME_A_B/);
});

test('runInit: the instance env and volumes, in the instance dir; start works afterwards and reads its output', async () => {
  const port = await freePort();
  const s = spec(['sh', '-c', 'cat "$GANTRY_VOLUME_DATA/bundle"; ls; sleep 30'], {
    env: { GREETING: 'hi there' }, ports: [{ name: 'http', host: port, protocol: 'tcp' }], volumes: [{ name: 'data', path: '/data' }],
  });
  const id = s.instanceId;
  const init = await rt.runInit(s, {
    command: ['sh', '-c', 'echo "$GREETING $PORT $PORT_HTTP" > "$GANTRY_VOLUME_DATA/bundle"; pwd; touch scratch; echo careful >&2'],
    timeoutMs: 5000,
  });
  assert.equal(init.exitCode, 0, init.output);
  assert.equal(init.output.split('\n').sort().join('|'), ['', 'careful', join(stateDir, id)].sort().join('|'));
  assert.equal(readFileSync(join(volumeDir(id, 'data'), 'bundle'), 'utf8'), `hi there ${port} ${port}\n`);
  assert.equal(existsSync(join(stateDir, id)), false, 'the instance dir made for the step is gone again');
  assert.equal(await rt.inspect(id), undefined);
  assert.deepEqual(await rt.list().then((l) => l.filter((i) => i.instanceId === id)), []);

  const { instance } = await rt.start(s);
  assert.equal(instance.state, 'running');
  await waitFor('the bundle', async () => (await stdoutOf(id)).includes('hi there'));
  assert.match(await stdoutOf(id), new RegExp(`^hi there ${port} ${port}\\n`));
  assert.doesNotMatch(await stdoutOf(id), /scratch/, 'the instance dir starts empty');
  await rt.remove(id);
  assert.equal(existsSync(volumeDir(id, 'data')), false);
});

test('runInit: exit code and output of a failing step; a timeout kills its process group (124)', async () => {
  const s = spec(['sleep', '30'], { volumes: [{ name: 'data', path: '/data' }] });
  const failed = await rt.runInit(s, { command: ['sh', '-c', 'echo fetching; echo "no bundle" >&2; exit 3'], timeoutMs: 5000 });
  assert.equal(failed.exitCode, 3);
  assert.match(failed.output, /fetching\n/);
  assert.match(failed.output, /no bundle\n/);

  const big = await rt.runInit(s, { command: ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i"; done'], timeoutMs: 5000 });
  assert.equal(big.exitCode, 0);
  assert.ok(big.output.length <= 4096 + 100, `the last ~4 KiB: ${big.output.length}`);
  assert.match(big.output, /^\[gantry: output cut/);
  assert.match(big.output, /line 2000\n$/);

  const started = Date.now();
  const slow = await rt.runInit(s, { command: ['sh', '-c', 'sleep 30 & echo "child $!"; wait'], timeoutMs: 300 });
  assert.equal(slow.exitCode, 124);
  assert.match(slow.output, /^child \d+\n[\s\S]*timed out after 300 ms/);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  const child = Number(/child (\d+)/.exec(slow.output)?.[1]);
  await waitFor('the sleep to be killed', async () => ['Z', undefined].includes((await procStat(child))?.state));

  // Finished in time: what it left running in its process group goes too.
  const leftover = await rt.runInit(s, { command: ['sh', '-c', 'sleep 30 & echo "child $!"'], timeoutMs: 5000 });
  assert.equal(leftover.exitCode, 0);
  const bg = Number(/child (\d+)/.exec(leftover.output)?.[1]);
  await waitFor('the background sleep to be killed', async () => ['Z', undefined].includes((await procStat(bg))?.state));

  const missing = await rt.runInit(s, { command: ['no-such-program-gantry'], timeoutMs: 5000 });
  assert.equal(missing.exitCode, 127);
  assert.match(missing.output, /no-such-program-gantry/);
  await assert.rejects(rt.runInit(s, { command: [], timeoutMs: 5000 }), /needs a command/);
  assert.equal(existsSync(join(stateDir, s.instanceId)), false);
  await rt.remove(s.instanceId);
  assert.equal(existsSync(volumeDir(s.instanceId, 'data')), false);
});
