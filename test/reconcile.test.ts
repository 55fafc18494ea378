// Table tests of the pure reconcile(view, snapshot, ctx) → Plan: small views built by hand
// (test/helpers/reconcile-world.ts), one pass each — or, for rollouts, pass after pass with the
// plan written back into the view and the agents' part played in between. No I/O, no clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writesOf } from '../src/server/reconcile/apply.js';
import { reconcile } from '../src/server/reconcile/reconcile.js';
import { snapshotOf } from '../src/server/reconcile/snapshot.js';
import { STORE } from '../src/server/keys.js';
import type { Plan } from '../src/server/reconcile/plan.js';
import type { Instance } from '../src/model/types.js';
import { World, agent, applyPlan, countBy, isEmpty, noteTypes, settle, T0, PORT_LO, type Entrypoints } from './helpers/reconcile-world.js';

const web = (change: Record<string, unknown> = {}): Entrypoints => ({ web: { command: 'serve', ports: [{ name: 'http' }], ...change } });
const byNode = (instances: readonly Instance[]) => countBy(instances, (i) => i.node);
const ids = (instances: readonly { id: string }[]) => instances.map((i) => i.id).sort();
const removedIn = (plan: Plan) => ids(plan.updates.filter((i) => i.desired === 'removed'));

/**
 * assert.ok, always with a message: without one, node builds it by reading and parsing the
 * source file, which hung for minutes on this file under tsx (the stack says where it failed).
 */
function ok(value: unknown, message = 'expected a truthy value'): asserts value {
  assert.ok(value, message);
}

function assertNoChanges(plan: Plan, what: string): void {
  assert.deepEqual({ creates: plan.creates, updates: plan.updates, deletes: plan.deletes, statuses: plan.statuses, events: plan.events }, { creates: [], updates: [], deletes: [], statuses: [], events: [] }, what);
}

describe('scaling', () => {
  test('scale up: the missing instances are placed, spread over the nodes, serving, at the current release', () => {
    const w = new World().nodesNamed('n1', 'n2', 'n3');
    w.app('shop', web({ replicas: 3 }));
    const first = w.instance('shop', 'web', 'n1', { state: 'running' });

    const plan = w.plan();
    assert.equal(plan.creates.length, 2);
    assert.deepEqual(plan.updates, [], 'the running instance is left alone');
    assert.deepEqual(ids(plan.creates), ['shop-web-1', 'shop-web-2'], 'ids come from the context');
    assert.deepEqual(byNode([first, ...plan.creates]), { n1: 1, n2: 1, n3: 1 }, 'spread: one per node');
    for (const created of plan.creates) {
      assert.equal(created.release, 1);
      assert.equal(created.desired, 'running');
      assert.equal(created.serving, undefined, 'no blue-green: serves at once');
      assert.equal(created.createdAt, w.now);
      assert.equal(created.ports.length, 1);
      ok(created.ports[0]!.host >= PORT_LO && created.ports[0]!.host < PORT_LO + 100);
      ok(created.cpu, 'the scheduler’s CPU plan is stored with it');
    }
    assert.deepEqual(noteTypes(plan), ['instance.placed', 'instance.placed']);
    assert.deepEqual([...plan.guards].sort(), ['n2', 'n3'], 'allocations guard the nodes they land on');
    assert.deepEqual(plan.rollouts, []);
  });

  test('scale up beyond the room: what fits is placed, the rest noted unplaced', () => {
    const w = new World();
    w.node('n1', { cores: 1 });
    w.app('shop', web({ replicas: 3, resources: { cpu: 0.4 } }));
    const plan = w.plan();
    assert.equal(plan.creates.length, 2);
    assert.equal(plan.unplaced.get('shop')?.[0]?.count, 1);
    assert.equal(plan.unplaced.get('shop')?.[0]?.entry, 'web');
    assert.deepEqual(noteTypes(plan), ['instance.placed', 'instance.placed', 'instance.unplaced']);
  });

  const scaleDown: {
    name: string;
    strategy: string;
    replicas: number;
    /** [node, state] per instance, oldest first. */
    instances: [string, 'running' | 'starting'][];
    /** Indexes of the instances that must go. */
    removed: number[];
    left: Record<string, number>;
  }[] = [
    { name: 'binpack: the youngest go', strategy: 'binpack', replicas: 1, instances: [['n1', 'running'], ['n1', 'running'], ['n1', 'running']], removed: [1, 2], left: { n1: 1 } },
    { name: 'binpack: one not running goes before a younger running one', strategy: 'binpack', replicas: 2, instances: [['n1', 'starting'], ['n1', 'running'], ['n1', 'running']], removed: [0], left: { n1: 2 } },
    { name: 'spread: from the node holding the most, keeping the balance', strategy: 'spread', replicas: 2, instances: [['n1', 'running'], ['n1', 'running'], ['n2', 'running'], ['n1', 'running']], removed: [1, 3], left: { n1: 1, n2: 1 } },
    { name: 'spread: 3+1+2 down to 3 leaves one per node', strategy: 'spread', replicas: 3, instances: [['n1', 'running'], ['n2', 'running'], ['n1', 'running'], ['n3', 'running'], ['n3', 'running'], ['n1', 'running']], removed: [2, 4, 5], left: { n1: 1, n2: 1, n3: 1 } },
    { name: 'spread: the not-running one goes first even on a smaller node', strategy: 'spread', replicas: 2, instances: [['n1', 'running'], ['n1', 'running'], ['n2', 'starting']], removed: [2], left: { n1: 2 } },
  ];
  for (const c of scaleDown) {
    test(`scale down, ${c.name}`, () => {
      const w = new World().nodesNamed('n1', 'n2', 'n3');
      w.app('shop', web({ replicas: c.replicas, placement: { strategy: c.strategy } }));
      const made = c.instances.map(([node, state]) => w.instance('shop', 'web', node, { state }));
      const plan = w.plan();
      assert.deepEqual(plan.creates, []);
      assert.deepEqual(removedIn(plan), ids(c.removed.map((n) => made[n]!)));
      assert.equal(plan.updates.length, c.removed.length, 'nothing else changes');
      assert.deepEqual(plan.deletes, [], 'forgotten only once the agent says they are gone');
      assert.deepEqual(byNode(applyPlan(w, plan).live('shop')), c.left);
    });
  }

  test('scale down, then the agent confirms: the removed instances are forgotten with an instance.removed note', () => {
    const w = new World().nodesNamed('n1');
    w.app('shop', web({ replicas: 1 }));
    w.instance('shop', 'web', 'n1', { state: 'running' });
    const young = w.instance('shop', 'web', 'n1', { state: 'running' });
    applyPlan(w, w.plan());
    assert.equal(w.instances.get(young.id)?.desired, 'removed');

    const waiting = w.plan();
    ok(isEmpty(waiting), 'nothing while the agent has not confirmed');

    w.status(young.id, 'removed');
    const plan = w.plan();
    assert.deepEqual(plan.deletes.map((d) => [d.instance.id, d.unconfirmed]), [[young.id, false]]);
    assert.deepEqual(noteTypes(plan), ['instance.removed']);
    assert.deepEqual(plan.creates, []);
  });
});

