// The pure parts of images: references as Docker reads them, and a rollout's pre-pull as the
// reconcile pass decides it (hold while nodes pull, go on when they answered or the wait is over).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engineReference, parseImageRef, pinImage } from '../src/model/image-ref.js';
import { parseAppSpec } from '../src/model/spec.js';
import type { Plan } from '../src/server/reconcile/plan.js';
import { World, applyPlan } from './helpers/reconcile-world.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  const cases: Array<[string, ReturnType<typeof parseImageRef>]> = [
    ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
    ['gantry/busybox:test', { registry: 'docker.io', repository: 'gantry/busybox', tag: 'test' }],
    ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app' }],
    ['127.0.0.1:5000/shop/web:v1', { registry: '127.0.0.1:5000', repository: 'shop/web', tag: 'v1' }],
    [`registry.example.com/shop/web:v1@${DIGEST}`, { registry: 'registry.example.com', repository: 'shop/web', tag: 'v1', digest: DIGEST }],
    [`localhost/app@${DIGEST}`, { registry: 'localhost', repository: 'app', digest: DIGEST }],
  ];
  for (const [reference, expected] of cases) test(reference, () => assert.deepEqual(parseImageRef(reference), expected));

  test('bad references say what is wrong', () => {
    assert.throws(() => parseImageRef('Shop/Web:v1'), /lower-case/);
    assert.throws(() => parseImageRef('app:-v1'), /a tag is/);
    assert.throws(() => parseImageRef('app@sha256:123'), /64 lower-case hex/);
  });

  test('a spec names the field of a bad reference', () => {
    assert.throws(() => parseAppSpec({ app: 'a', entrypoints: { web: { image: 'Web:v1' } } }), /entrypoints\.web\.image: not a valid image reference/);
    assert.throws(() => parseAppSpec({ app: 'a', entrypoints: { web: { command: ['x'], pull: 'always' } } }), /entrypoints\.web\.pull: pull applies to an image/);
  });

  test('pinning keeps name and tag; the engine gets name@digest', () => {
    assert.equal(pinImage('reg:5000/app:v1', DIGEST), `reg:5000/app:v1@${DIGEST}`);
    assert.equal(pinImage(`reg:5000/app:v1@sha256:${'b'.repeat(64)}`, DIGEST), `reg:5000/app:v1@${DIGEST}`);
    assert.equal(engineReference(`reg:5000/app:v1@${DIGEST}`), `reg:5000/app@${DIGEST}`);
    assert.equal(engineReference('reg:5000/app:v1'), 'reg:5000/app:v1');
  });
});

describe('pre-pull in a rollout', () => {
  const entry = (image: string) => ({ web: { image, command: ['serve'], replicas: 2, update: { strategy: 'rolling', maxSurge: 1, maxUnavailable: 1 } } });
  const prepullOf = (plan: Plan) => plan.rollouts[0]?.entries.web?.prepull;
  const started = () => {
    const w = new World().nodesNamed('n1', 'n2', 'n3');
    w.app('shop', entry('reg/app:v1'));
    w.instance('shop', 'web', 'n1', { state: 'running' });
    w.instance('shop', 'web', 'n2', { state: 'running' });
    w.deploy('shop', entry('reg/app:v2'));
    return w;
  };

  test('a new image: nothing moves while the nodes of the old instances and of the held room pull it', () => {
    const w = started();
    const plan = w.plan();
    assert.deepEqual([plan.creates.length, plan.updates.length], [0, 0], 'no wave before the pull');
    const prepull = prepullOf(plan)!;
    assert.deepEqual(prepull.images, ['reg/app:v2']);
    assert.deepEqual(Object.keys(prepull.nodes).sort(), ['n1', 'n2', 'n3']);
    assert.ok(Object.values(prepull.nodes).every((n) => n.state === 'pending'));
    applyPlan(w, plan);
    assert.deepEqual([w.tick(1000).plan().creates.length], [0], 'still waiting');
  });

  test('once every node answered (one failed), the first wave goes and the record says how it went', () => {
    const w = started();
    applyPlan(w, w.plan());
    const rollout = structuredClone(w.rollouts.get('shop')!);
    rollout.entries.web!.prepull!.nodes = { n1: { state: 'done', ms: 10 }, n2: { state: 'done', ms: 12 }, n3: { state: 'failed', reason: 'no space left on device' } };
    w.rollouts.set('shop', rollout);
    const plan = w.tick(1000).plan();
    assert.ok(plan.creates.length + plan.updates.length > 0, 'the rollout steps');
    assert.ok(prepullOf(plan)?.concludedAt);
    const note = plan.events.find((e) => e.type === 'rollout.prepulled');
    assert.match(note?.message ?? '', /failed on n3: no space left on device/);
    assert.equal(note?.level, 'warning');
  });

  test('nodes that never answer hold the rollout only until the wait is over', () => {
    const w = started();
    applyPlan(w, w.plan());
    const plan = w.tick(6 * 60_000).plan();
    assert.ok(plan.creates.length + plan.updates.length > 0);
    assert.match(plan.events.find((e) => e.type === 'rollout.prepulled')?.message ?? '', /no answer from n1, n2, n3/);
  });

  test('a node that is down is not asked, and one that goes down is not waited for', () => {
    const w = started();
    w.setNode('n2', { state: 'down' });
    const first = w.plan();
    assert.deepEqual(Object.keys(prepullOf(first)!.nodes).sort(), ['n1', 'n3']);
    applyPlan(w, first);
    w.setNode('n3', { state: 'down' });
    const rollout = structuredClone(w.rollouts.get('shop')!);
    rollout.entries.web!.prepull!.nodes.n1 = { state: 'done', ms: 5 };
    w.rollouts.set('shop', rollout);
    const plan = w.tick(1000).plan();
    assert.ok(prepullOf(plan)?.concludedAt, 'n3 is down: nothing left to wait for');
  });

  test('no pre-pull when the image did not change, or the entry says pull: never', () => {
    for (const next of [{ ...entry('reg/app:v1'), web: { ...entry('reg/app:v1').web, env: { A: '1' } } }, { web: { ...entry('reg/app:v2').web, pull: 'never' } }]) {
      const w = new World().nodesNamed('n1', 'n2', 'n3');
      w.app('shop', entry('reg/app:v1'));
      w.instance('shop', 'web', 'n1', { state: 'running' });
      w.deploy('shop', next);
      const plan = w.plan();
      assert.equal(prepullOf(plan), undefined);
      assert.ok(plan.creates.length + plan.updates.length > 0);
    }
  });
});
