import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildSnapshot,
  capacity,
  entryRequest,
  instancePlacement,
  parseSelector,
  plan,
  planAll,
  planAndCommit,
  PlacementConflict,
  type BoundCpu,
  type Placement,
  type PlacementRequest,
  type PoolInfo,
  type SchedNode,
  type SharedCpu,
} from '../src/scheduler/index.js';
import { parseAppSpec } from '../src/model/spec.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function node(name: string, extra: Partial<SchedNode> = {}): SchedNode {
  return { name, state: 'ready', labels: {}, cores: 8, memoryBytes: 16 * GiB, portRange: [30000, 30099], ...extra };
}

function req(extra: Partial<PlacementRequest> = {}): PlacementRequest {
  return { app: 'shop', entry: 'web', cpu: 1, memoryBytes: 256 * MiB, ...extra };
}

const snapshot = (nodes: SchedNode[], pools?: PoolInfo[], placements?: Placement[]) => buildSnapshot({ nodes, pools, placements });
const nodesOf = (r: { placements: Placement[] }) => r.placements.map((p) => p.node);
const countBy = (r: { placements: Placement[] }) => {
  const m: Record<string, number> = {};
  for (const p of r.placements) m[p.node] = (m[p.node] ?? 0) + 1;
  return m;
};

// ---- CPU model ----

test('cpu: 3.2 bound CPUs are 3 exclusive cores plus 0.2 of a fragment core', () => {
  const snap = snapshot([node('a')]);
  const r = planAndCommit(snap, req({ cpu: 3.2, cpuBind: true }));
  const cpu = r.placements[0]!.cpu as BoundCpu;
  assert.deepEqual(cpu, { mode: 'bound', shareBase: 100, shares: 320, exclusive: [0, 1, 2], fragment: { core: 7, shares: 20 } });
});

test('cpu: shareBase 1000 gives 0.001 CPU granularity; whole CPUs have no fragment', () => {
  const snap = snapshot([node('a', { shareBase: 1000 })]);
  const r = planAndCommit(snap, req({ cpu: 2.125, cpuBind: true }));
  assert.deepEqual(r.placements[0]!.cpu, { mode: 'bound', shareBase: 1000, shares: 2125, exclusive: [0, 1], fragment: { core: 7, shares: 125 } });
  const whole = planAndCommit(snap, req({ cpu: 2, cpuBind: true }));
  assert.deepEqual(whole.placements[0]!.cpu, { mode: 'bound', shareBase: 1000, shares: 2000, exclusive: [2, 3] });
});

test('cpu: fragments go to the fullest core they fit on, else a fresh core', () => {
  const snap = snapshot([node('a', { cores: 4 })]);
  const first = planAndCommit(snap, req({ cpu: 0.5, cpuBind: true })).placements[0]!.cpu as BoundCpu;
  assert.deepEqual(first.fragment, { core: 3, shares: 50 });
  const second = planAndCommit(snap, req({ cpu: 0.3, cpuBind: true })).placements[0]!.cpu as BoundCpu;
  assert.deepEqual(second.fragment, { core: 3, shares: 30 });
  const third = planAndCommit(snap, req({ cpu: 1.4, cpuBind: true })).placements[0]!.cpu as BoundCpu;
  assert.deepEqual(third, { mode: 'bound', shareBase: 100, shares: 140, exclusive: [0], fragment: { core: 2, shares: 40 } });
  const fourth = planAndCommit(snap, req({ cpu: 0.2, cpuBind: true })).placements[0]!.cpu as BoundCpu;
  assert.deepEqual(fourth.fragment, { core: 3, shares: 20 }, 'core 3 (80 used) is fuller than core 2 (40 used)');
  assert.equal(snap.describe('a').fragmentCores, 1, 'core 3 is now full, core 2 holds a fragment');
});

