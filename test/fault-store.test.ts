// Faults of the store, checked from the outside (the app's processes and ports): an emptied store
// is refused, and a server started anew on it (--init) costs no workload — the node keeps what it
// runs, reports it, and an operator adopts it without a restart; a damaged store is refused; a
// node removes an instance it does not find in its assignments only when it is told to.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, rmSync, truncateSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import { alive, pidOf } from './helpers/processes.js';
import type { AppDetailResponse } from '../src/model/api.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('faults of the store', () => {
  const cluster = new TestCluster();
  const node = `store-${cluster.id}`;
  const app = `keep-${cluster.id}`;
  const db = join(cluster.dir, 'server', 'gantry.db');
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const spec = `app: ${app}
entrypoints:
  web:
    command: [node, -e, "require('http').createServer((q, s) => s.end('up')).listen(process.env.PORT)"]
    replicas: 2
    ports: [{ name: http }]
    health: { http: { port: http }, interval: 500ms, startPeriod: 5s }
    stop: { grace: 2s, drain: 0s }
`;
  /** Starts a server that is expected to refuse: its exit code and what it said. */
  const refusedStart = async (extra: string[] = []) => {
    const before = cluster.output.length;
    const child = cluster.spawn('refused server', ['server', '--data-dir', join(cluster.dir, 'server'), '--port', String(cluster.port), ...extra]);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, said: cluster.output.slice(before).join('\n') };
  };
  let pids: number[] = [];
  let ports: number[] = [];
  const serving = async () => {
    for (const port of ports) assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'up', `port ${port}`);
  };

  before(async () => {
    await cluster.startServer({ nodeTimeout: 30 });
    await cluster.startAgent({ name: node, portRange: '31800-31899', dockerSocket: join(cluster.dir, 'none.sock') });
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: spec });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const { instances } = await detail();
    pids = instances.map((i) => pidOf(i.status?.runtimeId));
    ports = instances.map((i) => i.ports[0]!.host);
    assert.ok(pids.every(alive));
    await serving();
  });
  after(async () => {
    await cluster.close();
    // The last test leaves a store no server accepts, so nothing can remove the app: its
    // processes (which outlive their agent by design) are ended here.
    for (const pid of pids.filter(alive)) process.kill(-pid, 'SIGKILL'); // each is a session leader: its group is the app
  });

  test('an emptied store is refused; started anew with --init, the node keeps what it runs until it is adopted', async () => {
    await cluster.stopServer();
    truncateSync(db, 0);
    for (const suffix of ['-wal', '-shm']) rmSync(`${db}${suffix}`, { force: true });

    const refused = await refusedStart();
    assert.notEqual(refused.code, 0);
    assert.match(refused.said, /is an empty file.*restore it from a backup.*--init/s);
    assert.equal(statSync(db).size, 0, 'the refused start wrote nothing');

    await cluster.startServer({ nodeTimeout: 30, extra: ['--init'] });
    await until('the node to report what it runs', async () => {
      const { unassigned } = (await cluster.api('GET', `/v1/nodes/${node}/unassigned`)) as { unassigned: { id: string; adoptable: boolean }[] };
      return unassigned.length === 2 && unassigned.every((u) => u.adoptable);
    });
    const { events } = (await cluster.api('GET', '/v1/events?limit=200')) as { events: { type: string; message: string }[] };
    assert.ok(events.some((e) => e.type === 'node.foreign_cluster' && e.message.includes(node)), 'the event says the node belonged to another cluster');
    assert.ok(events.some((e) => e.type === 'node.unassigned' && /gantry node adopt/.test(e.message)));
    // A while with the new server: nothing it runs is touched.
    await sleep(3000);
    assert.ok(pids.every(alive), 'every process still runs');
    await serving();

    const adopted = await cluster.cli(['node', 'adopt', node]);
    assert.equal(adopted.code, 0, adopted.stdout + adopted.stderr);
    assert.match(adopted.stdout, new RegExp(`adopted 2 instance\\(s\\) on ${node}; apps made from them: ${app}`));
    const back = await until('the adopted app to be running', async () => {
      const d = await detail();
      return d.instances.length === 2 && d.instances.every((i) => i.status?.state === 'running') ? d : undefined;
    });
    assert.deepEqual(back.instances.map((i) => pidOf(i.status?.runtimeId)).sort(), [...pids].sort(), 'the same processes, not restarted');
    await serving();
    const history = await cluster.cli(['history', app]);
    assert.match(history.stdout, /adopted from what runs on/);

    // Settled: the node acts on the new server's instructions again.
    const scaled = await cluster.cli(['scale', app, 'web', '1', '--timeout', '30s']);
    assert.equal(scaled.code, 0, scaled.stdout + scaled.stderr);
    await until('one process to be stopped', () => pids.filter(alive).length === 1);
  });

  test('a damaged store is refused with what to do', async () => {
    await cluster.stopServer();
    // Overwrite the second page (a b-tree page of a table) with garbage.
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096);
    closeSync(fd);
    for (const suffix of ['-wal', '-shm']) rmSync(`${db}${suffix}`, { force: true });
    const refused = await refusedStart();
    assert.notEqual(refused.code, 0);
    assert.match(refused.said, /is damaged \(SQLite quick_check|cannot be opened as a database/);
    assert.match(refused.said, /restore it from a backup/);
    assert.ok(pids.filter(alive).length >= 1, 'the node kept running what it runs');
  });
});
