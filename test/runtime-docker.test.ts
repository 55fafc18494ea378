// The Docker runtime against a real Docker Engine and the local test image (no registry).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { DockerRuntime, EXEC_TIMEOUT_EXIT_CODE, volumeName } from '../src/runtime/docker.js';
import type { LogLine, RunSpec } from '../src/runtime/runtime.js';
import type { AssignedPort } from '../src/model/types.js';
import { skipWithoutDocker, TEST_IMAGE } from './helpers/env.js';

const skip = await skipWithoutDocker();
const run = Date.now().toString(36);
// The name prefix is the runtime's namespace: list() only sees this run's containers.
const prefix = `gantrytest-${process.pid}-${run}-`;
const docker = new Docker();
const rt = new DockerRuntime({ docker, namePrefix: prefix });
let counter = 0;
const newId = (what: string) => `${what}-${++counter}`;

interface SpecInput {
  instanceId: string;
  command?: string[];
  args?: string[];
  vars?: Record<string, string>;
  ports?: AssignedPort[];
  cpu?: number;
  memoryBytes?: number;
  image?: string;
  workdir?: string;
  cpuset?: number[];
  cpuShares?: number;
}

function spec(input: SpecInput): RunSpec {
  return {
    instanceId: input.instanceId,
    app: 'web',
    appEnv: 'production',
    entry: 'main',
    release: 7,
    image: input.image ?? TEST_IMAGE,
    command: input.command,
    args: input.args ?? [],
    env: input.vars ?? {},
    workdir: input.workdir,
    cpu: input.cpu ?? 0.5,
    cpuset: input.cpuset,
    cpuShares: input.cpuShares,
    memoryBytes: input.memoryBytes ?? 64 * 1024 * 1024,
    ports: input.ports ?? [],
    labels: { 'gantry.test': run },
  };
}

const loop = (body: string) => ['sh', '-c', body];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exited = (id: string) =>
  waitFor(`${id} to exit`, async () => {
    const inst = await rt.inspect(id);
    return inst?.state === 'exited' ? inst : undefined;
  });

/** Collects LogLines until `until` says so (or the stream ends); pauses the stream again so the
 *  next call gets the lines that follow. */
function readLines(stream: Readable, until: (lines: LogLine[]) => boolean, ms = 5000): Promise<LogLine[]> {
  return new Promise((resolve, reject) => {
    const lines: LogLine[] = [];
    const timer = setTimeout(() => reject(new Error(`log lines so far: ${JSON.stringify(lines.map((l) => l.text))}`)), ms);
    const finish = () => {
      clearTimeout(timer);
      stream.pause();
      stream.off('data', onData);
      stream.off('end', finish);
      stream.off('error', onError);
      resolve(lines);
    };
    const onData = (line: LogLine) => {
      lines.push(line);
      if (until(lines)) finish();
    };
    stream.on('data', onData);
    stream.once('end', finish);
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    stream.once('error', onError);
    stream.resume();
  });
}

after(async () => {
  if (skip) return;
  await rt.close();
  const leftovers = await docker.listContainers({ all: true, filters: { name: [prefix] } });
  await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})));
});

test('probe answers, and explains an unreachable engine', { skip }, async () => {
  assert.deepEqual(await rt.probe(), { ok: true });
  const missing = new DockerRuntime({ socketPath: '/nonexistent/docker.sock' });
  const result = await missing.probe();
  assert.equal(result.ok, false);
  assert.match(result.reason ?? '', /cannot reach Docker Engine at \/nonexistent\/docker\.sock: .*ENOENT/);
});