test('cpu: unbound instances get a CFS quota and run on the shared pool', () => {
  const snap = snapshot([node('a', { cores: 4, reserved: { cores: 1, memoryBytes: 0 } })]);
  const r = planAndCommit(snap, req({ cpu: 1.5 }));
  assert.deepEqual(r.placements[0]!.cpu as SharedCpu, { mode: 'shared', shareBase: 100, shares: 150, quotaMicros: 150_000, periodMicros: 100_000 });
  assert.deepEqual(snap.sharedCpuset('a'), [1, 2, 3]);
  planAndCommit(snap, req({ cpu: 1, cpuBind: true }));
  assert.deepEqual(snap.sharedCpuset('a'), [2, 3], 'an exclusive core leaves the pool');
});

test('cpu: reserved cores and memory are never handed out', () => {
  const snap = snapshot([node('a', { cores: 4, memoryBytes: 4 * GiB, reserved: { cores: 2, memoryBytes: GiB } })]);
  const r = planAndCommit(snap, req({ cpu: 2, cpuBind: true, memoryBytes: 3 * GiB }));
  assert.deepEqual((r.placements[0]!.cpu as BoundCpu).exclusive, [2, 3]);
  const more = plan(snap, req({ cpu: 0.1, memoryBytes: MiB }));
  assert.equal(more.placements.length, 0);
  assert.equal(more.unplaced[0]!.reason, '0/1 nodes: 1 insufficient cpu (need 0.1, best free 0)');
  const mem = plan(snapshot([node('b', { memoryBytes: 4 * GiB, reserved: { cores: 0, memoryBytes: GiB } })]), req({ memoryBytes: 3 * GiB + 1 }));
  assert.equal(mem.unplaced[0]!.reason, '0/1 nodes: 1 insufficient memory (need 3Gi, best free 3Gi)');
});

test('cpu: bound cores and the shared pool share one budget', () => {
  const snap = snapshot([node('a', { cores: 4 })]);
  planAndCommit(snap, req({ cpu: 3 }));
  const bind = plan(snap, req({ cpu: 2, cpuBind: true }));
  assert.equal(bind.unplaced[0]!.reason, '0/1 nodes: 1 insufficient cpu to bind (need 2, best free 1)');
  assert.equal(planAndCommit(snap, req({ cpu: 0.6, cpuBind: true })).placements.length, 1);
  const shared = plan(snap, req({ cpu: 0.5 }));
  assert.equal(shared.unplaced[0]!.reason, '0/1 nodes: 1 insufficient cpu (need 0.5, best free 0.4)');

  const other = snapshot([node('b', { cores: 4 })]);
  planAndCommit(other, req({ cpu: 3, cpuBind: true }));
  assert.deepEqual(other.sharedCpuset('b'), [3]);
  assert.equal(plan(other, req({ cpu: 1.5 })).placements.length, 0, 'one pool core cannot run 1.5 CPUs of quota');
  assert.equal(planAndCommit(other, req({ cpu: 1 })).placements.length, 1);
});

test('cpu: a fragment on a fresh core still leaves enough whole cores', () => {
  const snap = snapshot([node('a', { cores: 2 })]);
  planAndCommit(snap, req({ cpu: 0.9, cpuBind: true }));
  assert.equal(plan(snap, req({ cpu: 1.2, cpuBind: true })).placements.length, 0, 'needs a whole core and 0.2 elsewhere; only 1.1 is free');
  const r = planAndCommit(snap, req({ cpu: 1.1, cpuBind: true }));
  assert.deepEqual(r.placements[0]!.cpu, { mode: 'bound', shareBase: 100, shares: 110, exclusive: [0], fragment: { core: 1, shares: 10 } });
});

// ---- other dimensions ----

test('memory is never overcommitted', () => {
  const snap = snapshot([node('a', { memoryBytes: 4 * GiB })]);
  const r = planAndCommit(snap, req({ cpu: 0.1, memoryBytes: GiB, count: 5 }));
  assert.equal(r.placements.length, 4);
  assert.deepEqual(r.unplaced, [{ count: 1, reason: '0/1 nodes: 1 insufficient memory (need 1Gi, best free 0)' }]);
});

