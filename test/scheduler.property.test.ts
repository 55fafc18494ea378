import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  buildSnapshot,
  capacity,
  plan,
  planAndCommit,
  type LabelTerm,
  type Placement,
  type PlacementRequest,
  type PoolInfo,
  type SchedNode,
  type Snapshot,
  type Strategy,
} from '../src/scheduler/index.js';

const MiB = 2 ** 20;
const POOLS: PoolInfo[] = [{ name: 'default' }, { name: 'batch', team: 'data' }, { name: 'edge' }];
const RUNS = Number(process.env.FC_RUNS ?? 300);

// ---- generators ----

const nodeArb = fc
  .record({
    cores: fc.integer({ min: 1, max: 8 }),
    shareBase: fc.constantFrom(10, 100, 1000),
    reservedCores: fc.integer({ min: 0, max: 2 }),
    memMiB: fc.integer({ min: 2, max: 64 }).map((n) => n * 256),
    reservedMiB: fc.constantFrom(0, 0, 256, 512),
    ports: fc.integer({ min: 0, max: 4 }),
    state: fc.constantFrom<SchedNode['state']>('ready', 'ready', 'ready', 'ready', 'cordoned', 'draining', 'down'),
    zone: fc.constantFrom('a', 'b', undefined),
    pool: fc.constantFrom('default', 'default', 'default', 'default', 'batch', 'edge'),
    dedicatedTo: fc.constantFrom(undefined, undefined, undefined, undefined, 'x'),
  })
  .map(
    (n): Omit<SchedNode, 'name'> => ({
      state: n.state,
      labels: n.zone ? { zone: n.zone } : {},
      pool: n.pool,
      cores: n.cores,
      memoryBytes: n.memMiB * MiB,
      reserved: { cores: Math.min(n.reservedCores, n.cores - 1), memoryBytes: Math.min(n.reservedMiB, n.memMiB - 256) * MiB },
      portRange: [30000, 30000 + n.ports],
      shareBase: n.shareBase,
      ...(n.dedicatedTo ? { dedicatedTo: n.dedicatedTo } : {}),
    }),
  );

const nodesArb = fc.array(nodeArb, { minLength: 1, maxLength: 7 }).map((ns) => ns.map((n, k): SchedNode => ({ ...n, name: `n${k}` })));

const selectorArb = fc.constantFrom<PlacementRequest['selector']>(
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
  { zone: 'a' },
  [{ key: 'zone', op: 'in', values: ['a', 'b'] }] as LabelTerm[],
  [{ key: 'zone', op: 'notin', values: ['a'] }] as LabelTerm[],
  [{ key: 'zone', op: 'exists' }] as LabelTerm[],
  [{ key: 'zone', op: 'notexists' }] as LabelTerm[],
);

const strategyArb = fc.oneof(
  fc.constantFrom<Strategy>({ kind: 'spread' }, { kind: 'binpack' }, { kind: 'balance' }),
  fc.integer({ min: 1, max: 3 }).map((perNode): Strategy => ({ kind: 'fill', perNode })),
  fc.integer({ min: 1, max: 2 }).map((perNode): Strategy => ({ kind: 'each', perNode })),
);

const portsArb = fc.subarray([
  { name: 'a', protocol: 'tcp' as const },
  { name: 'b', protocol: 'udp' as const },
  { name: 'c', host: 30001, protocol: 'tcp' as const },
  { name: 'd', host: 8080, protocol: 'tcp' as const },
]);

const requestArb = fc
  .record({
    app: fc.constantFrom('x', 'y', 'z'),
    entry: fc.constantFrom('web', 'job'),
    cpu: fc.oneof(fc.constantFrom(0.05, 0.1, 0.3, 0.5, 1, 1.2, 2, 2.5, 3.2), fc.double({ min: 0.001, max: 4, noNaN: true })),
    cpuBind: fc.boolean(),
    memoryBytes: fc.integer({ min: 16, max: 1024 }).map((n) => n * MiB),
    ports: fc.oneof(fc.constant([]), portsArb),
    selector: selectorArb,
    strategy: strategyArb,
    count: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
    pool: fc.constantFrom('default', 'default', 'default', 'default', 'default', 'batch', 'edge'),
    team: fc.constantFrom('data', 'data', 'web', undefined),
    dedicated: fc.boolean(),
  })
  .map((r): PlacementRequest => {
    const out: PlacementRequest = { ...r, dedicated: r.dedicated && r.app === 'x' };
    if (out.selector === undefined) delete out.selector;
    if (out.team === undefined) delete out.team;
    if (out.count === undefined) delete out.count;
    return out;
  });

type Op = { kind: 'deploy'; req: PlacementRequest; seed: number; merge: boolean } | { kind: 'release'; pick: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deploy' as const), req: requestArb, seed: fc.integer(), merge: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
);

// ---- an independent model of what must hold ----