/** One pass of a rollout: plan, write it back, check the invariants, then let the agents act. */
function rolloutPass(w: World, check: (w: World, plan: Plan) => void): Plan {
  const plan = w.plan();
  applyPlan(w, plan);
  check(w, plan);
  agent(w);
  return plan;
}

describe('rolling update', () => {
  const firstStep: { surge: number | string; unavailable: number | string; replicas: number; create: number; remove: number; reserved: number }[] = [
    { surge: 1, unavailable: 0, replicas: 3, create: 1, remove: 0, reserved: 1 },
    { surge: 0, unavailable: 1, replicas: 3, create: 0, remove: 1, reserved: 0 },
    { surge: 2, unavailable: 1, replicas: 4, create: 2, remove: 1, reserved: 2 },
    { surge: '50%', unavailable: '25%', replicas: 4, create: 2, remove: 1, reserved: 2 },
    { surge: '100%', unavailable: 0, replicas: 2, create: 2, remove: 0, reserved: 2 },
  ];
  for (const c of firstStep) {
    test(`first step with maxSurge ${c.surge}, maxUnavailable ${c.unavailable} of ${c.replicas}: ${c.create} new, ${c.remove} old removed`, () => {
      const w = new World().nodesNamed('n1', 'n2', 'n3', 'n4');
      const update = { strategy: 'rolling', maxSurge: c.surge, maxUnavailable: c.unavailable };
      w.app('shop', web({ replicas: c.replicas, update }));
      for (let n = 0; n < c.replicas; n++) w.instance('shop', 'web', `n${(n % 4) + 1}`, { state: 'running' });
      w.deploy('shop', web({ replicas: c.replicas, update, env: { VERSION: '2' } }));

      const plan = w.plan();
      assert.equal(plan.creates.length, c.create);
      for (const created of plan.creates) assert.equal(created.release, 2);
      assert.equal(removedIn(plan).length, c.remove);
      for (const id of removedIn(plan)) assert.equal(w.instances.get(id)!.release, 1);
      assert.equal(plan.rollouts.length, 1);
      const [rollout] = plan.rollouts;
      assert.equal(rollout!.phase, 'progressing');
      assert.deepEqual(rollout!.entries.web?.reserved, [], 'the room taken at the start went to the new instances');
      const held = plan.events.filter((e) => e.type === 'instance.placed' && e.message.includes('room held by the rollout')).length;
      assert.equal(held, Math.min(c.create, c.reserved), 'new instances go into the held room first');
      if (c.reserved > 0) ok(rollout!.steps.some((s) => s.message.includes(`holding room for ${c.reserved} new instance(s)`)));
      ok(noteTypes(plan).includes('rollout.step'));
    });
  }

  const walks: { surge: number; unavailable: number; replicas: number }[] = [
    { surge: 1, unavailable: 0, replicas: 3 },
    { surge: 0, unavailable: 1, replicas: 3 },
    { surge: 2, unavailable: 1, replicas: 5 },
  ];
  for (const c of walks) {
    test(`step by step with maxSurge ${c.surge}, maxUnavailable ${c.unavailable} of ${c.replicas}: never more than replicas+surge, never fewer than replicas−unavailable available`, () => {
      const w = new World().nodesNamed('n1', 'n2', 'n3');
      const update = { strategy: 'rolling', maxSurge: c.surge, maxUnavailable: c.unavailable };
      w.app('shop', web({ replicas: c.replicas, update }));
      for (let n = 0; n < c.replicas; n++) w.instance('shop', 'web', `n${(n % 3) + 1}`, { state: 'running' });
      w.deploy('shop', web({ replicas: c.replicas, update, env: { VERSION: '2' } }));

      const check = (w: World) => {
        const live = w.live('shop');
        const available = live.filter((i) => w.state(i.id) === 'running' && i.serving !== false).length;
        ok(live.length <= c.replicas + c.surge, `at most ${c.replicas + c.surge} instances, got ${live.length}`);
        ok(available >= c.replicas - c.unavailable, `at least ${c.replicas - c.unavailable} available, got ${available}`);
      };
      let passes = 0;
      while (w.rollouts.get('shop')!.phase === 'progressing') {
        ok(++passes < 30, 'the rollout ends');
        w.tick(1000);
        rolloutPass(w, check);
      }
      assert.equal(w.rollouts.get('shop')!.phase, 'succeeded');
      ok(w.rollouts.get('shop')!.steps.at(-1)!.message.includes('release 2 is out'));
      settle(w);
      const live = w.live('shop');
      assert.equal(live.length, c.replicas);
      ok(live.every((i) => i.release === 2 && w.state(i.id) === 'running'));
      assert.equal(w.instances.size, c.replicas, 'the old ones are forgotten');
    });
  }

  test('maxSurge 1, maxUnavailable 0, one pass at a time: a new one, then an old one out only once the new is running', () => {
    const w = new World().nodesNamed('n1', 'n2', 'n3');
    const update = { strategy: 'rolling', maxSurge: 1, maxUnavailable: 0 };
    w.app('shop', web({ replicas: 2, update }));
    const old1 = w.instance('shop', 'web', 'n1', { state: 'running' });
    const old2 = w.instance('shop', 'web', 'n2', { state: 'running' });
    w.deploy('shop', web({ replicas: 2, update, env: { VERSION: '2' } }));

    // 1: one new instance (in the room the rollout reserved), nothing old goes.
    const p1 = w.plan();
    applyPlan(w, p1);
    assert.equal(p1.creates.length, 1);
    const new1 = p1.creates[0]!;
    assert.equal(new1.node, 'n3', 'the reserved room is where spread puts a third instance');
    assert.deepEqual(removedIn(p1), []);

    // 2: the new one still starting: nothing moves.
    w.tick(1000).status(new1.id, 'starting');
    const p2 = w.plan();
    applyPlan(w, p2);
    assert.deepEqual([p2.creates.length, p2.updates.length], [0, 0]);
    assert.equal(p2.rollouts[0]!.phase, 'progressing');

    // 3: running: one old one goes.
    w.tick(1000).status(new1.id, 'running');
    const p3 = w.plan();
    applyPlan(w, p3);
    assert.deepEqual(p3.creates, []);
    assert.equal(removedIn(p3).length, 1);
    const gone = removedIn(p3)[0]!;
    ok([old1.id, old2.id].includes(gone));

    // 4: its agent confirms: the next new one is placed, the old one forgotten.
    w.tick(1000).status(gone, 'removed');
    const p4 = w.plan();
    applyPlan(w, p4);
    assert.equal(p4.creates.length, 1);
    assert.equal(p4.creates[0]!.release, 2);
    assert.deepEqual(p4.deletes.map((d) => d.instance.id), [gone]);
    ok(noteTypes(p4).includes('instance.removed'));

    // 5: running: the last old one goes, and the rollout is done.
    w.tick(1000).status(p4.creates[0]!.id, 'running');
    const p5 = w.plan();
    applyPlan(w, p5);
    const last = [old1.id, old2.id].find((id) => id !== gone)!;
    assert.deepEqual(removedIn(p5), [last]);
    assert.equal(p5.rollouts[0]!.phase, 'succeeded');

    // 6: no rollout under way any more; the last old one is forgotten once confirmed.
    w.tick(1000).status(last, 'removed');
    const p6 = w.plan();
    assert.deepEqual(p6.deletes.map((d) => d.instance.id), [last]);
    assert.deepEqual(p6.rollouts, [], 'a finished rollout is not written again');
  });

  test('an unchanged entry just joins the new release: no replacement', () => {
    const w = new World().nodesNamed('n1');
    w.app('shop', { ...web(), worker: { command: 'work' } });
    const webOld = w.instance('shop', 'web', 'n1', { state: 'running' });
    const workerOld = w.instance('shop', 'worker', 'n1', { state: 'running' });
    w.deploy('shop', { ...web(), worker: { command: 'work', env: { V: '2' } } });
    const plan = w.plan();
    const joined = plan.updates.find((i) => i.id === webOld.id);
    assert.equal(joined?.release, 2);
    assert.equal(joined?.desired, 'running');
    assert.equal(plan.creates.length, 1);
    assert.equal(plan.creates[0]!.entry, 'worker');
    ok(!plan.updates.some((i) => i.id === workerOld.id), 'the changed entry is replaced, surge first');
  });

  test(
    'an unchanged entry that joined the new release does not hold the rollout up: it succeeds once the changed entry is out',
    () => {
      const w = new World().nodesNamed('n1', 'n2');
      w.app('shop', { web: { command: 'serve' }, worker: { command: 'work' } });
      w.instance('shop', 'web', 'n1', { state: 'running' });
      w.instance('shop', 'worker', 'n1', { state: 'running' });
      w.deploy('shop', { web: { command: 'serve' }, worker: { command: 'work', env: { V: '2' } } });
      for (let n = 0; n < 12 && w.rollouts.get('shop')!.phase === 'progressing'; n++) applyPlan(agent(w).tick(20_000), w.plan());
      assert.equal(w.rollouts.get('shop')!.phase, 'succeeded', `got ${w.rollouts.get('shop')!.phase}: ${w.rollouts.get('shop')!.reason ?? ''}`);
      assert.equal(w.apps.get('shop')!.release, 2);
    },
  );

  test(
    'an unchanged entry needs no room: a full node does not fail the rollout of another entry',
    () => {
      const w = new World().nodesNamed('n1');
      const web = { command: 'serve', ports: [{ name: 'http', host: 8080 }] };
      w.app('shop', { web, worker: { command: 'work' } });
      w.instance('shop', 'web', 'n1', { state: 'running' });
      w.instance('shop', 'worker', 'n1', { state: 'running' });
      w.deploy('shop', { web, worker: { command: 'work', env: { V: '2' } } });
      const plan = w.plan();
      assert.equal(plan.rollouts[0]!.phase, 'progressing', `got ${plan.rollouts[0]!.phase}: ${plan.rollouts[0]!.reason ?? ''}`);
      assert.deepEqual(plan.rollouts[0]!.entries.web?.reserved ?? [], [], 'no room held for web');
      assert.deepEqual(plan.creates.map((i) => i.entry), ['worker']);
    },
  );

  test('a new instance that crashes rolls the release back: app back to release 1 at its replica count', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', web({ replicas: 2 }));
    w.instance('shop', 'web', 'n1', { state: 'running' });
    w.instance('shop', 'web', 'n2', { state: 'running' });
    w.deploy('shop', web({ replicas: 2, env: { VERSION: '2' } }));
    const p1 = w.plan();
    applyPlan(w, p1);
    w.status(p1.creates[0]!.id, 'backoff', { restarts: 1, exitCode: 1, message: 'exited with code 1' });

    const plan = w.plan();
    assert.equal(plan.apps.length, 1);
    assert.equal(plan.apps[0]!.release, 1);
    assert.equal(plan.apps[0]!.spec.entrypoints.web!.replicas, 2);
    assert.equal(plan.rollouts[0]!.phase, 'rolled-back');
    assert.match(plan.rollouts[0]!.reason ?? '', /exited with code 1/);
    ok(noteTypes(plan).includes('rollout.rolled_back'));
    assert.deepEqual(removedIn(plan), [], 'the failed release’s instances go in the next pass');

    applyPlan(w, plan);
    const next = w.plan();
    assert.deepEqual(removedIn(next), [p1.creates[0]!.id]);
  });
});