test('an httpd container: ports, limits, labels, env, exec, list', { skip }, async () => {
  const id = newId('httpd');
  const hostPort = await freePort();
  const { instance, warnings } = await rt.start(
    spec({
      instanceId: id,
      command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
      vars: { GREETING: 'hello world' },
      ports: [{ name: 'http', container: 8080, host: hostPort, protocol: 'tcp' }],
      cpu: 0.25,
      memoryBytes: 32 * 1024 * 1024,
    }),
  );
  assert.deepEqual(warnings, []);
  assert.equal(instance.instanceId, id);
  assert.equal(instance.state, 'running');
  assert.equal(instance.exitCode, null);
  assert.ok(instance.startedAt && Math.abs(instance.startedAt - Date.now()) < 60_000);
  assert.equal(instance.finishedAt, null);

  const body = await waitFor('httpd to answer', async () => {
    const res = await fetch(`http://127.0.0.1:${hostPort}/`);
    return res.ok ? res.text() : undefined;
  });
  assert.match(body, /hello from gantry/);

  const info = await docker.getContainer(instance.runtimeId).inspect();
  assert.equal(info.Name, `/${prefix}${id}`);
  assert.equal(info.HostConfig.Memory, 32 * 1024 * 1024);
  assert.equal(info.HostConfig.MemorySwap, 32 * 1024 * 1024);
  assert.equal(info.HostConfig.CpuPeriod, 100_000);
  assert.equal(info.HostConfig.CpuQuota, 25_000);
  assert.equal(info.HostConfig.Init, true);
  assert.equal(info.HostConfig.RestartPolicy?.Name, 'no');
  assert.equal(info.HostConfig.LogConfig?.Type, 'json-file');
  assert.deepEqual(info.HostConfig.LogConfig?.Config, { 'max-size': '10m', 'max-file': '3' });
  assert.deepEqual(info.HostConfig.PortBindings, { '8080/tcp': [{ HostIp: '0.0.0.0', HostPort: String(hostPort) }] });
  const labels = info.Config.Labels;
  assert.equal(labels['gantry.managed'], 'true');
  assert.equal(labels['gantry.app'], 'web');
  assert.equal(labels['gantry.env'], 'production');
  assert.equal(labels['gantry.entry'], 'main');
  assert.equal(labels['gantry.instance'], id);
  assert.equal(labels['gantry.release'], '7');
  assert.equal(labels['gantry.test'], run);

  const env = await rt.exec(id, ['sh', '-c', 'echo "$PORT $PORT_HTTP $GREETING"'], 5000);
  assert.deepEqual(env, { exitCode: 0, output: '8080 8080 hello world\n' });
  const both = await rt.exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 7'], 5000);
  assert.equal(both.exitCode, 7);
  assert.match(both.output, /out\n/);
  assert.match(both.output, /err\n/);
  const notFound = await rt.exec(id, ['no-such-program'], 5000);
  assert.notEqual(notFound.exitCode, 0);
  const big = await rt.exec(id, ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x'], 5000);
  assert.equal(big.exitCode, 0);
  assert.ok(big.output.length < 70_000 && big.output.startsWith('xxxx'), `capped output: ${big.output.length}`);
  assert.match(big.output, /truncated/);

  const listed = (await rt.list()).find((i) => i.instanceId === id);
  assert.ok(listed, 'list() finds the running container');
  assert.equal(listed.state, 'running');
  assert.equal(listed.runtimeId, instance.runtimeId);
  assert.equal(listed.startedAt, instance.startedAt);
  assert.equal(listed.labels['gantry.instance'], id);
  // Another namespace does not see it.
  const other = new DockerRuntime({ docker, namePrefix: `${prefix}other-` });
  assert.equal((await other.list()).length, 0);

  await rt.stop(id, 'SIGTERM', 5000);
  const stopped = await rt.inspect(id);
  assert.equal(stopped?.state, 'exited');
  assert.ok(stopped?.finishedAt);
  await rt.remove(id);
});

test('exec: timeout resolves with 124, a stopped container rejects', { skip }, async () => {
  const id = newId('exec');
  await rt.start(spec({ instanceId: id, command: loop('sleep 30') }));
  const started = Date.now();
  const slow = await rt.exec(id, ['sh', '-c', 'echo begun; sleep 5'], 500);
  assert.equal(slow.exitCode, EXEC_TIMEOUT_EXIT_CODE);
  assert.match(slow.output, /^begun\n[\s\S]*timed out after 500 ms/);
  assert.ok(Date.now() - started < 3000);
  await rt.stop(id, 'SIGKILL', 0);
  await assert.rejects(rt.exec(id, ['true'], 1000), /not running/);
  await rt.remove(id);
  await assert.rejects(rt.exec(id, ['true'], 1000), /no container for instance/);
});

test('stop: SIGTERM is forwarded (through docker-init) and the trap decides the exit code', { skip }, async () => {
  const id = newId('trap');
  await rt.start(spec({ instanceId: id, command: loop('trap "exit 3" TERM; echo ready; while true; do sleep 0.1; done') }));
  const logs = await rt.logs(id, { follow: true });
  await readLines(logs, (l) => l.some((x) => x.text === 'ready'));
  logs.destroy();
  const started = Date.now();
  await rt.stop(id, 'SIGTERM', 10_000);
  assert.ok(Date.now() - started < 5000, 'exits well within the grace period');
  const inst = await rt.inspect(id);
  assert.equal(inst?.state, 'exited');
  assert.equal(inst?.exitCode, 3);
  assert.equal(inst?.oomKilled, false);
  // Already exited, or gone: no-ops.
  await rt.stop(id, 'SIGTERM', 1000);
  await rt.remove(id);
  await rt.stop(id, 'SIGTERM', 1000);
});

test('stop: a process ignoring SIGTERM is killed after the grace period', { skip }, async () => {
  const id = newId('stubborn');
  await rt.start(spec({ instanceId: id, command: loop('trap "" TERM; echo ready; while true; do sleep 0.1; done') }));
  const logs = await rt.logs(id, { follow: true });
  await readLines(logs, (l) => l.some((x) => x.text === 'ready'));
  logs.destroy();
  const started = Date.now();
  await rt.stop(id, 'SIGTERM', 800);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 750 && elapsed < 5000, `stopped after ${elapsed} ms`);
  const inst = await rt.inspect(id);
  assert.equal(inst?.state, 'exited');
  assert.equal(inst?.exitCode, 137);
  await rt.remove(id);
});