function checkInvariants(nodes: SchedNode[], live: Placement[], snap: Snapshot): void {
  for (const n of nodes) {
    const S = n.shareBase ?? 100;
    const reserved = n.reserved?.cores ?? 0;
    const on = live.filter((p) => p.node === n.name);
    const excl = new Array<number>(n.cores).fill(0);
    const frag = new Array<number>(n.cores).fill(0);
    let shares = 0;
    let mem = 0;
    const ports = new Set<string>();
    for (const p of on) {
      shares += p.cpu.shares;
      mem += p.memoryBytes;
      assert.equal(p.cpu.shareBase, S);
      if (p.cpu.mode === 'bound') {
        const { exclusive, fragment } = p.cpu;
        assert.equal(p.cpu.shares, exclusive.length * S + (fragment?.shares ?? 0), 'bound shares = exclusive cores + fragment');
        if (fragment) assert.ok(fragment.shares > 0 && fragment.shares < S, 'one fragment core, less than a core');
        assert.equal(exclusive.length, Math.floor(p.cpu.shares / S), 'whole CPUs are exclusive cores');
        for (const c of exclusive) excl[c]!++;
        if (fragment) frag[fragment.core]! += fragment.shares;
        for (const c of [...exclusive, ...(fragment ? [fragment.core] : [])]) assert.ok(c >= reserved && c < n.cores, `core ${c} of ${n.name} is reserved or out of range`);
      } else {
        assert.equal(p.cpu.quotaMicros, Math.round((p.cpu.shares / S) * p.cpu.periodMicros));
      }
      for (const port of p.ports) {
        const key = `${port.host}/${port.protocol}`;
        assert.ok(!ports.has(key), `host port ${key} handed out twice on ${n.name}`);
        ports.add(key);
      }
    }
    for (let c = 0; c < n.cores; c++) {
      assert.ok(excl[c]! <= 1, `core ${c} of ${n.name} exclusive twice`);
      if (excl[c]) assert.equal(frag[c], 0, `exclusive core ${c} of ${n.name} also holds fragments`);
      assert.ok(frag[c]! <= S, `core ${c} of ${n.name} over its shares`);
    }
    assert.ok(shares <= (n.cores - reserved) * S, `cpu of ${n.name} over capacity`);
    assert.ok(mem <= n.memoryBytes - (n.reserved?.memoryBytes ?? 0), `memory of ${n.name} over capacity`);
    const d = snap.describe(n.name);
    assert.equal(d.instances, on.length);
    assert.equal(d.memoryUsed, mem);
    assert.ok(Math.abs(d.cpuUsed * S - shares) < 1e-6);
  }
}

function checkPolicy(nodes: SchedNode[], req: PlacementRequest, placed: Placement[], before: Placement[]): void {
  for (const p of placed) {
    const n = nodes.find((x) => x.name === p.node)!;
    assert.equal(n.state, 'ready', 'only ready nodes take placements');
    assert.equal(n.pool ?? 'default', req.pool ?? 'default');
    const owner = POOLS.find((x) => x.name === (n.pool ?? 'default'))?.team;
    assert.ok(owner === undefined || owner === req.team, 'pool of another team');
    assert.ok(!n.dedicatedTo || n.dedicatedTo === req.app, 'node dedicated to another app');
    const z = n.labels.zone;
    const sel = req.selector;
    if (sel && !Array.isArray(sel)) assert.equal(z, sel.zone);
    if (Array.isArray(sel)) {
      const t = sel[0]!;
      if (t.op === 'in') assert.ok(z !== undefined && t.values.includes(z));
      if (t.op === 'notin') assert.ok(z === undefined || !t.values.includes(z));
      if (t.op === 'exists') assert.ok(z !== undefined);
      if (t.op === 'notexists') assert.ok(z === undefined);
    }
    if (req.dedicated) assert.ok(!before.some((b) => b.node === p.node && b.app !== req.app), 'dedicated request on a node with another app');
    assert.ok(!before.some((b) => b.node === p.node && b.dedicated && b.app !== req.app), 'node held by a dedicated app');
  }
}

// ---- properties ----

test('property: nothing is handed out twice or beyond capacity, reservations and policies hold', () => {
  fc.assert(
    fc.property(nodesArb, fc.array(opArb, { minLength: 1, maxLength: 20 }), (nodes, ops) => {
      const snap = buildSnapshot({ nodes, pools: POOLS });
      let live: Placement[] = [];
      for (const op of ops) {
        if (op.kind === 'release') {
          if (live.length === 0) continue;
          const k = op.pick % live.length;
          snap.release(live[k]!);
          live = live.filter((_, j) => j !== k);
        } else {
          const before = nodes.map((n) => snap.describe(n.name));
          const r = op.merge ? planAndCommit(snap, op.req, { seed: op.seed }) : plan(snap, op.req, { seed: op.seed });
          if (!op.merge) {
            assert.deepEqual(nodes.map((n) => snap.describe(n.name)), before, 'plan must not change the snapshot');
            snap.commit(r.placements);
          }
          assert.equal(r.placements.length + r.unplaced.reduce((s, u) => s + u.count, 0), r.wanted);
          for (const u of r.unplaced) assert.match(u.reason, /\S/);
          checkPolicy(nodes, op.req, r.placements, live);
          live.push(...r.placements);
        }
        checkInvariants(nodes, live, snap);
      }
      const rebuilt = buildSnapshot({ nodes, pools: POOLS, placements: live });
      assert.deepEqual(rebuilt.conflicts, []);
      for (const n of nodes) assert.deepEqual(rebuilt.describe(n.name), snap.describe(n.name));
    }),
    { numRuns: RUNS },
  );
});