describe('blue-green', () => {
  test('the new set starts out of traffic, traffic switches once it is healthy, the old set goes after keepOld', () => {
    const w = new World().nodesNamed('n1', 'n2');
    const update = { strategy: 'blue-green', keepOld: '30s' };
    w.app('shop', web({ replicas: 2, update }));
    const blue = [w.instance('shop', 'web', 'n1', { state: 'running' }), w.instance('shop', 'web', 'n2', { state: 'running' })];
    w.deploy('shop', web({ replicas: 2, update, env: { VERSION: '2' } }));

    // 1: the whole green set, unserving, in the reserved room.
    const p1 = w.plan();
    applyPlan(w, p1);
    assert.equal(p1.creates.length, 2);
    ok(p1.creates.every((i) => i.serving === false && i.release === 2));
    assert.deepEqual(byNode(p1.creates), { n1: 1, n2: 1 });
    assert.deepEqual(p1.updates, [], 'blue keeps serving');
    assert.equal(p1.events.filter((e) => e.type === 'instance.placed' && e.message.includes('room held')).length, 2);
    const green = p1.creates;

    // 2: one green running: still no switch.
    w.tick(1000).status(green[0]!.id, 'running');
    const p2 = w.plan();
    applyPlan(w, p2);
    assert.deepEqual(p2.updates, []);
    assert.equal(p2.rollouts[0]!.entries.web?.switchedAt, undefined);

    // 3: both green running: serving switches in one pass.
    w.tick(1000).status(green[1]!.id, 'running');
    const p3 = w.plan();
    applyPlan(w, p3);
    const serving = Object.fromEntries(p3.updates.map((i) => [i.id, i.serving]));
    assert.deepEqual(serving, { [green[0]!.id]: true, [green[1]!.id]: true, [blue[0]!.id]: false, [blue[1]!.id]: false });
    ok(p3.updates.every((i) => i.desired === 'running'), 'blue is kept (for a switch back) for now');
    assert.equal(p3.rollouts[0]!.entries.web?.switchedAt, w.now);
    assert.equal(p3.rollouts[0]!.phase, 'progressing');
    const switchedAt = w.now;

    // 4: before keepOld is up, blue stays.
    w.tick(29_000);
    const p4 = w.plan();
    applyPlan(w, p4);
    assert.deepEqual(removedIn(p4), []);

    // 5: keepOld is up: blue is removed, the rollout done.
    w.now = switchedAt + 30_000;
    const p5 = w.plan();
    applyPlan(w, p5);
    assert.deepEqual(removedIn(p5), ids(blue));
    assert.equal(p5.rollouts[0]!.phase, 'succeeded');
    assert.deepEqual(p5.creates, []);
  });
  test(
    'a new instance lost after the switch is replaced, serving, and the rollout completes',
    () => {
      const w = new World().nodesNamed('n1', 'n2', 'n3');
      const update = { strategy: 'blue-green', keepOld: '10s' };
      w.app('shop', web({ replicas: 2, update }));
      w.instance('shop', 'web', 'n1', { state: 'running' });
      w.instance('shop', 'web', 'n2', { state: 'running' });
      w.deploy('shop', web({ replicas: 2, update, env: { VERSION: '2' } }));
      applyPlan(w, w.plan());
      agent(w);
      applyPlan(w.tick(1000), w.plan());
      assert.equal(w.rollouts.get('shop')!.entries.web?.switchedAt, w.now, 'switched');
      const green = w.live('shop').filter((i) => i.release === 2);
      w.setNode(green[0]!.node, { state: 'down' });

      const plan = w.tick(1000).plan();
      assert.deepEqual(plan.creates.map((i) => [i.release, i.serving]), [[2, undefined]], 'a serving replacement of the new release');
      applyPlan(w, plan);
      for (let n = 0; n < 10 && w.rollouts.get('shop')!.phase === 'progressing'; n++) applyPlan(agent(w).tick(30_000), w.plan());
      assert.equal(w.rollouts.get('shop')!.phase, 'succeeded');
      assert.equal(w.apps.get('shop')!.release, 2);
    },
  );
});

