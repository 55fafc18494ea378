// Node liveness is messages heard, not a socket that looks open: a frozen agent (SIGSTOP, the
// stand-in for a cut link or a host powered off: its TCP connection stays half-open) goes down
// within the node timeout, its instances are replaced and nothing new lands on it; back, it is
// ready again. The timeout counts from the agent's death, not from a heartbeat before it. Both
// ends of the agent connection end a connection that has gone silent (pings), and a node timeout
// shorter than two heartbeats is refused. Timings are printed; the asserts leave room for a
// loaded 2-core machine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { TestCluster, freePort, until } from './helpers/cluster.js';
import { livenessTiming, startServer, type RunningServer } from '../src/server/main.js';
import { unresponsiveAfterMs } from '../src/server/agents.js';
import { ServerConnection, silenceLimitMs } from '../src/agent/connection.js';
import type { AppDetailResponse, NodeView } from '../src/model/api.js';
import type { NodeInfo } from '../src/model/types.js';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

async function nodesOf(cluster: TestCluster): Promise<NodeView[]> {
  return ((await cluster.api('GET', '/v1/nodes')) as { nodes: NodeView[] }).nodes;
}

async function nodeOf(cluster: TestCluster, name: string): Promise<NodeView> {
  const node = (await nodesOf(cluster)).find((n) => n.name === name);
  assert.ok(node, `node ${name} is listed`);
  return node;
}

/** Polls until the node's state is `state`; returns when it was first seen so (ms since the epoch). */
async function seenIn(cluster: TestCluster, name: string, state: string, timeoutMs: number): Promise<number> {
  return until(`node ${name} to be ${state}`, async () => ((await nodeOf(cluster, name)).state === state ? Date.now() : undefined), timeoutMs, 100);
}

describe('a frozen agent: its node goes down, is replaced, takes nothing new, and comes back', () => {
  const cluster = new TestCluster();
  const noDocker = join(cluster.dir, 'no-docker.sock');
  const [a, b] = [`a-${cluster.id}`, `b-${cluster.id}`];
  const app = `frozen-${cluster.id}`;
  // Heartbeat every 2 s (registry TTL 6 s / 3); down after 4 s of silence.
  const nodeTimeoutS = 4;
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  let frozenPid: number | undefined;

  before(async () => {
    await cluster.startServer({ nodeTimeout: nodeTimeoutS, registryTtl: 6 });
    await cluster.startAgent({ name: a, portRange: '30400-30499', dockerSocket: noDocker });
    await cluster.startAgent({ name: b, portRange: '30500-30599', dockerSocket: noDocker });
  });

  after(async () => {
    if (frozenPid !== undefined) process.kill(frozenPid, 'SIGCONT'); // else it cannot be stopped
    await cluster.cli(['rm', app, '--timeout', '20s']);
    await cluster.close();
  });

  test('SIGSTOP: down within the timeout, replaced elsewhere, scale avoids it; SIGCONT: ready again', async () => {
    const spec = `app: ${app}\nentrypoints:\n  worker:\n    command: [sleep, "600"]\n    replicas: 2\n    stop: { grace: 1s }\n`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: spec });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const placed = (await detail()).instances;
    assert.deepEqual(placed.map((i) => i.node).sort(), [a, b], 'spread over both nodes');
    const onB = placed.find((i) => i.node === b)!;

    frozenPid = cluster.agents.get(b)!.pid!;
    process.kill(frozenPid, 'SIGSTOP');
    const frozenAt = Date.now();
    const downAt = await seenIn(cluster, b, 'down', 30_000);
    console.log(`frozen node seen down ${seconds(downAt - frozenAt)} after SIGSTOP (node timeout ${nodeTimeoutS}s, heartbeat 2s)`);
    assert.ok(downAt - frozenAt <= (nodeTimeoutS + 4) * 1000, `down ${seconds(downAt - frozenAt)} after the freeze`);
    const { events } = (await cluster.api('GET', `/v1/events?node=${b}`)) as { events: { type: string; message: string }[] };
    console.log(`node.down said: ${events.find((e) => e.type === 'node.down')?.message}`);

    const replaced = await until('the instance of the frozen node to be replaced on the other', async () => {
      const instances = (await detail()).instances;
      return instances.length === 2 && instances.every((i) => i.node === a && i.status?.state === 'running') ? instances : undefined;
    }, 30_000);
    assert.ok(!replaced.some((i) => i.id === onB.id), 'the frozen node\'s instance is not among the live ones');
    console.log(`replaced on ${a} ${seconds(Date.now() - frozenAt)} after SIGSTOP`);

    const scaled = await cluster.cli(['scale', app, 'worker', '4', '--timeout', '30s']);
    assert.equal(scaled.code, 0, scaled.stdout + scaled.stderr);
    const scaledUp = (await detail()).instances;
    assert.equal(scaledUp.length, 4);
    assert.deepEqual(scaledUp.filter((i) => i.node === b).map((i) => i.id), [], 'nothing new is placed on the frozen node');

    // The server also ends the half-open connection (no pong), saying so.
    const unresponsive = await until('the server to terminate the frozen agent\'s connection', async () => {
      const { events: now } = (await cluster.api('GET', `/v1/events?node=${b}`)) as { events: { type: string; message: string }[] };
      return now.find((e) => e.type === 'agent.unresponsive');
    }, 20_000);
    console.log(`agent.unresponsive said: ${unresponsive.message}`);

    process.kill(frozenPid, 'SIGCONT');
    const resumedAt = Date.now();
    frozenPid = undefined;
    const readyAt = await seenIn(cluster, b, 'ready', 30_000);
    console.log(`node ready again ${seconds(readyAt - resumedAt)} after SIGCONT`);
    assert.equal((await detail()).instances.filter((i) => i.desired !== 'removed').length, 4);
  });
});