test('property: plan places exactly what capacity says fits, then says why not', () => {
  const shapeArb = requestArb.filter((r) => typeof r.strategy === 'object' && r.strategy.kind !== 'each');
  fc.assert(
    fc.property(nodesArb, fc.array(requestArb, { maxLength: 4 }), shapeArb, fc.integer(), (nodes, warmup, shape, seed) => {
      const snap = buildSnapshot({ nodes, pools: POOLS });
      for (const w of warmup) planAndCommit(snap, w);
      const cap = capacity(snap, shape);
      assert.equal(cap.total, cap.nodes.reduce((s, n) => s + n.count, 0));
      const r = plan(snap, { ...shape, count: cap.total + 1 }, { seed });
      assert.equal(r.placements.length, cap.total);
      assert.equal(r.unplaced.length, 1);
      assert.equal(r.unplaced[0]!.count, 1);
      assert.match(r.unplaced[0]!.reason, new RegExp(`^0/${nodes.length} nodes: \\d+ `));
      const per: Record<string, number> = {};
      for (const p of r.placements) per[p.node] = (per[p.node] ?? 0) + 1;
      assert.deepEqual(per, Object.fromEntries(cap.nodes.map((n) => [n.node, n.count])));
    }),
    { numRuns: RUNS },
  );
});

test('property: spread keeps the per-node count difference at most 1 where capacity allows', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ cores: fc.integer({ min: 1, max: 8 }), memGiB: fc.integer({ min: 1, max: 16 }) }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat({ max: 7 }), { maxLength: 6 }),
      fc.integer({ min: 1, max: 40 }),
      fc.boolean(),
      fc.constantFrom(0.1, 0.5, 1, 1.5),
      fc.integer(),
      (shapes, oldOn, count, cpuBind, cpu, seed) => {
        const nodes: SchedNode[] = shapes.map((s, k) => ({ name: `n${k}`, state: 'ready', labels: {}, cores: s.cores, memoryBytes: s.memGiB * 1024 * MiB, portRange: [30000, 30010] }));
        const old: Placement[] = oldOn
          .filter((k) => k < nodes.length)
          .map((k) => ({ app: 'x', env: 'default', entry: 'web', node: `n${k}`, cpu: { mode: 'shared', shareBase: 100, shares: 10, quotaMicros: 10_000, periodMicros: 100_000 }, memoryBytes: MiB, ports: [] }));
        const snap = buildSnapshot({ nodes, placements: old });
        assert.deepEqual(snap.conflicts, []);
        const req: PlacementRequest = { app: 'x', entry: 'web', cpu, cpuBind, memoryBytes: 256 * MiB, count };
        const r = planAndCommit(snap, req, { seed });
        const counts = new Map(nodes.map((n) => [n.name, old.filter((p) => p.node === n.name).length]));
        const fresh = new Set(r.placements.map((p) => p.node));
        for (const p of r.placements) counts.set(p.node, counts.get(p.node)! + 1);
        const roomy = new Set(capacity(snap, req).nodes.map((n) => n.node));
        for (const a of fresh) for (const b of roomy) assert.ok(counts.get(a)! - counts.get(b)! <= 1, `${a} has ${counts.get(a)}, ${b} has ${counts.get(b)} and room`);
        if (old.length === 0 && r.unplaced.length === 0 && roomy.size === nodes.length) {
          const all = [...counts.values()];
          assert.ok(Math.max(...all) - Math.min(...all) <= 1, `counts ${all}`);
        }
      },
    ),
    { numRuns: RUNS * 2 },
  );
});

test('property: the same seed gives the same plan', () => {
  fc.assert(
    fc.property(nodesArb, fc.array(requestArb, { maxLength: 3 }), requestArb, fc.integer(), (nodes, warmup, req, seed) => {
      const a = buildSnapshot({ nodes, pools: POOLS });
      const b = buildSnapshot({ nodes, pools: POOLS });
      for (const w of warmup) {
        planAndCommit(a, w, { seed });
        planAndCommit(b, w, { seed });
      }
      assert.deepEqual(plan(a, req, { seed }), plan(b, req, { seed }));
    }),
    { numRuns: RUNS },
  );
});