describe('canary', () => {
  test('canaries beside the old set, then awaiting-promotion until promoted (entries.web.promotedAt), then rolling', () => {
    const w = new World().nodesNamed('n1', 'n2');
    const update = { strategy: 'canary', canary: 1 };
    w.app('shop', web({ replicas: 3, update }));
    const old = [0, 1, 2].map((n) => w.instance('shop', 'web', `n${(n % 2) + 1}`, { state: 'running' }));
    w.deploy('shop', web({ replicas: 3, update, env: { VERSION: '2' } }));

    // 1: one canary, serving beside the old ones.
    const p1 = w.plan();
    applyPlan(w, p1);
    assert.equal(p1.creates.length, 1);
    assert.equal(p1.creates[0]!.serving, undefined);
    assert.deepEqual(removedIn(p1), []);
    const canary = p1.creates[0]!;

    // 2: healthy: the rollout waits for a promotion, nothing old goes.
    w.tick(1000).status(canary.id, 'running');
    const p2 = w.plan();
    applyPlan(w, p2);
    assert.equal(p2.rollouts[0]!.phase, 'awaiting-promotion');
    assert.equal(p2.rollouts[0]!.entries.web?.canaryHealthyAt, w.now);
    assert.equal(p2.rollouts[0]!.entries.web?.promotedAt, undefined);
    assert.deepEqual([p2.creates.length, removedIn(p2).length], [0, 0]);
    ok(p2.events.some((e) => e.type === 'rollout.step' && e.message.includes('waiting for gantry promote')));

    // 3: waiting is not standing still: past the progress deadline it still waits, no rollback.
    w.tick(10 * 60_000);
    const p3 = w.plan();
    applyPlan(w, p3);
    assert.equal(p3.rollouts[0]!.phase, 'awaiting-promotion');
    assert.deepEqual(p3.apps, []);
    assert.deepEqual([p3.creates.length, p3.updates.length], [0, 0]);

    // 4: promoted (what `gantry promote` writes: promotedAt per canary entry, phase progressing): rolling from here.
    const r = w.rollouts.get('shop')!;
    w.rollouts.set('shop', { ...r, phase: 'progressing', lastProgressAt: w.now, entries: { ...r.entries, web: { ...r.entries.web, promotedAt: w.now } } });
    const p4 = w.plan();
    applyPlan(w, p4);
    assert.equal(p4.rollouts[0]!.phase, 'progressing');
    assert.equal(removedIn(p4).length, 1, 'surge 1 is used by the canary: one old one goes first');
    ok(ids(old).includes(removedIn(p4)[0]!));

    // ...to the end.
    let passes = 0;
    while (w.rollouts.get('shop')!.phase === 'progressing') {
      ok(++passes < 20);
      agent(w);
      w.tick(1000);
      applyPlan(w, w.plan());
    }
    assert.equal(w.rollouts.get('shop')!.phase, 'succeeded');
    settle(w);
    assert.deepEqual(countBy(w.live('shop'), (i) => String(i.release)), { 2: 3 });
  });

  test('autoPromote: promoted by the pass itself once the canaries were healthy long enough', () => {
    const w = new World().nodesNamed('n1');
    const update = { strategy: 'canary', canary: '50%', autoPromote: '1m' };
    w.app('shop', web({ replicas: 4, update }));
    for (let n = 0; n < 4; n++) w.instance('shop', 'web', 'n1', { state: 'running' });
    w.deploy('shop', web({ replicas: 4, update, env: { VERSION: '2' } }));
    const p1 = w.plan();
    applyPlan(w, p1);
    assert.equal(p1.creates.length, 2, '50% of 4');
    agent(w);
    w.tick(1000);
    const p2 = w.plan();
    applyPlan(w, p2);
    // Until the timer runs out it waits like a manual canary (an operator may still promote early).
    assert.equal(p2.rollouts[0]!.phase, 'awaiting-promotion');
    assert.equal(p2.rollouts[0]!.entries.web?.canaryHealthyAt, w.now);
    assert.equal(p2.rollouts[0]!.entries.web?.promotedAt, undefined);
    assert.deepEqual(removedIn(p2), []);
    w.tick(59_000);
    assert.equal(w.plan().rollouts[0]!.entries.web?.promotedAt, undefined, 'not before a minute');
    w.tick(1_000);
    const p3 = w.plan();
    assert.equal(p3.rollouts[0]!.phase, 'progressing');
    assert.equal(p3.rollouts[0]!.entries.web?.promotedAt, w.now);
    assert.equal(removedIn(p3).length, 2, 'promoted: rolling from here (4 old + 2 healthy new, maxUnavailable 0: two old go, 4 stay available)');
  });

  test(
    'autoPromote: the automatic promotion is recorded in the rollout steps and events',
    () => {
      const w = new World().nodesNamed('n1');
      const update = { strategy: 'canary', canary: '50%', autoPromote: '1m' };
      w.app('shop', web({ replicas: 4, update }));
      for (let n = 0; n < 4; n++) w.instance('shop', 'web', 'n1', { state: 'running' });
      w.deploy('shop', web({ replicas: 4, update, env: { VERSION: '2' } }));
      applyPlan(w, w.plan());
      agent(w);
      applyPlan(w.tick(1000), w.plan());
      const plan = w.tick(60_000).plan();
      assert.equal(plan.rollouts[0]!.entries.web?.promotedAt, w.now);
      const messages = plan.events.filter((e) => e.type === 'rollout.step').map((e) => e.message);
      ok(messages.some((m) => m.includes('promoted automatically')), `a step saying so; got ${JSON.stringify(messages)}`);
    },
  );
});

