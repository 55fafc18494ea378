// The agent's supervisor against races with its own actions and with people: a view of the runtime
// listed before its own start finished is never acted on (no second start, no "port taken" by its
// own process), a container or process removed behind Gantry's back is an event and a counted
// restart after the backoff, and no failing runtime or hook call ends in an unhandled rejection.
// The supervisor is driven directly over the real process runtime (deterministic); then the same
// on a real Docker Engine through real agents, as the reliability report saw it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { Supervisor, observationClock, type SupervisorHooks } from '../src/agent/supervisor.js';
import { runCheck } from '../src/agent/health.js';
import type { TakenPort } from '../src/agent/ports.js';
import { EntrySpec } from '../src/model/spec.js';
import type { GantryEvent, Instance, InstanceStatus } from '../src/model/types.js';
import { ProcessRuntime } from '../src/runtime/process.js';
import type { RunSpec, Runtime, RuntimeInstance, StartResult } from '../src/runtime/runtime.js';
import { TestCluster, dockerContainers, freePort, until } from './helpers/cluster.js';
import { skipWithoutDocker, TEST_IMAGE } from './helpers/env.js';
import type { AppDetailResponse, EventListResponse } from '../src/model/api.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The process runtime, counting the starts asked of it. */
class CountingRuntime extends ProcessRuntime {
  starts = 0;
  override async start(spec: RunSpec): Promise<StartResult> {
    this.starts++;
    return super.start(spec);
  }
}

const stateDir = mkdtempSync(join(tmpdir(), 'gantry-races-'));
const cgroupParent = `gantry-races-${process.pid}`;
const rt = new CountingRuntime({ stateDir, cgroupParent, logCheckMs: 60_000 });
const ids = new Set<string>();
let seq = 0;

/** An HTTP server on its assigned port, on the process runtime. */
function instance(port: number, restart: Record<string, unknown> = { policy: 'always', backoff: { initial: '300ms', max: '5s' } }): Instance {
  const id = `races${process.pid}-${++seq}`;
  ids.add(id);
  const spec = EntrySpec.parse({
    command: [process.execPath, '-e', "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)"],
    ports: [{ name: 'http' }],
    restart,
    stop: { grace: '1s', drain: 0 },
  });
  return { id, app: 'races', env: 'test', entry: 'web', release: 1, node: 'races-node', runtime: 'process', spec, ports: [{ name: 'http', host: port, protocol: 'tcp' }], desired: 'running', createdAt: Date.now() };
}

function recorder(overrides: Partial<SupervisorHooks> = {}) {
  const events: Omit<GantryEvent, 'time'>[] = [];
  const taken: TakenPort[][] = [];
  const statuses: InstanceStatus[] = [];
  const hooks: SupervisorHooks = {
    report: (status) => statuses.push(status),
    event: (event) => events.push(event),
    register: () => {},
    withdraw: async () => false,
    sharedCpuset: () => [],
    portsTaken: (ports) => taken.push(ports),
    ensureImage: async () => ({ pulled: false }),
    ...overrides,
  };
  return { hooks, events, taken, statuses, types: () => events.map((e) => e.type) };
}

const answers = (port: number) => until(`an answer on port ${port}`, async () => (await fetch(`http://127.0.0.1:${port}/`)).text(), 10_000, 25);

async function idle(supervisor: Supervisor): Promise<void> {
  await until('the supervisor to finish its action', () => !supervisor.isBusy(), 15_000, 10);
}

/** What the runtime shows of the instance now, with the clock reading taken before asking. */
async function look(id: string): Promise<{ observed: RuntimeInstance | undefined; listedAt: number }> {
  const listedAt = observationClock();
  return { observed: (await rt.list()).find((i) => i.instanceId === id), listedAt };
}

after(async () => {
  for (const id of ids) await rt.remove(id).catch(() => undefined);
  await rt.close();
  await rm(stateDir, { recursive: true, force: true });
  for (const dir of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpuset', '/sys/fs/cgroup']) {
    await rmdir(join(dir, cgroupParent)).catch(() => undefined);
  }
});