test('ports: fixed host ports are exclusive, others get the lowest free port of the range per protocol', () => {
  const snap = snapshot([node('a', { portRange: [30000, 30002] }), node('b', { portRange: [30000, 30002] })]);
  const fixed = planAndCommit(snap, req({ cpu: 0.1, count: 3, ports: [{ name: 'http', host: 8080, protocol: 'tcp', container: 80 }] }));
  assert.equal(fixed.placements.length, 2);
  assert.deepEqual(fixed.placements[0]!.ports, [{ name: 'http', container: 80, host: 8080, protocol: 'tcp' }]);
  assert.equal(fixed.unplaced[0]!.reason, '0/2 nodes: 2 host port 8080/tcp in use');

  const one = snapshot([node('c', { portRange: [30000, 30002] })]);
  const dyn = planAndCommit(one, req({ cpu: 0.1, ports: [{ name: 'a', protocol: 'tcp' }, { name: 'b', protocol: 'udp' }, { name: 'c', host: 30001, protocol: 'tcp' }] }));
  assert.deepEqual(dyn.placements[0]!.ports, [
    { name: 'a', host: 30000, protocol: 'tcp' },
    { name: 'b', host: 30000, protocol: 'udp' },
    { name: 'c', host: 30001, protocol: 'tcp' },
  ]);
  const next = planAndCommit(one, req({ cpu: 0.1, entry: 'api', ports: [{ name: 'a', protocol: 'tcp' }] }));
  assert.deepEqual(next.placements[0]!.ports, [{ name: 'a', host: 30002, protocol: 'tcp' }]);
  const full = plan(one, req({ cpu: 0.1, entry: 'api', ports: [{ name: 'a', protocol: 'tcp' }] }));
  assert.equal(full.unplaced[0]!.reason, '0/1 nodes: 1 no free host port');
});

test('pools: a request stays in its pool and may only use pools of its team or unowned ones', () => {
  const pools = [{ name: 'batch', team: 'data' }, { name: 'edge' }];
  const snap = snapshot([node('a'), node('b', { pool: 'batch' }), node('c', { pool: 'edge' })], pools);
  assert.deepEqual(nodesOf(plan(snap, req())), ['a']);
  assert.deepEqual(nodesOf(plan(snap, req({ pool: 'batch', team: 'data' }))), ['b']);
  assert.deepEqual(nodesOf(plan(snap, req({ pool: 'edge', team: 'web' }))), ['c']);
  const denied = plan(snap, req({ pool: 'batch', team: 'web' }));
  assert.equal(denied.unplaced[0]!.reason, '0/3 nodes: 2 not in pool batch, 1 pool batch belongs to team data (not web)');
});