test('logs: stdout and stderr lines with times, tail, long lines', { skip }, async () => {
  const id = newId('logs');
  await rt.start(
    spec({
      instanceId: id,
      command: loop('for i in 1 2 3 4 5; do echo "line $i"; done; echo oops >&2; printf "no newline"; head -c 20000 /dev/zero | tr "\\0" a >&2; echo >&2'),
    }),
  );
  await exited(id);
  const all = await readLines(await rt.logs(id, { follow: false }), () => false);
  const out = all.filter((l) => l.stream === 'stdout').map((l) => l.text);
  const err = all.filter((l) => l.stream === 'stderr').map((l) => l.text);
  assert.deepEqual(out, ['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'no newline']);
  assert.equal(err.length, 2);
  assert.equal(err[0], 'oops');
  assert.equal(err[1], 'a'.repeat(20000), 'a 20000-byte line (split by the log driver) comes back whole');
  for (const line of all) assert.ok(line.time && Math.abs(line.time - Date.now()) < 60_000, `time of ${line.text.slice(0, 10)}`);

  await rt.remove(id);
  await assert.rejects(rt.logs(id, { follow: false }), /no container for instance/);

  const short = newId('tail');
  await rt.start(spec({ instanceId: short, command: loop('for i in 1 2 3 4 5; do echo "line $i"; done') }));
  await exited(short);
  const tail = await readLines(await rt.logs(short, { follow: false, tail: 2 }), () => false);
  assert.deepEqual(tail.map((l) => `${l.stream} ${l.text}`), ['stdout line 4', 'stdout line 5']);
  await rt.remove(short);
});

test('logs: follow receives new lines and ends when the container is removed', { skip }, async () => {
  const id = newId('follow');
  await rt.start(spec({ instanceId: id, command: loop('echo ready; while [ ! -f /tmp/go ]; do sleep 0.05; done; echo after-go; sleep 30') }));
  const stream = await rt.logs(id, { follow: true, tail: 10 });
  const first = await readLines(stream, (l) => l.some((x) => x.text === 'ready'));
  assert.deepEqual(first.map((l) => l.text), ['ready']);
  assert.equal((await rt.exec(id, ['touch', '/tmp/go'], 5000)).exitCode, 0);
  const next = await readLines(stream, (l) => l.some((x) => x.text === 'after-go'));
  assert.deepEqual(next.map((l) => l.text), ['after-go']);
  const ended = new Promise<void>((resolve) => stream.once('end', resolve));
  stream.resume();
  await rt.stop(id, 'SIGKILL', 0);
  await rt.remove(id);
  await ended;
});

test('restart: same container and filesystem; a following log stream continues across runs', { skip }, async () => {
  const id = newId('restart');
  const { instance } = await rt.start(spec({ instanceId: id, command: loop('echo run >> /tmp/runs; echo "runs $(wc -l < /tmp/runs)"; exit 5') }));
  const stream = await rt.logs(id, { follow: true });
  const first = await exited(id);
  assert.equal(first.exitCode, 5);
  assert.ok(first.finishedAt);
  assert.equal(first.oomKilled, false);

  const again = await rt.restart(id);
  assert.equal(again.runtimeId, instance.runtimeId);
  const second = await exited(id);
  assert.equal(second.exitCode, 5);
  const lines = await readLines(stream, (l) => l.length >= 2);
  assert.deepEqual(lines.map((l) => l.text), ['runs 1', 'runs 2']);
  stream.destroy();
  const listed = (await rt.list()).find((i) => i.instanceId === id);
  assert.equal(listed?.state, 'exited');
  assert.equal(listed?.exitCode, 5);
  await rt.remove(id);
  await assert.rejects(rt.restart(id), /no container for instance/);
});

test('start replaces a leftover container of the same instance id', { skip }, async () => {
  const id = newId('leftover');
  const one = await rt.start(spec({ instanceId: id, command: loop('exit 1') }));
  await exited(id);
  const two = await rt.start(spec({ instanceId: id, command: loop('sleep 30') }));
  assert.notEqual(two.instance.runtimeId, one.instance.runtimeId);
  assert.equal(two.instance.state, 'running');
  const mine = (await rt.list()).filter((i) => i.instanceId === id);
  assert.equal(mine.length, 1);
  await rt.remove(id);
});

test('remove is idempotent; inspect of a missing instance is undefined', { skip }, async () => {
  const id = newId('remove');
  await rt.start(spec({ instanceId: id, command: loop('sleep 30') }));
  await rt.remove(id); // running: force
  await rt.remove(id);
  assert.equal(await rt.inspect(id), undefined);
  assert.equal((await rt.list()).find((i) => i.instanceId === id), undefined);
});

test('a missing image gives a readable error and leaves nothing behind', { skip }, async () => {
  const id = newId('noimage');
  await assert.rejects(
    rt.start(spec({ instanceId: id, image: 'gantry/does-not-exist:1' })),
    { message: 'image "gantry/does-not-exist:1" is not on this node (the entry says pull: never, or it was removed since its pull)' },
  );
  assert.equal(await rt.inspect(id), undefined);
});

test('a host port already taken fails the start and leaves nothing behind', { skip }, async () => {
  const port = await freePort();
  const a = newId('porta');
  const b = newId('portb');
  const ports: AssignedPort[] = [{ name: 'http', container: 8080, host: port, protocol: 'tcp' }];
  await rt.start(spec({ instanceId: a, command: loop('sleep 30'), ports }));
  await assert.rejects(rt.start(spec({ instanceId: b, command: loop('sleep 30'), ports })), /cannot start container .*(allocated|in use)/);
  assert.equal(await rt.inspect(b), undefined);
  await rt.remove(a);
});

test('a container exceeding its memory limit is reported oomKilled', { skip }, async () => {
  // Docker 20.10 on cgroup v1 now and then reports OOMKilled=false for a container the kernel
  // did kill for memory (its OOM event races the exit): up to three tries, every one killed.
  let reported = false;
  for (let attempt = 0; attempt < 3 && !reported; attempt++) {
    const id = newId('oom');
    await rt.start(spec({ instanceId: id, memoryBytes: 8 * 1024 * 1024, command: loop('x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived') }));
    const inst = await exited(id);
    assert.equal(inst.exitCode, 137);
    const listed = (await rt.list()).find((i) => i.instanceId === id);
    assert.equal(listed?.oomKilled, inst.oomKilled, 'list and inspect agree');
    reported = inst.oomKilled;
    await rt.remove(id);
  }
  assert.ok(reported, 'the engine reported the OOM kill');
});

const cpusAllowed = async (id: string) => {
  const res = await rt.exec(id, ['grep', 'Cpus_allowed_list', '/proc/1/status'], 5000);
  assert.equal(res.exitCode, 0, res.output);
  return res.output.split(':')[1]?.trim();
};

test('cpuset and shares: a bound container, moved to other cores without a restart', { skip }, async () => {
  const id = newId('bound');
  const { instance, warnings } = await rt.start(
    spec({ instanceId: id, command: loop('sleep 60'), cpu: 1.5, cpuset: [1, 0], cpuShares: 1536 }),
  );
  assert.deepEqual(warnings, []);
  const container = docker.getContainer(instance.runtimeId);
  const before = await container.inspect();
  assert.equal(before.HostConfig.CpusetCpus, '0,1');
  assert.equal(before.HostConfig.CpuShares, 1536);
  assert.equal(before.HostConfig.CpuQuota, 150_000);
  assert.equal(before.HostConfig.CpuPeriod, 100_000);
  assert.equal(await cpusAllowed(id), '0-1');

  await rt.updateCpuset(id, [1]);
  const after = await container.inspect();
  assert.equal(after.HostConfig.CpusetCpus, '1');
  assert.equal(after.HostConfig.CpuShares, 1536, 'shares untouched');
  assert.equal(after.HostConfig.CpuQuota, 150_000, 'quota untouched');
  assert.equal(after.State.Running, true);
  assert.equal(after.State.StartedAt, before.State.StartedAt, 'not restarted');
  assert.equal(after.State.Pid, before.State.Pid, 'same process');
  assert.equal(after.RestartCount, before.RestartCount);
  assert.equal(await cpusAllowed(id), '1', 'the running process was re-pinned');

  // [] = any core: every core the engine reports.
  await rt.updateCpuset(id, []);
  const any = await container.inspect();
  const ncpu = (await docker.info()).NCPU as number;
  assert.equal(any.HostConfig.CpusetCpus, ncpu > 1 ? `0-${ncpu - 1}` : '0');
  assert.equal(any.State.StartedAt, before.State.StartedAt);

  // A core the host does not have: the engine's message, and the container keeps its cores.
  await assert.rejects(rt.updateCpuset(id, [0, 999]), /cannot move container .* to cores 0,999: .*Requested CPUs are not available/);
  await assert.rejects(rt.updateCpuset(id, [-1]), /invalid cpuset/);
  assert.equal((await container.inspect()).HostConfig.CpusetCpus, any.HostConfig.CpusetCpus);
  await rt.remove(id);
  await assert.rejects(rt.updateCpuset(id, [0]), { message: `no container for instance ${id}` });
});

test('cpuset: an unbound container without a cpuset gets only its CFS quota', { skip }, async () => {
  const id = newId('unbound');
  const { instance } = await rt.start(spec({ instanceId: id, command: loop('sleep 60'), cpu: 0.25 }));
  const info = await docker.getContainer(instance.runtimeId).inspect();
  assert.equal(info.HostConfig.CpusetCpus, '');
  assert.equal(info.HostConfig.CpuQuota, 25_000);
  assert.equal(info.HostConfig.CpuPeriod, 100_000);
  assert.equal(info.HostConfig.CpuShares, 0);
  await rt.remove(id);
});

test('cpuset: an exited container is updated for its next run; unknown cores fail the start', { skip }, async () => {
  const id = newId('cpuset-exited');
  await rt.start(spec({ instanceId: id, command: loop('grep Cpus_allowed_list /proc/self/status'), cpuset: [0] }));
  await exited(id);
  await rt.updateCpuset(id, [1]);
  const info = await docker.getContainer(`${prefix}${id}`).inspect();
  assert.equal(info.HostConfig.CpusetCpus, '1');
  await rt.restart(id);
  await exited(id);
  const lines = await readLines(await rt.logs(id, { follow: false }), () => false);
  assert.deepEqual(lines.map((l) => l.text.replace(/\s+/g, ' ')), ['Cpus_allowed_list: 0', 'Cpus_allowed_list: 1']);
  await rt.remove(id);

  const bad = newId('cpuset-bad');
  await assert.rejects(
    rt.start(spec({ instanceId: bad, command: loop('sleep 60'), cpuset: [999] })),
    /cannot (create|start) container .*Requested CPUs are not available/,
  );
  assert.equal(await rt.inspect(bad), undefined);
});

// ---- Volumes and init steps --------------------------------------------------------------------
// Volume names are not namespaced by the name prefix (gantry-<instanceId>-<name>): these instance
// ids carry the run id so that runs cannot share volumes.

const volumes = [{ name: 'data', path: '/data' }];

async function volumesOf(id: string): Promise<string[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`gantry.instance=${id}`] } });
  return (Volumes ?? []).map((v) => v.Name).sort();
}