describe('supervisor: views older than its own actions', () => {
  test('a listing begun before its start finished, handed over after: no second start, no port taken', async () => {
    const port = await freePort();
    const inst = instance(port);
    const rec = recorder();
    const supervisor = new Supervisor(inst, rt, '127.0.0.1', rec.hooks);

    // Listed before anything started: the instance is not there.
    const before = await look(inst.id);
    assert.equal(before.observed, undefined);
    // A current view starts it; another listing begins while the start is under way.
    supervisor.tick(undefined, observationClock());
    assert.ok(supervisor.isBusy());
    const during = observationClock();
    await idle(supervisor);
    assert.equal(supervisor.status.state, 'running');
    const runtimeId = supervisor.status.runtimeId;
    assert.equal(await answers(port), 'ok');

    // The agent's tick lists every runtime, then ticks each supervisor: those views arrive late.
    supervisor.tick(before.observed, before.listedAt);
    supervisor.tick(undefined, during);
    await idle(supervisor);
    await sleep(100);
    assert.equal(rt.starts, 1, 'started once');
    assert.deepEqual(rec.taken, [], 'its own port never reported as taken');
    assert.deepEqual(rec.types().filter((t) => t !== 'instance.started'), []);
    assert.equal(supervisor.status.state, 'running');
    assert.equal(supervisor.status.runtimeId, runtimeId);

    // A view listed after the start shows it running: nothing to do.
    const now = await look(inst.id);
    assert.equal(now.observed?.state, 'running');
    supervisor.tick(now.observed, now.listedAt);
    assert.equal(supervisor.isBusy(), false);
    assert.equal(rt.starts, 1);
    supervisor.dispose();
  });

  test('a start asked on a view that misses its own running process adopts it: its port is its own, never "taken"', async () => {
    const port = await freePort();
    const inst = instance(port);
    const first = new Supervisor(inst, rt, '127.0.0.1', recorder().hooks);
    first.tick(undefined, observationClock());
    await idle(first);
    first.dispose();
    assert.equal(await answers(port), 'ok');
    const startsBefore = rt.starts;

    // A new supervisor of the same instance (the agent restarted) with a view that does not show
    // it: it is about to start an instance whose own process holds the port.
    const rec = recorder();
    const supervisor = new Supervisor(inst, rt, '127.0.0.1', rec.hooks);
    supervisor.tick(undefined);
    await idle(supervisor);
    assert.equal(rt.starts, startsBefore, 'no second start');
    assert.deepEqual(rec.taken, []);
    assert.deepEqual(rec.types(), []);
    assert.equal(supervisor.status.state, 'running');
    assert.equal(supervisor.status.runtimeId, first.status.runtimeId);
    assert.equal(supervisor.status.portsTaken, undefined);
    assert.equal(await answers(port), 'ok');
    supervisor.dispose();
  });
});

describe('supervisor: an instance removed behind its back', () => {
  test('an instance.vanished event and a restart counted, after the backoff, doubled the second time', async () => {
    const port = await freePort();
    const inst = instance(port);
    const rec = recorder();
    const supervisor = new Supervisor(inst, rt, '127.0.0.1', rec.hooks);
    supervisor.tick(undefined, observationClock());
    await idle(supervisor);
    const first = supervisor.status.runtimeId!;

    const recreated = async (previous: string) => {
      const removedAt = Date.now();
      await rt.remove(inst.id); // as someone would by hand: behind the supervisor's back
      for (;;) {
        const { observed, listedAt } = await look(inst.id);
        supervisor.tick(observed, listedAt);
        await idle(supervisor);
        if (supervisor.status.state === 'running' && supervisor.status.runtimeId !== previous) return Date.now() - removedAt;
        await sleep(20);
      }
    };

    const gap1 = await recreated(first);
    const vanished = rec.events.filter((e) => e.type === 'instance.vanished');
    assert.equal(vanished.length, 1);
    assert.equal(vanished[0]!.message, `process ${first} of instance ${inst.id} disappeared outside Gantry (removed by hand?)`);
    assert.equal(supervisor.status.restarts, 1);
    assert.ok(gap1 >= 300, `recreated after the backoff (${gap1} ms)`);
    const restarted = rec.events.filter((e) => e.type === 'instance.restarted');
    assert.equal(restarted.length, 1);
    assert.match(restarted[0]!.message, /restarted after process pid:\d+ disappeared outside Gantry \(removed by hand\?\) \(restart 1\)/);

    const gap2 = await recreated(supervisor.status.runtimeId!);
    assert.equal(rec.events.filter((e) => e.type === 'instance.vanished').length, 2);
    assert.equal(supervisor.status.restarts, 2);
    assert.ok(gap2 >= 600, `the second one waits twice as long (${gap2} ms)`);
    assert.equal(await answers(port), 'ok');
    assert.deepEqual(rec.taken, []);
    supervisor.dispose();
  });

  test('with restart policy never it stays down, and is not started again by the next ticks', async () => {
    const inst = instance(await freePort(), { policy: 'never' });
    const rec = recorder();
    const supervisor = new Supervisor(inst, rt, '127.0.0.1', rec.hooks);
    supervisor.tick(undefined, observationClock());
    await idle(supervisor);
    await rt.remove(inst.id);
    for (let i = 0; i < 5; i++) {
      const { observed, listedAt } = await look(inst.id);
      supervisor.tick(observed, listedAt);
      await idle(supervisor);
    }
    assert.deepEqual(rec.types().filter((t) => t === 'instance.vanished' || t === 'instance.started'), ['instance.started', 'instance.vanished']);
    assert.equal(supervisor.status.state, 'exited');
    assert.match(supervisor.status.message ?? '', /disappeared outside Gantry/);
    assert.equal(await rt.inspect(inst.id), undefined);
    supervisor.dispose();
  });
});