test('labels: equals, in, not-in, exists and not-exists, with their reasons', () => {
  const snap = snapshot([
    node('a', { labels: { zone: 'a', disk: 'ssd' } }),
    node('b', { labels: { zone: 'b', disk: 'hdd' } }),
    node('c', { labels: { zone: 'c', gpu: 'yes' } }),
  ]);
  const where = (selector: PlacementRequest['selector']) => nodesOf(plan(snap, req({ selector, strategy: { kind: 'each', perNode: 1 } }))).sort();
  assert.deepEqual(where({ zone: 'b' }), ['b']);
  assert.deepEqual(where([{ key: 'zone', op: 'in', values: ['a', 'c'] }]), ['a', 'c']);
  assert.deepEqual(where([{ key: 'zone', op: 'notin', values: ['a'] }]), ['b', 'c']);
  assert.deepEqual(where([{ key: 'gpu', op: 'exists' }]), ['c']);
  assert.deepEqual(where([{ key: 'disk', op: 'exists' }, { key: 'disk', op: 'notin', values: ['hdd'] }]), ['a']);
  assert.deepEqual(where(parseSelector('zone in (a, b), !gpu, disk!=ssd')), ['b']);
  const reason = (selector: PlacementRequest['selector']) => plan(snap, req({ selector, count: 1 })).unplaced[0]!.reason;
  assert.equal(reason({ zone: 'z' }), '0/3 nodes: 3 label zone!=z');
  assert.equal(reason([{ key: 'zone', op: 'in', values: ['x', 'y'] }]), '0/3 nodes: 3 label zone not in (x,y)');
  assert.equal(reason([{ key: 'zone', op: 'notin', values: ['a', 'b', 'c'] }]), '0/3 nodes: 3 label zone in (a,b,c)');
  assert.equal(reason([{ key: 'rack', op: 'exists' }]), '0/3 nodes: 3 no label rack');
  assert.equal(reason([{ key: 'zone', op: 'notexists' }]), '0/3 nodes: 3 label zone present');
  assert.deepEqual(parseSelector('zone=a, rack notin (r1,r2), ssd'), [
    { key: 'zone', op: 'eq', value: 'a' },
    { key: 'rack', op: 'notin', values: ['r1', 'r2'] },
    { key: 'ssd', op: 'exists' },
  ]);
  assert.throws(() => parseSelector('zone in a'), /cannot read label selector/);
});

test('node states: cordoned, draining and down nodes take nothing new', () => {
  const snap = snapshot([node('a', { state: 'cordoned' }), node('b', { state: 'draining' }), node('c', { state: 'down' }), node('d')]);
  assert.deepEqual(nodesOf(plan(snap, req({ count: 2 }))), ['d', 'd']);
  const r = plan(snap, req({ cpu: 9 }));
  assert.equal(r.unplaced[0]!.reason, '0/4 nodes: 1 insufficient cpu (need 9, best free 8), 1 node cordoned, 1 node down, 1 node draining');
});

test('runtimes: a request naming a runtime needs a node offering it', () => {
  const snap = snapshot([node('a', { runtimes: ['process'] }), node('b', { runtimes: ['docker', 'process'] }), node('c')]);
  assert.deepEqual(nodesOf(plan(snap, req({ runtime: 'docker', strategy: { kind: 'each', perNode: 1 } }))).sort(), ['b', 'c'], 'nodes that list no runtimes take any');
  const r = plan(snapshot([node('a', { runtimes: ['process'] })]), req({ runtime: 'docker' }));
  assert.equal(r.unplaced[0]!.reason, '0/1 nodes: 1 no docker runtime');
});

test('dedicated: one project per host', () => {
  const snap = snapshot([node('a'), node('b'), node('c', { dedicatedTo: 'promo' })], undefined, [placementOf('a', 'other')]);
  const promo = planAndCommit(snap, req({ app: 'promo', dedicated: true, count: 2 }));
  assert.deepEqual(nodesOf(promo).sort(), ['b', 'c'], 'never the node with another app');
  const blocked = plan(snap, req({ app: 'other', cpu: 7.5 }));
  assert.equal(blocked.unplaced[0]!.reason, '0/3 nodes: 1 dedicated to app promo, 1 insufficient cpu (need 7.5, best free 7), 1 taken by dedicated app promo');
  assert.ok(nodesOf(plan(snap, req({ app: 'promo', dedicated: true, count: 5 }))).every((n) => n !== 'a'));
  assert.deepEqual(nodesOf(plan(snap, req({ app: 'promo', count: 3, strategy: 'binpack' }))).length, 3, 'the dedicated app itself may add more');
  const onlyUsed = plan(snapshot([node('x')], undefined, [placementOf('x', 'other')]), req({ app: 'promo', dedicated: true }));
  assert.equal(onlyUsed.unplaced[0]!.reason, '0/1 nodes: 1 runs other apps (dedicated request)');
  snap.release(promo.placements.find((p) => p.node === 'b')!);
  assert.deepEqual(nodesOf(plan(snap, req({ app: 'other', count: 2, strategy: 'spread' }))).sort(), ['a', 'b'], 'b is free again once the dedicated instance left');
});