describe('node lost', () => {
  test('node down: its instances are given up (lost status, instance.lost), replaced elsewhere, forgotten unconfirmed (instance.replaced)', () => {
    const w = new World().nodesNamed('n1', 'n2', 'n3');
    w.app('shop', web({ replicas: 2 }));
    const lost = w.instance('shop', 'web', 'n1', { state: 'running' });
    const kept = w.instance('shop', 'web', 'n2', { state: 'running' });
    w.setNode('n1', { state: 'down' });

    const plan = w.plan();
    assert.deepEqual(plan.statuses.map((s) => [s.id, s.state, s.updatedAt]), [[lost.id, 'lost', w.now]]);
    assert.equal(plan.statuses[0]!.runtimeId, `rt-${lost.id}`, 'what was known of it is kept');
    assert.equal(plan.creates.length, 1);
    assert.equal(plan.creates[0]!.node, 'n3', 'not on the down node, spread away from n2');
    assert.deepEqual(plan.deletes.map((d) => [d.instance.id, d.unconfirmed]), [[lost.id, true]], 'nobody can confirm: forgotten now, its node told later');
    ok(!plan.updates.some((i) => i.id === kept.id));
    ok(!plan.updates.some((i) => i.id === lost.id), 'the forgetting supersedes the desired:removed update');
    assert.deepEqual(noteTypes(plan).sort(), ['instance.lost', 'instance.placed', 'instance.replaced']);
    assert.equal(plan.events.find((e) => e.type === 'instance.lost')?.node, 'n1');

    // As guarded writes: the lost status, then the forgetting, and a removal record for n1.
    const seen = new Map([[STORE.instances.key('shop', lost.id), 11], [STORE.statuses.key(lost.id), 12]]);
    const { compares, ops } = writesOf(plan, { of: (key) => seen.get(key) ?? 0, alloc: (node) => (node === 'n3' ? 5 : 0) }, w.now);
    const created = plan.creates[0]!;
    const keyOps = ops.map((op) => `${op.type} ${'key' in op ? op.key : ''}`);
    assert.deepEqual(keyOps, [
      `put ${STORE.instances.key('shop', created.id)}`,
      `put ${STORE.statuses.key(lost.id)}`,
      `delete ${STORE.instances.key('shop', lost.id)}`,
      `delete ${STORE.statuses.key(lost.id)}`,
      `put ${STORE.removals.key('n1', lost.id)}`,
      `put ${STORE.alloc.key('n3')}`,
    ]);
    const compared = Object.fromEntries(compares.map((c) => [c.key, c.value]));
    assert.equal(compared[STORE.instances.key('shop', created.id)], 0, 'a new record: must not exist yet');
    assert.equal(compared[STORE.statuses.key(lost.id)], 12);
    assert.equal(compared[STORE.instances.key('shop', lost.id)], 11);
    assert.equal(compared[STORE.alloc.key('n3')], 5);
    ok(compares.every((c) => c.target === 'modRevision' && c.op === '=='));
    const removal = ops.find((op) => op.type === 'put' && op.key === STORE.removals.key('n1', lost.id));
    ok(removal && removal.type === 'put');
    assert.deepEqual(STORE.removals.decode(removal.value), { id: lost.id, node: 'n1', app: 'shop', entry: 'web', reason: 'removed while node n1 was away', at: w.now });
  });

  test('a node gone from the view entirely: same as down', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', web({ replicas: 1 }));
    const lost = w.instance('shop', 'web', 'n1', { state: 'running' });
    w.nodes.delete('n1');
    const plan = w.plan();
    assert.equal(plan.creates[0]?.node, 'n2');
    assert.deepEqual(plan.deletes.map((d) => [d.instance.id, d.unconfirmed]), [[lost.id, true]]);
    assert.deepEqual(noteTypes(plan).sort(), ['instance.lost', 'instance.placed', 'instance.replaced']);
  });
});

describe('drain', () => {
  test('node draining: a replacement first, the old one removed once the new one runs', () => {
    const w = new World().nodesNamed('n1', 'n2', 'n3');
    w.app('shop', web({ replicas: 2 }));
    const moving = w.instance('shop', 'web', 'n1', { state: 'running' });
    w.instance('shop', 'web', 'n2', { state: 'running' });
    w.setNode('n1', { state: 'draining' });

    const p1 = w.plan();
    applyPlan(w, p1);
    assert.equal(p1.creates.length, 1);
    assert.equal(p1.creates[0]!.node, 'n3');
    assert.deepEqual(p1.updates, [], 'the old one keeps serving meanwhile');

    w.tick(1000).status(p1.creates[0]!.id, 'starting');
    const p2 = w.plan();
    applyPlan(w, p2);
    ok(isEmpty(p2), 'not while the replacement is starting');

    w.tick(1000).status(p1.creates[0]!.id, 'running');
    const p3 = w.plan();
    applyPlan(w, p3);
    assert.deepEqual(removedIn(p3), [moving.id]);
    assert.deepEqual(p3.creates, []);

    w.tick(1000).status(moving.id, 'removed');
    const p4 = w.plan();
    assert.deepEqual(p4.deletes.map((d) => [d.instance.id, d.unconfirmed]), [[moving.id, false]]);
    assert.deepEqual(noteTypes(p4), ['instance.removed']);
    applyPlan(w, p4);
    ok(isEmpty(w.plan()));
  });
});