/** A runtime whose instance starts but whose every other call fails. */
class BrokenRuntime implements Runtime {
  readonly name = 'process' as const;
  private readonly fail = async (): Promise<never> => {
    throw new Error('the runtime broke');
  };
  async probe() {
    return { ok: true };
  }
  async start(spec: RunSpec): Promise<StartResult> {
    return { instance: { instanceId: spec.instanceId, runtimeId: 'pid:1', state: 'running', exitCode: null, oomKilled: false, startedAt: Date.now(), finishedAt: null, labels: spec.labels }, warnings: [] };
  }
  restart = this.fail;
  stop = this.fail;
  updateCpuset = this.fail;
  remove = this.fail;
  runInit = this.fail;
  list = this.fail;
  exec = this.fail;
  terminal = this.fail;
  logs = async (): Promise<Readable> => this.fail();
  private inspected = 0;
  /** Not there the first time (so it starts), broken after. */
  async inspect(): Promise<RuntimeInstance | undefined> {
    if (this.inspected++ === 0) return undefined;
    throw new Error('the runtime broke');
  }
  async close() {}
}

describe('supervisor: failing runtime and hook calls', () => {
  test('none ends in an unhandled rejection: each is reported as an event', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const inst = instance(await freePort());
      inst.spec = EntrySpec.parse({ command: ['true'], ports: [{ name: 'http' }], hooks: { afterStart: ['true'] }, restart: { policy: 'always', backoff: { initial: '50ms' } } });
      const rec = recorder({ withdraw: async () => { throw new Error('the registry broke'); } });
      const supervisor = new Supervisor(inst, new BrokenRuntime(), '127.0.0.1', rec.hooks);
      supervisor.tick(undefined, observationClock());
      await idle(supervisor);
      assert.equal(supervisor.status.state, 'running');
      // Seen running: its afterStart hook runs, through the broken runtime.
      supervisor.tick({ instanceId: inst.id, runtimeId: 'pid:1', state: 'running', exitCode: null, oomKilled: false, startedAt: Date.now(), finishedAt: null, labels: {} }, observationClock());
      // Served, then not: withdrawn (and the registry fails).
      supervisor.reassign({ ...inst, serving: false });
      // Gone: vanished, withdrawn again, restarted through a runtime that now fails.
      supervisor.tick(undefined, observationClock());
      await sleep(300);
      for (let i = 0; i < 5; i++) {
        supervisor.tick(undefined, observationClock());
        await idle(supervisor);
        await sleep(60);
      }
      supervisor.dispose();
      await sleep(100);
      assert.deepEqual(unhandled.map(String), []);
      assert.ok(rec.types().includes('instance.vanished'), rec.types().join(','));
      assert.ok(rec.events.some((e) => e.type === 'instance.error' && /withdraw .* registry broke/.test(e.message)), JSON.stringify(rec.events));
      assert.ok(rec.events.some((e) => /the runtime broke/.test(e.message)), JSON.stringify(rec.events));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('a health check that cannot even be tried fails; it does not reject', async () => {
    const health = EntrySpec.parse({ command: ['true'], ports: [{ name: 'http' }], health: { tcp: { port: 'http' } } }).health!;
    const result = await runCheck(health, [], '127.0.0.1', new BrokenRuntime(), 'x');
    assert.equal(result.ok, false);
  });
});

// ---- The same on a real Docker Engine, through real agents ------------------------------------

const skip = await skipWithoutDocker();
const events = async (cluster: TestCluster, query: string) => ((await cluster.api('GET', `/v1/events?${query}&limit=1000`)) as EventListResponse).events;

describe('docker: a container removed with docker rm -f', { skip }, () => {
  const cluster = new TestCluster();
  const app = `vanish-${cluster.id}`;
  const spec = `app: ${app}
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: [httpd, -f, -p, "8080", -h, /www]
    resources: { cpu: 0.1, memory: 32Mi }
    ports: [{ name: http, container: 8080 }]
    restart: { policy: always, backoff: { initial: 2s, max: 30s } }
    stop: { grace: 1s, drain: 0s }
`;
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  /** When the engine started the instance's current container (ms), once it runs a container other than `previous`. */
  const startedOther = async (name: string, previous: string) => {
    const { stdout } = await run('docker', ['inspect', '-f', '{{.Id}} {{.State.Running}} {{.State.StartedAt}}', name]);
    const [id, running, startedAt] = stdout.trim().split(' ');
    return id !== previous && running === 'true' ? { id: id!, startedAt: Date.parse(startedAt!) } : undefined;
  };

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: `vanish-${cluster.id}`, portRange: '31500-31509' });
  });
  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]).catch(() => undefined);
  });

  test('recreated after the backoff with an instance.vanished event and the restart counted; again, after twice the backoff', async () => {
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const [inst] = (await detail()).instances;
    const name = `gantry-${inst!.id}`;
    const first = (await startedOther(name, ''))!;

    const removedAt = Date.now();
    await run('docker', ['rm', '-f', name]);
    const vanished = await until('the instance.vanished event', async () => (await events(cluster, `instance=${inst!.id}`)).find((e) => e.type === 'instance.vanished'), 15_000);
    assert.equal(vanished.message, `container ${first.id.slice(0, 12)} of instance ${inst!.id} disappeared outside Gantry (removed by hand?)`);
    const second = await until('the container to be recreated', () => startedOther(name, first.id), 15_000, 50);
    assert.ok(second.startedAt - removedAt >= 1900, `recreated only after the 2s backoff (after ${second.startedAt - removedAt} ms)`);
    await until('restart count 1, running', async () => {
      const status = (await detail()).instances[0]?.status;
      return status?.restarts === 1 && status.state === 'running';
    }, 15_000);

    // Right after: the backoff has doubled.
    const removedAgainAt = Date.now();
    await run('docker', ['rm', '-f', name]);
    const third = await until('the container to be recreated again', () => startedOther(name, second.id), 20_000, 50);
    assert.ok(third.startedAt - removedAgainAt >= 3900, `recreated only after the 4s backoff (after ${third.startedAt - removedAgainAt} ms)`);
    await until('restart count 2, running', async () => {
      const status = (await detail()).instances[0]?.status;
      return status?.restarts === 2 && status.state === 'running';
    }, 15_000);
    const types = (await events(cluster, `instance=${inst!.id}`)).map((e) => e.type);
    assert.equal(types.filter((t) => t === 'instance.vanished').length, 2, types.join(','));
    assert.equal(types.filter((t) => t === 'instance.restarted').length, 2, types.join(','));
    assert.ok(!types.includes('instance.start_failed'), types.join(','));
  });
});