test('ports held outside Gantry: blocked for new placements; an instance that met one moves only that port', () => {
  const x = placementOf('a', 'shop', { ports: [{ name: 'http', host: 100, protocol: 'tcp' }, { name: 'admin', host: 101, protocol: 'tcp' }, { name: 'dns', host: 100, protocol: 'udp' }] });
  const y = placementOf('a', 'other', { ports: [{ name: 'http', host: 102, protocol: 'tcp' }] });
  const snap = snapshot([node('a', { portRange: [100, 105] })], [], [x, y]);
  snap.blockPorts('a', [{ host: 103, protocol: 'tcp' }]);
  assert.equal(snap.describe('a').portsUsed, 5);

  // 100/tcp turned out to be somebody else's: http moves past everything used or blocked.
  const moved = snap.movePorts(x, [{ host: 100, protocol: 'tcp' }]);
  assert.deepEqual(moved, [
    { name: 'http', host: 104, protocol: 'tcp' },
    { name: 'admin', host: 101, protocol: 'tcp' },
    { name: 'dns', host: 100, protocol: 'udp' },
  ]);
  assert.equal(snap.describe('a').portsUsed, 6, '100/tcp stays blocked, 104/tcp is taken');

  const next = planAndCommit(snap, req({ cpu: 0.1, entry: 'api', ports: [{ name: 'p', protocol: 'tcp' }] }));
  assert.deepEqual(next.placements[0]!.ports, [{ name: 'p', host: 105, protocol: 'tcp' }]);
  const full = plan(snap, req({ cpu: 0.1, entry: 'api', ports: [{ name: 'p', protocol: 'tcp' }] }));
  assert.equal(full.placements.length, 0);
  assert.equal(full.unplaced[0]!.reason, '0/1 nodes: 1 no free host port');
  assert.throws(() => snap.movePorts({ ...y, ports: next.placements[0]!.ports }, [{ host: 105, protocol: 'tcp' }]), /no free host port on a/);
});

function placementOf(nodeName: string, app: string, extra: Partial<Placement> = {}): Placement {
  return {
    app,
    env: 'default',
    entry: 'web',
    node: nodeName,
    cpu: { mode: 'shared', shareBase: 100, shares: 100, quotaMicros: 100_000, periodMicros: 100_000 },
    memoryBytes: GiB,
    ports: [],
    ...extra,
  };
}

// ---- strategies ----

test('spread evens out the entry across nodes, old instances included', () => {
  const snap = snapshot([node('a'), node('b'), node('c')], undefined, [placementOf('a', 'shop'), placementOf('a', 'shop'), placementOf('b', 'shop')]);
  const r = plan(snap, req({ cpu: 0.5, count: 4 }));
  assert.deepEqual(countBy(r), { c: 3, b: 1 }, 'old a=2 b=1 c=0 end at 2, 2, 3');
});

test('binpack fills the fullest node that fits before the next', () => {
  const snap = snapshot([node('a', { cores: 4 }), node('b', { cores: 4 }), node('c', { cores: 4 })], undefined, [placementOf('b', 'other')]);
  const r = planAndCommit(snap, req({ cpu: 1, count: 5, strategy: 'binpack' }));
  assert.deepEqual(nodesOf(r).slice(0, 3), ['b', 'b', 'b']);
  assert.equal(snap.describe('b').cpuFree, 0);
  assert.equal(nodesOf(r)[3], nodesOf(r)[4], 'then one other node, not both');
});