describe('held room', () => {
  test('the rollout reserves room at its start: slots in the record, counted as taken for other apps', () => {
    const w = new World().nodesNamed('n1', 'n2');
    // Fixed host port: a new web instance can only go where 8080 is free.
    const update = { strategy: 'blue-green' };
    const fixed = (env: Record<string, string> = {}) => ({ web: { command: 'serve', ports: [{ name: 'http', host: 8080 }], update, env } });
    w.app('shop', fixed());
    w.instance('shop', 'web', 'n1', { state: 'running' });
    w.deploy('shop', fixed({ VERSION: '2' }));

    // Take the reservation alone (the slot is what the record keeps, then filled).
    const p1 = w.plan();
    assert.equal(p1.creates.length, 1);
    assert.equal(p1.creates[0]!.node, 'n2', 'the only node with 8080 free');
    assert.deepEqual(p1.creates[0]!.ports, [{ name: 'http', host: 8080, protocol: 'tcp' }]);
    ok(p1.guards.has('n2'));

    // A view where the slot is held but not yet filled (e.g. room an old instance freed, kept by the rollout).
    const w2 = new World().nodesNamed('n1', 'n2');
    w2.app('shop', fixed());
    w2.instance('shop', 'web', 'n1', { state: 'running' });
    const rollout = w2.deploy('shop', fixed({ VERSION: '2' }));
    const slot = { node: 'n2', cpu: p1.creates[0]!.cpu!, memoryBytes: 64 * 1024 * 1024, ports: [{ name: 'http', host: 8080, protocol: 'tcp' as const }] };
    w2.rollouts.set('shop', { ...rollout, phase: 'paused', entries: { web: { reserved: [slot] } } });
    w2.app('other', { api: { command: 'api', ports: [{ name: 'http', host: 8080 }] } });

    const p2 = w2.plan();
    assert.deepEqual(p2.creates, [], 'paused: nothing of shop moves; other finds 8080 taken on n1 (shop) and held on n2 (the rollout)');
    assert.deepEqual(p2.unplaced.get('other')?.map((u) => u.count), [1]);
    assert.deepEqual(p2.rollouts, [], 'a paused rollout is not rewritten');

    // Resumed: the new instance goes into the held slot, the record's slot is used up.
    w2.rollouts.set('shop', { ...w2.rollouts.get('shop')!, phase: 'progressing' });
    w2.apps.delete('other');
    const p3 = w2.plan();
    assert.equal(p3.creates.length, 1);
    assert.deepEqual([p3.creates[0]!.node, p3.creates[0]!.ports, p3.creates[0]!.cpu], [slot.node, slot.ports, slot.cpu]);
    ok(p3.events.some((e) => e.type === 'instance.placed' && e.message.includes('in room held by the rollout')));
    assert.deepEqual(p3.rollouts[0]!.entries.web?.reserved, []);
  });

  test('room an old instance frees during a rolling update is held for the next new one, which is then placed in it', () => {
    const w = new World();
    // Each node takes one instance: the surge instance needs a third node, the rest the room the old ones free.
    for (const name of ['n1', 'n2', 'n3']) w.node(name, { cores: 1, memoryBytes: 1024 ** 3 });
    const update = { strategy: 'rolling', maxSurge: 1, maxUnavailable: 0 };
    const entry = (env: Record<string, string> = {}) => web({ replicas: 2, resources: { cpu: 0.8 }, update, env });
    w.app('shop', entry());
    const old1 = w.instance('shop', 'web', 'n1', { state: 'running' });
    const old2 = w.instance('shop', 'web', 'n2', { state: 'running' });
    w.deploy('shop', entry({ VERSION: '2' }));

    const p1 = w.plan();
    applyPlan(w, p1);
    assert.deepEqual(p1.creates.map((i) => i.node), ['n3']);
    w.tick(1000).status(p1.creates[0]!.id, 'running');
    const p2 = w.plan();
    applyPlan(w, p2);
    const out = removedIn(p2);
    assert.equal(out.length, 1);
    const freed = w.instances.get(out[0]!)!.node;

    ok([old1.node, old2.node].includes(freed));

    // The agent confirms: the old one is forgotten and, in the same write, its room is held for
    // the rollout (no new instance fits anywhere until then: the full cluster has no other room).
    w.tick(1000).status(out[0]!, 'removed');
    const p3 = w.plan();
    applyPlan(w, p3);
    assert.deepEqual(p3.deletes.map((d) => d.instance.id), out);
    assert.deepEqual(p3.creates, []);
    const held = p3.rollouts[0]!.entries.web?.reserved ?? [];
    assert.deepEqual(held.map((slot) => slot.node), [freed]);
    ok(p3.guards.has(freed), 'held room is an allocation: its node is guarded');
    ok(p3.rollouts[0]!.steps.some((s) => s.message.includes(`holding the room an old instance freed on ${freed}`)));

    // Next pass: the new instance goes into the held slot, and the slot is used up.
    w.tick(1000);
    const p4 = w.plan();
    applyPlan(w, p4);
    assert.equal(p4.creates.length, 1);
    assert.deepEqual([p4.creates[0]!.node, p4.creates[0]!.ports, p4.creates[0]!.cpu], [held[0]!.node, held[0]!.ports, held[0]!.cpu]);
    ok(p4.events.some((e) => e.type === 'instance.placed' && e.message.includes('in room held by the rollout')));
    assert.deepEqual(p4.rollouts[0]!.entries.web?.reserved, []);

    // And to the end.
    agent(w);
    for (let n = 0; n < 5 && w.rollouts.get('shop')!.phase === 'progressing'; n++) applyPlan(w.tick(1000), w.plan()) && agent(w);
    assert.equal(w.rollouts.get('shop')!.phase, 'succeeded');
  });

  test('a paused rollout moves nothing and writes nothing, even with new instances healthy', () => {
    const w = new World().nodesNamed('n1', 'n2', 'n3');
    w.app('shop', web({ replicas: 2 }));
    w.instance('shop', 'web', 'n1', { state: 'running' });
    w.instance('shop', 'web', 'n2', { state: 'running' });
    w.deploy('shop', web({ replicas: 2, env: { VERSION: '2' } }));
    applyPlan(w, w.plan());
    agent(w);
    w.rollouts.set('shop', { ...w.rollouts.get('shop')!, phase: 'paused' });
    const plan = w.tick(10 * 60_000).plan();
    ok(isEmpty(plan), `empty; got ${JSON.stringify({ c: plan.creates.length, u: plan.updates.length, r: plan.rollouts.length, e: noteTypes(plan) })}`);
    assert.equal(plan.guards.size, 0);
  });

  test(
    'a rollout paused before its first step writes nothing (no room taken, no allocation guard)',
    () => {
      const w = new World().nodesNamed('n1', 'n2', 'n3');
      w.app('shop', web({ replicas: 2 }));
      w.instance('shop', 'web', 'n1', { state: 'running' });
      w.instance('shop', 'web', 'n2', { state: 'running' });
      const rollout = w.deploy('shop', web({ replicas: 2, env: { VERSION: '2' } }));
      w.rollouts.set('shop', { ...rollout, phase: 'paused' });
      const plan = w.plan();
      ok(isEmpty(plan), 'nothing to do');
      assert.deepEqual([...plan.guards], []);
      assert.deepEqual(writesOf(plan, { of: () => 0, alloc: () => 0 }, w.now).ops, []);
    },
  );

  const lockFailures: { name: string; releaseKept: boolean; phase: string; note: string }[] = [
    { name: 'rolled back when the old release is there', releaseKept: true, phase: 'rolled-back', note: 'rollout.rolled_back' },
    { name: 'paused when the old release is gone', releaseKept: false, phase: 'paused', note: 'rollout.step' },
  ];
  for (const c of lockFailures) {
    test(`no room to reserve at the start: the rollout fails before it starts anything, ${c.name}`, () => {
      const w = new World().nodesNamed('n1');
      const fixed = (env: Record<string, string> = {}) => ({ web: { command: 'serve', ports: [{ name: 'http', host: 8080 }], env } });
      w.app('shop', fixed());
      w.instance('shop', 'web', 'n1', { state: 'running' });
      w.deploy('shop', fixed({ VERSION: '2' }));
      if (!c.releaseKept) w.releases.delete('shop/1');
      const plan = w.plan();
      assert.deepEqual(plan.creates, []);
      assert.deepEqual(removedIn(plan), []);
      assert.equal(plan.rollouts[0]!.phase, c.phase);
      assert.match(plan.rollouts[0]!.reason ?? '', /cannot reserve room for 1 new instance/);
      ok(noteTypes(plan).includes(c.note));
      assert.equal(plan.apps.length, c.releaseKept ? 1 : 0);
    });
  }
});