after(async () => {
  if (skip) return;
  const { Volumes } = await docker.listVolumes({ filters: { label: ['gantry.managed=true'] } });
  const mine = (Volumes ?? []).filter((v) => v.Name.includes(`-${run}-`));
  for (const v of mine) await docker.getVolume(v.Name).remove().catch(() => {});
});

test('volumes: a named volume per instance, kept by remove(keepVolumes) for a rebuild, deleted by remove', { skip }, async () => {
  const id = newId(`vol-${run}`);
  const { instance } = await rt.start({ ...spec({ instanceId: id, command: loop('sleep 60') }), volumes });
  const name = volumeName(id, 'data');
  assert.equal(name, `gantry-${id}-data`);
  const info = await docker.getContainer(instance.runtimeId).inspect();
  const mount = info.Mounts.find((m) => m.Destination === '/data');
  assert.equal(mount?.Type, 'volume');
  assert.equal(mount?.Name, name);
  assert.equal(mount?.RW, true);
  const vol = await docker.getVolume(name).inspect();
  assert.equal(vol.Labels['gantry.managed'], 'true');
  assert.equal(vol.Labels['gantry.instance'], id);
  assert.equal(vol.Labels['gantry.app'], 'web');
  assert.deepEqual(await volumesOf(id), [name]);

  assert.deepEqual(await rt.exec(id, ['sh', '-c', 'echo hello > /data/f'], 5000), { exitCode: 0, output: '' });
  await rt.stop(id, 'SIGKILL', 0);
  await rt.remove(id, { keepVolumes: true });
  assert.equal(await rt.inspect(id), undefined, 'the container is gone');
  assert.deepEqual(await volumesOf(id), [name], 'the volume stays');

  // Rebuilt in place: a new container for the same instance finds the data.
  const rebuilt = await rt.start({ ...spec({ instanceId: id, command: loop('sleep 60') }), volumes });
  assert.notEqual(rebuilt.instance.runtimeId, instance.runtimeId);
  assert.deepEqual(await rt.exec(id, ['cat', '/data/f'], 5000), { exitCode: 0, output: 'hello\n' });
  // start() replacing a leftover container of the instance keeps the volume too.
  await rt.stop(id, 'SIGKILL', 0);
  await rt.start({ ...spec({ instanceId: id, command: loop('sleep 60') }), volumes });
  assert.deepEqual(await rt.exec(id, ['cat', '/data/f'], 5000), { exitCode: 0, output: 'hello\n' });

  await rt.remove(id);
  assert.deepEqual(await volumesOf(id), [], 'remove() deletes the volumes by default');
  await assert.rejects(docker.getVolume(name).inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
  await rt.remove(id); // idempotent
  await assert.rejects(
    rt.start({ ...spec({ instanceId: id, command: loop('sleep 60') }), volumes: [{ name: '../x', path: '/x' }] }),
    /invalid volume name/,
  );
  await assert.rejects(
    rt.start({ ...spec({ instanceId: id, command: loop('sleep 60') }), volumes: [{ name: 'a', path: '/x' }, { name: 'a', path: '/y' }] }),
    /listed twice/,
  );
  assert.equal(await rt.inspect(id), undefined);
});

test('runInit: runs before the instance with its env and volumes, in a container list() never returns', { skip }, async () => {
  const id = newId(`init-${run}`);
  const hostPort = await freePort();
  const s: RunSpec = {
    ...spec({
      instanceId: id,
      command: loop('sleep 60'),
      vars: { GREETING: 'hi there' },
      ports: [{ name: 'http', container: 8080, host: hostPort, protocol: 'tcp' }],
      memoryBytes: 48 * 1024 * 1024,
    }),
    volumes,
  };
  const initName = `${prefix}${id}-init`;
  const running = rt.runInit(s, {
    command: ['sh', '-c', 'while [ ! -f /tmp/go ]; do sleep 0.05; done; echo "$GREETING $PORT $PORT_HTTP" > /data/bundle; echo unpacked; echo careful >&2'],
    timeoutMs: 20_000,
  });
  const info = await waitFor('the init container', () => docker.getContainer(initName).inspect().then((i) => i.State.Running && i));
  assert.equal(info.Config.Labels['gantry.init'], 'true');
  assert.equal(info.Config.Labels['gantry.instance'], id);
  assert.equal(info.Config.Labels['gantry.managed'], 'true');
  assert.equal(info.Config.Labels['gantry.test'], run);
  assert.equal(info.HostConfig.Memory, 48 * 1024 * 1024);
  assert.deepEqual(info.HostConfig.PortBindings ?? {}, {}, 'no published ports');
  assert.equal(info.Mounts.find((m) => m.Destination === '/data')?.Name, volumeName(id, 'data'));
  assert.equal((await rt.list()).length, 0, 'list() does not return the init container');
  assert.equal(await rt.inspect(id), undefined);
  assert.equal(await rt.inspect(`${id}-init`), undefined);
  const go = await docker.getContainer(initName).exec({ Cmd: ['touch', '/tmp/go'], AttachStdout: true, AttachStderr: true });
  // Read the exec's stream to its end: a detached start leaves the connection open and the test process alive.
  const goStream = await go.start({});
  goStream.resume();
  await new Promise((resolve) => goStream.on('end', resolve));

  const result = await running;
  assert.equal(result.exitCode, 0);
  assert.match(result.output, /^unpacked$/m);
  assert.match(result.output, /^careful$/m);
  assert.equal((await docker.listContainers({ all: true, filters: { name: [initName] } })).length, 0, 'the init container is removed');

  await rt.start(s);
  assert.deepEqual(await rt.exec(id, ['cat', '/data/bundle'], 5000), { exitCode: 0, output: 'hi there 8080 8080\n' });
  const listed = await rt.list();
  assert.deepEqual(listed.map((i) => i.instanceId), [id]);
  await rt.remove(id);
  assert.deepEqual(await volumesOf(id), []);
});

test('runInit: a failing step gives its exit code and output; timeout is 124 and leaves nothing', { skip }, async () => {
  const id = newId(`initfail-${run}`);
  const s: RunSpec = { ...spec({ instanceId: id, command: loop('sleep 60') }), volumes };
  const failed = await rt.runInit(s, { command: ['sh', '-c', 'echo fetching; echo "no bundle" >&2; exit 3'], timeoutMs: 10_000 });
  assert.equal(failed.exitCode, 3);
  assert.match(failed.output, /fetching\n/);
  assert.match(failed.output, /no bundle\n/);

  const big = await rt.runInit(s, { command: ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i"; done'], timeoutMs: 10_000 });
  assert.equal(big.exitCode, 0);
  assert.ok(big.output.length <= 4096 + 100, `the last ~4 KiB: ${big.output.length}`);
  assert.match(big.output, /line 2000\n$/);
  assert.doesNotMatch(big.output, /^line 1\n/m);

  const started = Date.now();
  const slow = await rt.runInit(s, { command: ['sh', '-c', 'echo begun; sleep 30'], timeoutMs: 700 });
  assert.equal(slow.exitCode, EXEC_TIMEOUT_EXIT_CODE);
  assert.match(slow.output, /^begun\n[\s\S]*timed out after 700 ms/);
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  assert.equal((await docker.listContainers({ all: true, filters: { name: [`${prefix}${id}-init`] } })).length, 0, 'no leftover init container');

  const missing = await rt.runInit(s, { command: ['no-such-program-gantry'], timeoutMs: 10_000 });
  assert.equal(missing.exitCode, 127);
  assert.match(missing.output, /no-such-program-gantry/);
  await assert.rejects(
    rt.runInit(s, { image: 'gantry/does-not-exist:1', command: ['true'], timeoutMs: 5000 }),
    { message: 'image "gantry/does-not-exist:1" is not on this node (the entry says pull: never, or it was removed since its pull)' },
  );
  assert.equal((await docker.listContainers({ all: true, filters: { name: [`${prefix}${id}-init`] } })).length, 0);
  // The step's image may differ from the instance's; the volumes are the instance's.
  const other = await rt.runInit({ ...s, image: 'gantry/does-not-exist:1' }, { image: TEST_IMAGE, command: ['sh', '-c', 'echo x > /data/y'], timeoutMs: 10_000 });
  assert.equal(other.exitCode, 0, other.output);
  await rt.remove(id);
  assert.deepEqual(await volumesOf(id), []);
});