test('balance evens out resource use across nodes', () => {
  const snap = snapshot(
    [node('a'), node('b'), node('c')],
    undefined,
    [placementOf('a', 'x', { memoryBytes: 8 * GiB }), placementOf('b', 'x', { cpu: { mode: 'shared', shareBase: 100, shares: 400, quotaMicros: 400_000, periodMicros: 100_000 } })],
  );
  const r = planAndCommit(snap, req({ cpu: 1, memoryBytes: GiB, count: 6, strategy: 'balance' }));
  assert.deepEqual(countBy(r), { c: 4, b: 1, a: 1 });
  const load = ['a', 'b', 'c'].map((n) => {
    const d = snap.describe(n);
    return Math.max(d.cpuUsed / d.cpuAllocatable, d.memoryUsed / d.memoryAllocatable);
  });
  assert.ok(Math.max(...load) - Math.min(...load) <= 0.126, `loads ${load}`);
});

test('fill tops nodes up to N of the entry', () => {
  const snap = snapshot([node('a'), node('b'), node('c')], undefined, [placementOf('b', 'shop')]);
  const some = plan(snap, req({ count: 3, strategy: { kind: 'fill', perNode: 2 } }));
  assert.equal(countBy(some).b, 1, 'b is topped up first');
  assert.equal(Object.values(countBy(some)).filter((n) => n === 2).length, 1, 'then one node is filled');
  const all = plan(snap, req({ strategy: { kind: 'fill', perNode: 2 } }));
  assert.deepEqual(countBy(all), { a: 2, b: 1, c: 2 });
  assert.equal(all.wanted, 5);
  const capped = plan(snap, req({ count: 9, strategy: { kind: 'fill', perNode: 2 } }));
  assert.equal(capped.placements.length, 5);
  assert.equal(capped.unplaced[0]!.reason, '0/3 nodes: 3 already 2 of web (fill)');
});

test('each places N on every matching node and says which nodes fell short', () => {
  const snap = snapshot([node('a', { labels: { gpu: 'yes' } }), node('b', { labels: { gpu: 'yes' }, memoryBytes: GiB }), node('c')]);
  const r = plan(snap, req({ memoryBytes: 600 * MiB, selector: [{ key: 'gpu', op: 'exists' }], strategy: { kind: 'each', perNode: 2 } }));
  assert.deepEqual(countBy(r), { a: 2, b: 1 });
  assert.deepEqual(r.unplaced, [{ count: 1, node: 'b', reason: 'b: insufficient memory (need 600Mi, free 424Mi)' }]);
  assert.equal(r.wanted, 4);
  const none = plan(snap, req({ selector: { gpu: 'no' }, strategy: { kind: 'each', perNode: 1 } }));
  assert.deepEqual(none.unplaced, [{ count: 1, reason: 'no node matches: 0/3 nodes: 3 label gpu!=no' }]);
});

// ---- reasons, capacity, seeds, snapshot ----

test('reasons count every node under its first cause, most common first', () => {
  const snap = snapshot([
    node('a', { labels: { zone: 'b' }, memoryBytes: 2 * GiB }),
    node('b', { labels: { zone: 'b' }, memoryBytes: 6 * GiB }),
    node('c', { labels: { zone: 'a' } }),
  ]);
  const r = plan(snap, req({ memoryBytes: 8 * GiB, selector: { zone: 'b' }, count: 3 }));
  assert.deepEqual(r.unplaced, [{ count: 3, reason: '0/3 nodes: 2 insufficient memory (need 8Gi, best free 6Gi), 1 label zone!=b' }]);
  assert.equal(r.wanted, 3);
});