describe('ports taken by another program', () => {
  const cases: { name: string; port: Record<string, unknown>; moved: boolean; note: string }[] = [
    { name: 'a picked port moves to another free one on the same node', port: { name: 'http' }, moved: true, note: 'instance.ports_moved' },
    { name: 'a port fixed in the spec cannot move: the instance waits', port: { name: 'http', host: 8080 }, moved: false, note: 'instance.port_taken' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const w = new World().nodesNamed('n1');
      w.app('shop', { web: { command: 'serve', ports: [c.port, { name: 'admin' }] } });
      const instance = w.instance('shop', 'web', 'n1');
      const taken = { host: instance.ports[0]!.host, protocol: 'tcp' as const };
      w.setNode('n1', { portsTaken: [taken] });
      w.status(instance.id, 'backoff', { message: `could not start: host port ${taken.host}/tcp already in use`, portsTaken: [taken] });

      const plan = w.plan();
      assert.deepEqual(noteTypes(plan), [c.note]);
      assert.deepEqual(plan.creates, []);
      if (c.moved) {
        assert.equal(plan.updates.length, 1);
        const moved = plan.updates[0]!;
        assert.equal(moved.id, instance.id);
        assert.equal(moved.node, 'n1');
        assert.notEqual(moved.ports[0]!.host, taken.host);
        ok(!moved.ports.some((p) => p.host === taken.host));
        assert.equal(moved.ports[1]!.host, instance.ports[1]!.host, 'its other ports stay');
        ok(plan.guards.has('n1'));
        // Already moved: the old report says nothing more.
        applyPlan(w, plan);
        ok(isEmpty(w.plan()));
      } else {
        assert.deepEqual(plan.updates, []);
        assert.match(plan.events[0]!.message, /8080\/tcp is fixed in the spec/);
      }
    });
  }

  test('the node listing a port as taken does not by itself move an instance holding it: only the instance\'s own failed start does', () => {
    const w = new World().nodesNamed('n1');
    w.app('shop', web());
    const instance = w.instance('shop', 'web', 'n1', { state: 'starting' });
    w.setNode('n1', { portsTaken: [{ host: instance.ports[0]!.host, protocol: 'tcp' }] });
    ok(isEmpty(w.plan()), 'status.portsTaken is what moves an instance');
  });

  test('a running instance is not moved, and new instances avoid the ports the node reports taken', () => {
    const w = new World().nodesNamed('n1');
    w.app('shop', web({ replicas: 2 }));
    const running = w.instance('shop', 'web', 'n1', { state: 'running' });
    w.statuses.set(running.id, { ...w.statuses.get(running.id)!, portsTaken: [{ host: running.ports[0]!.host, protocol: 'tcp' }] });
    w.setNode('n1', { portsTaken: [{ host: PORT_LO + 1, protocol: 'tcp' }] });
    const plan = w.plan();
    ok(!plan.updates.some((i) => i.id === running.id));
    assert.equal(plan.creates.length, 1);
    assert.equal(plan.creates[0]!.ports[0]!.host, PORT_LO + 2, `${PORT_LO} is the running one's, ${PORT_LO + 1} is held outside Gantry`);
  });
});

describe('dependsOn', () => {
  const app = () => ({ db: { command: 'db', ports: [{ name: 'sql' }] }, web: { command: 'serve', dependsOn: ['db'], replicas: 2 } });

  test('an entry waits while its dependency is not healthy, then starts', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', app());
    const p1 = w.plan();
    applyPlan(w, p1);
    assert.deepEqual(p1.creates.map((i) => i.entry), ['db']);
    assert.deepEqual(p1.unplaced.get('shop'), [{ entry: 'web', count: 2, reason: 'waiting for db to be healthy (dependsOn)' }]);
    ok(p1.events.some((e) => e.type === 'instance.unplaced' && e.entry === 'web'));

    const db = p1.creates[0]!;
    w.tick(1000).status(db.id, 'starting');
    const p2 = w.plan();
    assert.deepEqual(p2.creates, [], 'starting is not healthy');

    w.status(db.id, 'running');
    const p3 = w.plan();
    assert.deepEqual(countBy(p3.creates, (i) => i.entry), { web: 2 });
    assert.equal(p3.unplaced.size, 0);
  });

  test('on stop, dependents stop first; the dependency once they have exited', () => {
    const w = new World().nodesNamed('n1');
    // The dependency listed first: the order must come from dependsOn, not from the spec's order.
    w.app('shop', app());
    settle(w);
    const db = w.live('shop', 'db');
    const webs = w.live('shop', 'web');
    assert.deepEqual([db.length, webs.length], [1, 2]);

    w.setApp('shop', { stopped: true });
    const p1 = w.plan();
    applyPlan(w, p1);
    assert.deepEqual(p1.updates.map((i) => [i.entry, i.desired]).sort(), [['web', 'stopped'], ['web', 'stopped']]);

    const p2 = w.plan();
    ok(isEmpty(p2), 'db waits while a web instance has not exited');

    w.status(webs[0]!.id, 'exited');
    ok(isEmpty(w.plan()), 'both must have exited');
    w.status(webs[1]!.id, 'stopping');
    ok(isEmpty(w.plan()), 'stopping is not stopped');

    w.status(webs[1]!.id, 'exited');
    const p3 = w.plan();
    assert.deepEqual(p3.updates.map((i) => [i.id, i.desired]), [[db[0]!.id, 'stopped']]);
  });

  test('an app deleted: dependents removed first, then the dependency', () => {
    const w = new World().nodesNamed('n1');
    w.app('shop', app());
    settle(w);
    const db = w.live('shop', 'db')[0]!;
    w.apps.delete('shop');
    const p1 = w.plan();
    applyPlan(w, p1);
    assert.deepEqual(p1.updates.map((i) => [i.entry, i.desired]), [['web', 'removed'], ['web', 'removed']]);
    agent(w);
    const p2 = w.plan();
    assert.deepEqual(p2.updates.map((i) => [i.id, i.desired]), [[db.id, 'removed']]);
    assert.equal(p2.deletes.length, 2);
  });
});