describe('the node timeout counts from the agent\'s death', () => {
  const cluster = new TestCluster();
  const noDocker = join(cluster.dir, 'no-docker.sock');
  const nodeTimeoutS = 5;
  const heartbeatMs = 2000; // registry TTL 6 s / 3

  before(async () => {
    await cluster.startServer({ nodeTimeout: nodeTimeoutS, registryTtl: 6 });
  });
  after(() => cluster.close());

  /** Waits for a heartbeat of the node to be stored; returns when it was (server clock = ours). */
  async function nextHeartbeat(name: string): Promise<number> {
    const before = (await nodeOf(cluster, name)).lastHeartbeat;
    return until(`a heartbeat of ${name}`, async () => {
      const { lastHeartbeat } = await nodeOf(cluster, name);
      return lastHeartbeat > before ? lastHeartbeat : undefined;
    }, 20_000, 25);
  }

  // Killed right after a heartbeat, and late in the heartbeat interval: counted from its last
  // heartbeat alone, the second would be declared down most of an interval early.
  for (const [label, delayMs] of [['right after a heartbeat', 0], ['just before its next heartbeat', heartbeatMs - 300]] as const) {
    test(`kill -9 ${label}: not down before the timeout, down soon after it`, async () => {
      const name = `${label.split(' ')[0]}-${cluster.id}`;
      await cluster.startAgent({ name, portRange: delayMs === 0 ? '30600-30649' : '30650-30699', dockerSocket: noDocker });
      const beat = await nextHeartbeat(name);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, beat + delayMs - Date.now()));
      const child = cluster.agents.get(name)!;
      child.kill('SIGKILL');
      const killedAt = Date.now();
      const { lastHeartbeat } = await nodeOf(cluster, name);
      const downAt = await seenIn(cluster, name, 'down', 30_000);
      const elapsed = downAt - killedAt;
      console.log(`${label}: killed ${killedAt - lastHeartbeat} ms after its last heartbeat, seen down ${seconds(elapsed)} after the kill (node timeout ${nodeTimeoutS}s)`);
      assert.ok(elapsed >= nodeTimeoutS * 1000 - 500, `down only ${seconds(elapsed)} after the kill`);
      // Checked every second plus the reconcile pass; a second more for a loaded machine.
      assert.ok(elapsed <= nodeTimeoutS * 1000 + 3000, `down ${seconds(elapsed)} after the kill`);
      cluster.agents.delete(name);
    });
  }
});

describe('a node timeout shorter than two heartbeats is refused', () => {
  test('gantry server --node-timeout 1 --registry-ttl 15 exits non-zero and says why', async () => {
    const cluster = new TestCluster();
    try {
      const dataDir = join(cluster.dir, 'server');
      const result = await cluster.cli(['server', '--data-dir', dataDir, '--port', String(await freePort()), '--node-timeout', '1', '--registry-ttl', '15'], { timeoutMs: 30_000 });
      console.log(`exit ${result.code}: ${result.stderr.trim()}`);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /--node-timeout 1s is shorter than two heartbeat intervals \(2 × 5s/);
      assert.match(result.stderr, /--node-timeout 10s or more/);
      assert.ok(!existsSync(dataDir), 'nothing was created before the refusal');
    } finally {
      await cluster.close();
    }
  });

  test('the bound: two heartbeats, the heartbeat being min(5 s, registry TTL / 3)', () => {
    assert.deepEqual(livenessTiming({}), { registryTtlMs: 15_000, heartbeatMs: 5000, nodeTimeoutMs: 30_000 });
    assert.equal(livenessTiming({ nodeTimeoutMs: 10_000 }).heartbeatMs, 5000);
    assert.throws(() => livenessTiming({ nodeTimeoutMs: 9999 }), /--node-timeout 9.999s .*--registry-ttl 14.997s or less/);
    assert.equal(livenessTiming({ nodeTimeoutMs: 4000, registryTtlMs: 6000 }).heartbeatMs, 2000);
    assert.throws(() => livenessTiming({ nodeTimeoutMs: 4000, registryTtlMs: 7000 }), /--node-timeout/);
    assert.throws(() => livenessTiming({ nodeTimeoutMs: Number.NaN }), /--node-timeout/);
  });
});