describe('docker: 9 replicas with ports on 3 agents, removed and applied again 3 times', { skip }, () => {
  const cluster = new TestCluster();
  const app = `churn-${cluster.id}`;
  const agents = [0, 1, 2].map((i) => ({ name: `churn-${cluster.id}-${i}`, portRange: `${31600 + i * 20}-${31600 + i * 20 + 19}` }));
  const spec = `app: ${app}
entrypoints:
  web:
    image: ${TEST_IMAGE}
    command: [httpd, -f, -p, "8080", -h, /www]
    replicas: 9
    resources: { cpu: 0.05, memory: 16Mi }
    ports: [{ name: http, container: 8080 }]
    stop: { grace: 1s, drain: 0s }
`;

  before(async () => {
    await cluster.startServer();
    await Promise.all(agents.map((a) => cluster.startAgent(a)));
  });
  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]).catch(() => undefined);
  });

  test('every instance started once: no port found taken by its own container, no port moved', async () => {
    for (let round = 0; round < 3; round++) {
      const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec });
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
      const removed = await cluster.cli(['rm', app, '--timeout', '60s']);
      assert.equal(removed.code, 0, removed.stdout + removed.stderr);
    }
    const all = await events(cluster, `app=${app}`);
    const bad = all.filter((e) => ['instance.ports_moved', 'instance.port_taken', 'instance.start_failed', 'instance.vanished'].includes(e.type) || /already in use|still running leftover/.test(e.message));
    assert.deepEqual(bad.map((e) => `${e.type} ${e.message}`), []);
    const starts = new Map<string, number>();
    for (const e of all) if (e.type === 'instance.started') starts.set(e.instance!, (starts.get(e.instance!) ?? 0) + 1);
    assert.equal(starts.size, 27, `27 instances started: ${[...starts.keys()].join(',')}`);
    assert.deepEqual([...starts].filter(([, n]) => n !== 1), [], 'each started once');
  });
});