describe('stopped app', () => {
  test('instances stop (not removed), nothing is placed, and it starts again when started', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', web({ replicas: 3 }), { stopped: true });
    const a = w.instance('shop', 'web', 'n1', { state: 'running' });
    const b = w.instance('shop', 'web', 'n2', { state: 'running' });

    const p1 = w.plan();
    applyPlan(w, p1);
    assert.deepEqual(p1.creates, [], 'a stopped app is not topped up');
    assert.deepEqual(p1.updates.map((i) => [i.id, i.desired]).sort(), [[a.id, 'stopped'], [b.id, 'stopped']]);
    assert.deepEqual(p1.deletes, []);
    agent(w);
    ok(isEmpty(w.plan()), 'stopped and exited: nothing to do');

    w.setApp('shop', { stopped: false });
    const p2 = w.plan();
    assert.deepEqual(p2.updates.map((i) => [i.id, i.desired]).sort(), [[a.id, 'running'], [b.id, 'running']]);
    assert.equal(p2.creates.length, 1, 'and topped up to 3');
  });
  test(
    'stopping an app in the middle of a rollout does not end the rollout as succeeded',
    () => {
      const w = new World().nodesNamed('n1', 'n2', 'n3');
      w.app('shop', web({ replicas: 2 }));
      w.instance('shop', 'web', 'n1', { state: 'running' });
      w.instance('shop', 'web', 'n2', { state: 'running' });
      w.deploy('shop', web({ replicas: 2, env: { VERSION: '2' } }));
      applyPlan(w, w.plan());
      agent(w);
      w.setApp('shop', { stopped: true });
      const plan = w.tick(1000).plan();
      assert.deepEqual(countBy(plan.updates, (i) => i.desired), { stopped: 3 }, 'every instance stops');
      const phase = plan.rollouts[0]?.phase ?? w.rollouts.get('shop')!.phase;
      assert.notEqual(phase, 'succeeded', 'release 1 instances are still there');
      ok(!plan.events.some((e) => e.message.includes('is out')), 'no "release 2 is out" step');
    },
  );
});

describe('app deleted', () => {
  test('instances of a gone app are removed, then forgotten once confirmed', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', web({ replicas: 2 }));
    w.app('blog', web({ replicas: 1 }));
    const shop = [w.instance('shop', 'web', 'n1', { state: 'running' }), w.instance('shop', 'web', 'n2', { state: 'running' })];
    w.instance('blog', 'web', 'n1', { state: 'running' });
    w.apps.delete('shop');

    const p1 = w.plan();
    applyPlan(w, p1);
    assert.deepEqual(removedIn(p1), ids(shop));
    assert.equal(p1.updates.length, 2, 'blog untouched');
    assert.deepEqual([p1.creates, p1.deletes, p1.events], [[], [], []]);

    w.status(shop[0]!.id, 'removed');
    w.setNode('n2', { state: 'down' });
    const p2 = w.plan();
    assert.deepEqual(
      p2.deletes.map((d) => [d.instance.id, d.unconfirmed]).sort(),
      [[shop[0]!.id, false], [shop[1]!.id, true]],
      'confirmed by n1; n2 is down and is told when it is back',
    );
    assert.deepEqual(countBy(p2.events, (e) => e.type), { 'instance.removed': 1, 'instance.replaced': 1 });
  });

  test('an entry dropped from the spec: its instances are removed', () => {
    const w = new World().nodesNamed('n1');
    w.app('shop', { ...web(), worker: { command: 'work' } });
    settle(w);
    const worker = w.live('shop', 'worker')[0]!;
    w.setApp('shop', { spec: { ...w.apps.get('shop')!.spec, entrypoints: { web: w.apps.get('shop')!.spec.entrypoints.web! } } });
    const plan = w.plan();
    assert.deepEqual(plan.updates.map((i) => [i.id, i.desired]), [[worker.id, 'removed']]);
  });
});

describe('nothing to do', () => {
  test('a converged view yields an empty plan, and no writes', () => {
    const w = new World().nodesNamed('n1', 'n2', 'n3');
    w.app('shop', { ...web({ replicas: 3 }), worker: { command: 'work', replicas: 2, placement: { strategy: 'binpack' } } });
    w.app('blog', web({ replicas: 1, update: { strategy: 'blue-green' } }));
    const plans = settle(w);
    ok(plans.length >= 2);

    w.tick(3_600_000);
    const plan = w.plan();
    assertNoChanges(plan, 'a converged view');
    assert.deepEqual([plan.rollouts, plan.apps, plan.guards.size, plan.unplaced.size], [[], [], 0, 0]);
    assert.deepEqual(writesOf(plan, { of: () => 1, alloc: () => 1 }, w.now), { compares: [], ops: [] });
  });

  test('hand-built and converged, with a finished rollout record and a stopped app: still nothing', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', web({ replicas: 2 }), { release: 3 });
    w.instance('shop', 'web', 'n1', { state: 'running' });
    w.instance('shop', 'web', 'n2', { state: 'running' });
    w.rollouts.set('shop', { app: 'shop', from: 2, to: 3, phase: 'succeeded', by: 'test', startedAt: T0, updatedAt: T0, lastProgressAt: T0, progressMark: '', entries: {}, steps: [] });
    w.app('old', web(), { stopped: true });
    w.instance('old', 'web', 'n1', { state: 'exited', change: { desired: 'stopped' } });
    ok(isEmpty(w.plan()));
  });
});

describe('a pass limited to some apps (what changed since the last pass)', () => {
  test('only the apps in the scope are looked at; a gone app in the scope has its instances removed', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', web({ replicas: 2 }));
    w.app('blog', web({ replicas: 2 }));
    settle(w);
    w.apps.get('shop')!.spec.entrypoints.web!.replicas = 3;
    w.apps.get('blog')!.spec.entrypoints.web!.replicas = 3;
    const plan = reconcile(w, snapshotOf(w), w.ctx(), new Set(['shop']));
    assert.deepEqual(plan.creates.map((i) => i.app), ['shop'], 'blog is left for the pass that looks at it');

    w.apps.delete('blog');
    const gone = reconcile(w, snapshotOf(w), w.ctx(), new Set(['blog']));
    assert.deepEqual(gone.creates, []);
    assert.deepEqual(gone.updates.map((i) => [i.app, i.desired]), [['blog', 'removed'], ['blog', 'removed']]);
    assert.deepEqual(reconcile(w, snapshotOf(w), w.ctx(), new Set()).updates, [], 'an empty scope does nothing');
  });

  test('a rollout of an app outside the scope is left as it is (not finished, not rolled back)', () => {
    const w = new World().nodesNamed('n1', 'n2');
    w.app('shop', web({ replicas: 2 }));
    settle(w);
    w.deploy('shop', web({ replicas: 2, env: { V: '2' } }));
    w.tick(3_600_000); // far past the progress deadline
    const plan = reconcile(w, snapshotOf(w), w.ctx(), new Set(['other']));
    assert.deepEqual(plan.rollouts, []);
    assert.deepEqual(plan.apps, []);
  });
});