test('capacity: how many more fit and where, the same count plan reaches', () => {
  const snap = snapshot([node('a', { cores: 4 }), node('b', { cores: 2, memoryBytes: GiB }), node('c', { labels: { zone: 'x' } })]);
  const shape = req({ cpu: 0.5, cpuBind: true, memoryBytes: 512 * MiB, selector: [{ key: 'zone', op: 'notin', values: ['x'] }] });
  const cap = capacity(snap, shape);
  assert.deepEqual(cap, { total: 10, nodes: [{ node: 'a', count: 8 }, { node: 'b', count: 2 }], blocked: '1/3 nodes take none: 1 label zone in (x)' });
  const r = plan(snap, { ...shape, count: 11 });
  assert.equal(r.placements.length, 10);
  assert.equal(r.unplaced[0]!.count, 1);
  const mixed = capacity(snap, req({ cpu: 1.5, cpuBind: true, memoryBytes: MiB }));
  assert.deepEqual(mixed.nodes, [{ node: 'c', count: 5 }, { node: 'a', count: 2 }, { node: 'b', count: 1 }]);
  assert.equal(plan(snap, req({ cpu: 1.5, cpuBind: true, memoryBytes: MiB, count: 9 })).placements.length, 8);
  assert.equal(capacity(snap, req({ count: 1, strategy: { kind: 'fill', perNode: 1 } })).total, 3);
});

test('seeds: the same seed gives the same plan; seeds break ties between equal nodes', () => {
  const nodes = Array.from({ length: 20 }, (_, k) => node(`n${k}`));
  const snap = snapshot(nodes);
  const a = plan(snap, req({ count: 5 }), { seed: 7 });
  assert.deepEqual(plan(snap, req({ count: 5 }), { seed: 7 }), a);
  const firsts = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((seed) => plan(snap, req(), { seed }).placements[0]!.node));
  assert.ok(firsts.size > 1, 'different seeds pick different equal nodes');
});

test('plan leaves the snapshot alone; commit applies all or nothing; release frees', () => {
  const snap = snapshot([node('a', { cores: 2 })]);
  const r = plan(snap, req({ cpu: 1, cpuBind: true, count: 2, ports: [{ name: 'p', protocol: 'tcp' }] }));
  assert.equal(r.placements.length, 2);
  assert.equal(snap.describe('a').instances, 0);
  snap.commit(r.placements);
  assert.equal(snap.describe('a').cpuFree, 0);
  assert.throws(() => snap.commit(r.placements), PlacementConflict);
  assert.equal(snap.describe('a').instances, 2, 'a failed commit changes nothing');
  const rebuilt = buildSnapshot({ nodes: [node('a', { cores: 2 })], placements: r.placements });
  assert.deepEqual(rebuilt.describe('a'), snap.describe('a'));
  assert.deepEqual(rebuilt.conflicts, []);
  snap.release(r.placements[0]!);
  assert.deepEqual(plan(snap, req({ cpu: 1, cpuBind: true, ports: [{ name: 'p', protocol: 'tcp' }] })).placements, [r.placements[0]]);
  const bad = buildSnapshot({ nodes: [node('a', { cores: 2 })], placements: [...r.placements, r.placements[0]!] });
  assert.equal(bad.conflicts.length, 1);
});

test('commit refuses plans that hand out reserved, taken or missing cores', () => {
  const snap = snapshot([node('a', { cores: 4, reserved: { cores: 1, memoryBytes: 0 } })]);
  const bound = (exclusive: number[], fragment?: { core: number; shares: number }): Placement =>
    placementOf('a', 'shop', { cpu: { mode: 'bound', shareBase: 100, shares: exclusive.length * 100 + (fragment?.shares ?? 0), exclusive, ...(fragment ? { fragment } : {}) } });
  assert.throws(() => snap.apply(bound([0])), /core 0 is reserved/);
  assert.throws(() => snap.apply(bound([4])), /out of range/);
  snap.apply(bound([1], { core: 3, shares: 60 }));
  assert.throws(() => snap.apply(bound([1])), /core 1 is not free/);
  assert.throws(() => snap.apply(bound([3])), /core 3 is not free/);
  assert.throws(() => snap.apply(bound([], { core: 3, shares: 50 })), /core 3 has 40 shares free/);
  assert.throws(() => snap.apply(placementOf('a', 'shop', { cpu: { mode: 'bound', shareBase: 1000, shares: 1000, exclusive: [2] } })), /shareBase/);
  assert.throws(() => snap.apply(placementOf('nowhere', 'shop')), /unknown node/);
  assert.equal(snap.describe('a').instances, 1);
});

