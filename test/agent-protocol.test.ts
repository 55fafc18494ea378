// The agent connection as an attacker sees it: malformed messages close only their own socket,
// an agent token speaks for its own node only (hello, statuses, endpoints, withdrawals, events,
// log relays), a join token adds a new node once and never takes over one that exists.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../src/server/main.js';
import type { NodeInfo, InstanceStatus } from '../src/model/types.js';
import type { Endpoint } from '../src/model/registry.js';
import { until } from './helpers/cluster.js';

const ADMIN = 'gty_agent_protocol_admin';

function nodeInfo(name: string, extra: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name, address: '127.0.0.1', labels: {}, cores: 2, memoryBytes: 2 ** 30, runtimes: ['process'], runtimeNotes: [],
    portRange: [41000, 41099], agentVersion: 'test', pool: 'default', reserved: { cores: 0, memoryBytes: 0 }, shareBase: 100, ...extra,
  };
}

/** An admin's API call: the parsed answer, or an error naming the status and the body. */
async function adminCall(url: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** A hand-driven agent connection: what it sent, what it got, and how it ended. */
class FakeAgent {
  readonly received: { type: string; [key: string]: unknown }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  private readonly socket: WebSocket;

  constructor(url: string, token: string) {
    this.socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${token}` } });
    this.socket.on('message', (data) => this.received.push(JSON.parse(String(data)) as never));
    this.socket.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  sendBinary(bytes: Buffer): void {
    this.socket.send(bytes, { binary: true });
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.socket.close();
  }
}

describe('agent connection: validated messages, node-bound tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-agent-protocol-'));
  let server: RunningServer;
  const tokens: Record<string, string> = {};
  const agents: FakeAgent[] = [];

  const api = (method: string, path: string, body?: unknown) => adminCall(server.url, method, path, body);
  const connect = async (token: string) => {
    const agent = new FakeAgent(server.url, token);
    agents.push(agent);
    await agent.opened;
    return agent;
  };
  const alive = async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    await api('GET', '/v1/apps');
  };
  const events = async (type: string) => ((await api('GET', '/v1/events?limit=1000')).events as { type: string; message: string; node?: string; instance?: string }[]).filter((e) => e.type === type);

  before(async () => {
    server = await startServer({ dataDir: dir, port: 0, bootstrapToken: ADMIN, reconcileIntervalMs: 200 });
    for (const node of ['n1', 'n2']) tokens[node] = (await api('POST', '/v1/tokens', { name: node, role: 'agent' })).token as string;
    tokens.join = (await api('POST', '/v1/tokens', { name: 'joiner', role: 'join' })).token as string;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('malformed messages close their own socket with a reason and an event; the server stays up', async () => {
    const cases: [string, (agent: FakeAgent) => void, RegExp][] = [
      ['null', (a) => a.send('null'), /invalid message/],
      ['hello without a node', (a) => a.send({ type: 'hello' }), /invalid message: node/],
      ['not JSON', (a) => a.send('{"type":'), /not JSON/],
      ['a binary frame', (a) => a.sendBinary(Buffer.from([0, 1, 2])), /not JSON/],
      ['an unknown type', (a) => a.send({ type: 'exec', command: 'id' }), /invalid message/],
      ['an array', (a) => a.send([1, 2, 3]), /invalid message/],
      ['a heartbeat before hello', (a) => a.send({ type: 'heartbeat', node: nodeInfo('n1'), endpoints: [] }), /heartbeat before hello/],
      ['a hello with a huge name', (a) => a.send({ type: 'hello', node: nodeInfo('n'.repeat(300)), statuses: [], endpoints: [] }), /node\.name/],
      ['a hello with a hostile address', (a) => a.send({ type: 'hello', node: nodeInfo('n1', { address: '1.2.3.4; } server { listen 80' }), statuses: [], endpoints: [] }), /node\.address/],
      ['a status with a prototype key', (a) => a.send('{"type":"status","statuses":[{"__proto__":{"polluted":1}}]}'), /invalid message/],
    ];
    for (const [what, send, reason] of cases) {
      const agent = await connect(tokens.n1!);
      send(agent);
      const { code, reason: said } = await agent.closed;
      assert.equal(code, 1008, `${what}: closed with ${code} ${said}`);
      assert.match(said, reason, what);
      await alive();
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const refused = await events('agent.refused');
    assert.ok(refused.length >= cases.length, `${refused.length} agent.refused events`);
    assert.ok(refused.every((e) => /token "n1"/.test(e.message)));
  });

  let n1: FakeAgent;
  let n2: FakeAgent;
  let victim = '';

  test('an agent token says hello only as its own node', async () => {
    const impostor = await connect(tokens.n1!);
    impostor.send({ type: 'hello', node: nodeInfo('n2'), statuses: [], endpoints: [] });
    const { reason } = await impostor.closed;
    assert.match(reason, /agent token "n1" speaks for node n1, not n2/);
    assert.equal(((await api('GET', '/v1/nodes')).nodes as unknown[]).length, 0);

    n2 = await connect(tokens.n2!);
    n2.send({ type: 'hello', node: nodeInfo('n2', { labels: { zone: 'b' } }), statuses: [], endpoints: [] });
    n1 = await connect(tokens.n1!);
    n1.send({ type: 'hello', node: nodeInfo('n1', { address: '10.9.9.9' }), statuses: [], endpoints: [] });
    await until('both nodes to be ready', async () => ((await api('GET', '/v1/nodes')).nodes as { state: string }[]).filter((n) => n.state === 'ready').length === 2);
    assert.ok(n1.received.some((m) => m.type === 'welcome') && n2.received.some((m) => m.type === 'welcome'));

    // A second hello on the same connection cannot switch nodes either.
    const switcher = await connect(tokens.n1!);
    switcher.send({ type: 'hello', node: nodeInfo('n1', { address: '10.9.9.9' }), statuses: [], endpoints: [] });
    switcher.send({ type: 'hello', node: nodeInfo('n2'), statuses: [], endpoints: [] });
    assert.match((await switcher.closed).reason, /speaks for node n1, not n2|hello as node n2 on the connection of node n1/);
    await until('n1 to be connected again', async () => {
      n1 = await connect(tokens.n1!);
      n1.send({ type: 'hello', node: nodeInfo('n1', { address: '10.9.9.9' }), statuses: [], endpoints: [] });
      await new Promise((r) => setTimeout(r, 200));
      return n1.open;
    });
  });

  test('an agent reports and registers only for its own instances', async () => {
    await api('POST', '/v1/apps', { app: 'victim', entrypoints: { web: { command: ['sleep', '1000'], replicas: 1, ports: [{ name: 'http' }], placement: { labels: { zone: 'b' } } } } });
    victim = await until('the victim instance to be placed on n2', async () => {
      const { instances } = (await api('GET', '/v1/instances?app=victim')) as { instances: { id: string; node: string }[] };
      return instances.find((i) => i.node === 'n2')?.id;
    });
    const status: InstanceStatus = { id: victim, state: 'failed', healthy: false, restarts: 99, exitCode: 1, runtimeId: null, startedAt: null, message: 'forged', updatedAt: Date.now() };
    const endpoint: Endpoint = { id: victim, app: 'victim', env: 'default', entry: 'web', node: 'n1', address: '10.6.6.6', ports: { http: 80 }, labels: {}, registeredAt: Date.now(), source: 'agent' };
    n1.send({ type: 'status', statuses: [status] });
    n1.send({ type: 'registry', requestId: 'r1', register: [endpoint], withdraw: [] });
    n1.send({ type: 'events', events: [{ time: Date.now(), level: 'error', type: 'instance.failed', app: 'victim', entry: 'web', instance: victim, message: 'forged failure' }] });
    await until('the registry request to be acknowledged', () => n1.received.some((m) => m.type === 'ack' && m.requestId === 'r1'));
    assert.ok(n1.open, 'reports about other nodes are ignored, not fatal');

    const { instances } = (await api('GET', '/v1/instances?app=victim')) as { instances: { id: string; state: string; restarts: number }[] };
    const view = instances.find((i) => i.id === victim)!;
    assert.notEqual(view.restarts, 99, 'the forged status was not stored');
    assert.deepEqual((await api('GET', '/v1/registry?app=victim')).endpoints, []);
    assert.ok(!(await events('instance.failed')).some((e) => e.message === 'forged failure'));
    await until('the refusal to be recorded', async () => (await events('agent.refused_report')).some((e) => e.node === 'n1'));

    // Its own node registers it; the endpoint is built from the instance's record, whatever the agent claimed.
    n2.send({ type: 'registry', requestId: 'r2', register: [{ ...endpoint, node: 'n2', address: '127.0.0.1', ports: { http: 1 }, labels: { x: 'y' } }], withdraw: [] });
    const [registered] = await until('the endpoint to be registered', async () => {
      const { endpoints } = (await api('GET', '/v1/registry?app=victim')) as { endpoints: Endpoint[] };
      return endpoints.length === 1 && endpoints;
    });
    assert.equal(registered!.node, 'n2');
    assert.equal(registered!.address, '127.0.0.1');
    assert.notEqual(registered!.ports.http, 1, 'the port is the one the server assigned');
    assert.deepEqual(registered!.labels, {});

    // Another node cannot withdraw it, nor drop it with its heartbeat.
    n1.send({ type: 'registry', requestId: 'r3', register: [], withdraw: [{ app: 'victim', env: 'default', entry: 'web', id: victim }] });
    n1.send({ type: 'heartbeat', node: nodeInfo('n1', { address: '10.9.9.9' }), endpoints: [] });
    await until('the withdrawal to be acknowledged', () => n1.received.some((m) => m.type === 'ack' && m.requestId === 'r3'));
    assert.equal(((await api('GET', '/v1/registry?app=victim')).endpoints as unknown[]).length, 1);
  });

  test('an agent reports usage only for its own instances, and an oversized or malformed report costs its socket', async () => {
    const sample = (id: string, cpuCores: number) => ({
      id, cpuCores, cpuSeconds: 10, periods: 100, throttledPeriods: 5, throttledSeconds: 0.5, memoryBytes: 1000, memoryLimitBytes: null,
      oomKills: 0, netRxBytes: null, netTxBytes: null, blockReadBytes: 0, blockWriteBytes: 0,
    });
    const latest = async () => ((await api('GET', '/v1/usage?app=victim')).instances as { id: string; latest: { cpuCores: number } | null }[]).find((i) => i.id === victim)?.latest;
    n1.send({ type: 'usage', at: Date.now(), intervalMs: 10_000, samples: [sample(victim, 3.5)] });
    n2.send({ type: 'usage', at: Date.now(), intervalMs: 10_000, samples: [sample(victim, 0.25)] });
    const own = await until("n2's report of its own instance to be kept", latest);
    assert.equal(own!.cpuCores, 0.25);
    n1.send({ type: 'usage', at: Date.now(), intervalMs: 10_000, samples: [sample(victim, 3.5)] });
    // One socket's messages are handled in order: the acknowledgement comes after the usage was.
    n1.send({ type: 'registry', requestId: 'after-usage', register: [], withdraw: [] });
    await until('the message after the usage report to be acknowledged', () => n1.received.some((m) => m.type === 'ack' && m.requestId === 'after-usage'));
    assert.equal((await latest())?.cpuCores, 0.25, "n1's claim about n2's instance was dropped");
    assert.ok(n1.open, 'a report about another node is ignored, not fatal');

    for (const [what, samples] of [
      ['negative CPU', [{ ...sample(victim, -1) }]],
      ['a huge counter', [{ ...sample(victim, 1), memoryBytes: 2 ** 60 }]],
      ['more samples than a node may hold', Array.from({ length: 10_001 }, () => sample(victim, 0))],
    ] as const) {
      const agent = await connect(tokens.n1!);
      agent.send({ type: 'usage', at: Date.now(), intervalMs: 10_000, samples });
      const { code, reason } = await agent.closed;
      assert.equal(code, 1008, `${what}: closed with ${code} ${reason}`);
      assert.match(reason, /invalid message: samples/, what);
    }
    await alive();
  });

  test('an agent cannot write events other than instance.* and node.*, nor relay logs it was not asked for', async () => {
    n1.send({ type: 'log.lines', requestId: 'not-mine', lines: ['x'] });
    n1.send({ type: 'log.end', requestId: 'not-mine' });
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(n1.open);
    n1.send({ type: 'events', events: [{ time: Date.now(), level: 'info', type: 'token.created', message: 'admin token "x" created' }] });
    assert.match((await n1.closed).reason, /agent events are instance\.\* or node\.\*/);
    assert.ok(!(await events('token.created')).some((e) => e.message === 'admin token "x" created'));
  });

  test('inspection results speak for the own node only, bounded; an agent that does not inspect is listed as too old', async () => {
    const inspector = async () => {
      const agent = await connect(tokens.n1!);
      agent.send({ type: 'hello', node: nodeInfo('n1', { address: '10.9.9.9' }), statuses: [], endpoints: [], accepts: ['inspect'] });
      await until('the inspection policy to be sent', () => agent.received.some((m) => m.type === 'inspect.policy'));
      return agent;
    };
    // n2's agent said nothing of inspection in its hello: an older agent.
    assert.equal(((await api('GET', '/v1/nodes/n2/inspection')).summary as { text: string }).text, 'not inspected (agent too old)');
    const refused = await fetch(`${server.url}/v1/nodes/n2/inspect`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(refused.status, 409);
    assert.match(await refused.text(), /not inspected \(agent too old\)/);

    const forged = { check: 'kernel', status: 'fail', value: '2.6', threshold: '>= 4.19', message: 'forged' };
    const impostor = await inspector();
    impostor.send({ type: 'inspected', node: 'n2', results: [forged] });
    assert.match((await impostor.closed).reason, /inspection results for node n2 on the connection of node n1/);
    assert.equal((await api('GET', '/v1/nodes/n2/inspection')).inspection, null);

    for (const [what, message, reason] of [
      ['too many results', { type: 'inspected', node: 'n1', results: Array.from({ length: 129 }, () => forged) }, /invalid message: results/],
      ['an unknown status', { type: 'inspected', node: 'n1', results: [{ ...forged, status: 'meh' }] }, /invalid message: results\[0\]\.status/],
      ['a huge value', { type: 'inspected', node: 'n1', results: [{ ...forged, value: 'x'.repeat(300) }] }, /invalid message: results\[0\]\.value/],
    ] as const) {
      const agent = await inspector();
      agent.send(message);
      assert.match((await agent.closed).reason, reason, what);
    }
    assert.equal((await api('GET', '/v1/nodes/n1/inspection')).inspection, null, 'nothing of the refused messages was stored');

    // Its own results, asked for: stored, and the answer to the request.
    const own = await inspector();
    const asked = api('POST', '/v1/nodes/n1/inspect');
    const request = await until('the inspect request', () => own.received.find((m) => m.type === 'inspect'));
    own.send({ type: 'inspected', node: 'n1', requestId: request.requestId, results: [{ ...forged, message: 'kernel 2.6 is older than 4.19' }] });
    const answer = (await asked) as { inspection: { checks: Record<string, { status: string; since: number }> }; summary: { text: string } };
    assert.equal(answer.inspection.checks.kernel?.status, 'fail');
    assert.equal(answer.summary.text, '1 fail');
    own.close();
  });

  test('a join token adds a new node with a token of its own, and never takes over an existing one', async () => {
    const takeover = await connect(tokens.join!);
    takeover.send({ type: 'hello', node: nodeInfo('n2'), statuses: [], endpoints: [] });
    assert.match((await takeover.closed).reason, /cannot join node n2: it exists already/);

    const joiner = await connect(tokens.join!);
    joiner.send({ type: 'hello', node: nodeInfo('n3'), statuses: [], endpoints: [] });
    const welcome = await until('the welcome with a token', () => joiner.received.find((m) => m.type === 'welcome'));
    const minted = welcome.token as string;
    assert.match(minted, /^gty_/);
    const listed = (await api('GET', '/v1/tokens')).tokens as { name: string; role: string; node?: string }[];
    const bound = listed.find((t) => t.node === 'n3');
    assert.equal(bound?.role, 'agent');
    joiner.close();

    // The minted token speaks for n3 only; the join token cannot join n3 again.
    const again = await connect(tokens.join!);
    again.send({ type: 'hello', node: nodeInfo('n3'), statuses: [], endpoints: [] });
    assert.match((await again.closed).reason, /exists already/);
    const back = await connect(minted);
    back.send({ type: 'hello', node: nodeInfo('n1'), statuses: [], endpoints: [] });
    assert.match((await back.closed).reason, /speaks for node n3, not n1/);
    assert.equal((await fetch(`${server.url}/v1/apps`, { headers: { authorization: `Bearer ${minted}` } })).status, 403);
  });

  test('an expired join token is refused', async () => {
    const { token } = (await api('POST', '/v1/tokens', { name: 'brief', role: 'join', ttl: '1s' })) as { token: string };
    await new Promise((r) => setTimeout(r, 1100));
    await assert.rejects(connect(token), /HTTP 401/);
  });
});

describe('assignments: what changed to agents that take it, the whole set to older ones', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-agent-deltas-'));
  let server: RunningServer;
  const agents: FakeAgent[] = [];
  const api = (method: string, path: string, body?: unknown) => adminCall(server.url, method, path, body);
  type Assigned = { type: string; instances: { id: string; node: string }[]; gone?: string[] };
  const assignmentMessages = (agent: FakeAgent) => agent.received.filter((m) => m.type.startsWith('assignments')) as unknown as Assigned[];

  before(async () => {
    server = await startServer({ dataDir: dir, port: 0, bootstrapToken: ADMIN, reconcileIntervalMs: 200 });
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a new instance is sent alone to a node that takes changes; the whole set to one that does not; a removal says gone', async () => {
    const connect = async (name: string, accepts?: string[]) => {
      const token = (await api('POST', '/v1/tokens', { name, role: 'agent' })).token as string;
      const agent = new FakeAgent(server.url, token);
      agents.push(agent);
      await agent.opened;
      agent.send({ type: 'hello', node: nodeInfo(name, { labels: { role: name } }), statuses: [], endpoints: [], ...(accepts ? { accepts } : {}) });
      await until(`${name} to get its first assignments`, () => assignmentMessages(agent).length > 0);
      return agent;
    };
    const fresh = await connect('fresh', ['assignments.changed']);
    const older = await connect('older');
    assert.equal(assignmentMessages(fresh)[0]!.type, 'assignments', 'the whole set first');

    const spec = (replicas: number) => ({ app: 'spread', entrypoints: { web: { command: ['sleep', '1000'], replicas, placement: { strategy: 'spread' } } } });
    await api('POST', '/v1/apps', spec(2));
    const one = await until('each node to be told of its instance', () => {
      const f = assignmentMessages(fresh).at(-1)!;
      const o = assignmentMessages(older).at(-1)!;
      return f.instances.length === 1 && o.instances.length === 1 && { f, o };
    });
    assert.equal(one.f.type, 'assignments.changed');
    assert.equal(one.o.type, 'assignments');

    await api('POST', '/v1/apps', spec(4));
    const two = await until('a second instance on each node', () => {
      const f = assignmentMessages(fresh).at(-1)!;
      const o = assignmentMessages(older).at(-1)!;
      return f.instances.some((i) => i.id !== one.f.instances[0]!.id) && o.instances.length === 2 && { f, o };
    });
    assert.equal(two.f.type, 'assignments.changed');
    assert.deepEqual(two.f.instances.map((i) => i.id).includes(one.f.instances[0]!.id), false, 'the unchanged instance is not sent again');
    assert.deepEqual(two.f.gone, []);

    await api('DELETE', '/v1/apps/spread');
    const removal = await until('the fresh node told to remove its instances', () => assignmentMessages(fresh).find((m) => m.type === 'assignments.changed' && m.instances.some((i) => (i as { desired?: string }).desired === 'removed')));
    assert.ok(removal.instances.every((i) => i.node === 'fresh'));
    // Once the node confirms, the records go: the node hears they are gone.
    const ids = two.f.instances.map((i) => i.id).concat(one.f.instances.map((i) => i.id));
    fresh.send({ type: 'status', statuses: ids.map((id) => ({ id, state: 'removed', healthy: null, restarts: 0, exitCode: null, runtimeId: null, startedAt: null, message: null, updatedAt: Date.now() })) });
    const gone = await until('the fresh node told they are gone', () => new Set(assignmentMessages(fresh).flatMap((m) => m.gone ?? [])).size === ids.length);
    assert.ok(gone);
  });
});