describe('pings end a silent agent connection, on both sides', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-liveness-'));
  const heartbeatMs = 1000; // registry TTL 3 s / 3
  let server: RunningServer;
  const sockets: WebSocket[] = [];

  before(async () => {
    server = await startServer({ dataDir: dir, port: 0, bootstrapToken: 'gty_liveness_admin', registryTtlMs: 3 * heartbeatMs, nodeTimeoutMs: 60_000 });
  });
  after(async () => {
    for (const socket of sockets) socket.terminate();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function nodeInfo(name: string): NodeInfo {
    return {
      name, address: '127.0.0.1', labels: {}, cores: 2, memoryBytes: 2 ** 30, runtimes: ['process'], runtimeNotes: [],
      portRange: [41000, 41099], agentVersion: 'test', pool: 'default', reserved: { cores: 0, memoryBytes: 0 }, shareBase: 100,
    };
  }

  /** An agent connection that says hello and then nothing; `autoPong: false` plays a frozen agent. */
  async function helloThenSilence(name: string, autoPong: boolean) {
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${server.localAgentToken(name)}` }, autoPong });
    sockets.push(socket);
    socket.on('error', () => {});
    let closedAt: number | undefined;
    let welcomed = false;
    socket.on('close', () => (closedAt = Date.now()));
    socket.on('message', (data) => (welcomed ||= (JSON.parse(String(data)) as { type: string }).type === 'welcome'));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    socket.send(JSON.stringify({ type: 'hello', node: nodeInfo(name), statuses: [], endpoints: [] }));
    await until(`the welcome of ${name}`, () => welcomed, 10_000, 20);
    return { saidHelloAt: Date.now(), closedAt: () => closedAt };
  }

  test('the server terminates an agent that stops answering pings, and keeps one that answers', async () => {
    const limitMs = unresponsiveAfterMs(heartbeatMs);
    const frozen = await helloThenSilence('frozen', false);
    const live = await helloThenSilence('live', true);
    const closedAt = await until('the server to terminate the silent connection', () => frozen.closedAt(), limitMs + 20_000, 50);
    console.log(`silent connection terminated ${seconds(closedAt - frozen.saidHelloAt)} after its hello (bound ${seconds(limitMs)}, pings every ${seconds(heartbeatMs)})`);
    assert.ok(closedAt - frozen.saidHelloAt >= limitMs - 100, 'not before the bound');
    assert.ok(closedAt - frozen.saidHelloAt <= limitMs + heartbeatMs + 4000, 'within the bound, a ping round and some slack');
    assert.equal(live.closedAt(), undefined, 'a connection that answers pings stays open');
    const { events } = (await (await fetch(`${server.url}/v1/events?node=frozen`, { headers: { authorization: 'Bearer gty_liveness_admin' } })).json()) as { events: { type: string; message: string }[] };
    const event = events.find((e) => e.type === 'agent.unresponsive');
    assert.ok(event, 'an agent.unresponsive event');
    assert.match(event.message, /node frozen .*no answer to pings/);
  });

  test('the agent ends a connection on which the server went silent, and connects again', async () => {
    // A server that welcomes the agent and then says nothing, not even pings: a cut link.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    const connectedAt: number[] = [];
    wss.on('connection', (socket) => {
      connectedAt.push(Date.now());
      socket.on('error', () => {});
      socket.send(JSON.stringify({ type: 'welcome', heartbeatMs }));
    });
    await new Promise((resolve) => wss.once('listening', resolve));
    const states: string[] = [];
    const connection = new ServerConnection({
      server: `http://127.0.0.1:${(wss.address() as { port: number }).port}`,
      token: () => 'unused',
      hello: () => ({ type: 'hello', node: nodeInfo('cut-off'), statuses: [], endpoints: [] }),
      onMessage: () => {},
      onState: (_connected, detail) => states.push(detail),
    });
    try {
      const limitMs = silenceLimitMs(heartbeatMs);
      await until('the agent to connect a second time', () => connectedAt.length >= 2, limitMs + 20_000, 50);
      const gap = connectedAt[1]! - connectedAt[0]!;
      console.log(`agent reconnected ${seconds(gap)} after a silent server welcomed it (bound ${seconds(limitMs)}); it said: ${states.find((s) => s.startsWith('disconnected'))}`);
      assert.ok(gap >= limitMs - 100, 'not before the bound');
      assert.ok(gap <= limitMs + 6000, 'within the bound, a check and a retry');
      assert.ok(states.some((s) => /nothing from the server for/.test(s)), states.join('\n'));
    } finally {
      connection.close();
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});