test('planAll plans several entries as one, each seeing the others', () => {
  const snap = snapshot([node('a', { cores: 2 }), node('b', { cores: 2 })]);
  const [web, worker] = planAll(snap, [req({ cpu: 1, cpuBind: true, count: 2 }), req({ entry: 'worker', cpu: 1, cpuBind: true, count: 3 })]);
  assert.equal(web!.placements.length, 2);
  assert.equal(worker!.placements.length, 2);
  assert.equal(worker!.unplaced[0]!.reason, '0/2 nodes: 2 insufficient cpu to bind (need 1, best free 0)');
  assert.equal(snap.describe('a').instances, 0, 'nothing committed yet');
  snap.commit([...web!.placements, ...worker!.placements]);
  assert.equal(snap.describe('a').cpuFree + snap.describe('b').cpuFree, 0);
});

test('instancePlacement loads instances placed before this scheduler as unbound', () => {
  const app = parseAppSpec({ app: 'shop', entrypoints: { web: { command: 'serve', resources: { cpu: 0.5, memory: '256Mi' } } } });
  const instance = { id: 'i1', app: 'shop', env: 'default', entry: 'web', release: 1, node: 'a', runtime: 'process' as const, spec: app.entrypoints.web!, ports: [{ name: 'http', host: 30000, protocol: 'tcp' as const }], desired: 'running' as const, createdAt: 0 };
  const p = instancePlacement(instance);
  assert.deepEqual(p.cpu, { mode: 'shared', shareBase: 100, shares: 50, quotaMicros: 50_000, periodMicros: 100_000 });
  const snap = snapshot([node('a')], undefined, [p]);
  assert.equal(snap.describe('a').memoryUsed, 256 * MiB);
  assert.equal(plan(snap, req({ cpu: 0.1, ports: [{ name: 'x', host: 30000, protocol: 'tcp' }] })).placements.length, 0);
});

test('setNode updates facts and keeps usage; cordoning stops placements', () => {
  const snap = snapshot([node('a'), node('b')]);
  planAndCommit(snap, req({ count: 2 }));
  snap.setNode(node('a', { state: 'cordoned' }));
  assert.equal(snap.describe('a').instances, 1);
  assert.deepEqual(nodesOf(plan(snap, req({ count: 2 }))), ['b', 'b']);
  assert.throws(() => snap.setNode(node('a', { cores: 4 })), /rebuild/);
  assert.throws(() => snap.removeNode('a'), /release/);
  snap.setNode(node('c'));
  assert.equal(snap.size, 3);
});

test('entryRequest reads an app spec entry', () => {
  const app = parseAppSpec({
    app: 'shop',
    team: 'web',
    entrypoints: {
      web: { command: 'serve', replicas: 3, resources: { cpu: 2.5, memory: '1Gi', cpuBind: true }, ports: [{ name: 'http' }], placement: { strategy: 'binpack', labels: { zone: 'a' }, selector: '!gpu', pool: 'edge' } },
      batch: { command: 'work', placement: { strategy: 'each', perNode: 2, dedicated: true } },
    },
  });
  assert.equal(entryRequest(app, 'batch').dedicated, true);
  assert.deepEqual(entryRequest(app, 'batch').strategy, { kind: 'each', perNode: 2 });
  assert.deepEqual(entryRequest(app, 'web'), {
    app: 'shop',
    env: 'default',
    entry: 'web',
    team: 'web',
    cpu: 2.5,
    cpuBind: true,
    memoryBytes: GiB,
    ports: [{ name: 'http', protocol: 'tcp' }],
    runtime: 'process',
    selector: [{ key: 'zone', op: 'eq', value: 'a' }, { key: 'gpu', op: 'notexists' }],
    strategy: { kind: 'binpack' },
    count: 3,
    pool: 'edge',
  });
});
