// The server's cluster cache: instances indexed by app and node, and one shared copy of an
// entry spec for all the instances of an entry at a release (most of the cache's memory at a
// fleet's size otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../src/store/index.js';
import { ClusterState } from '../src/server/state.js';
import { STORE } from '../src/server/keys.js';
import { parseAppSpec } from '../src/model/spec.js';
import type { Instance } from '../src/model/types.js';

test('instances of one entry and release share one spec object; a different spec keeps its own; indexes follow', async () => {
  const store = openStore('sqlite::memory:');
  const state = await ClusterState.load(store);
  const spec = parseAppSpec({ app: 'shop', entrypoints: { web: { command: ['serve'], replicas: 3 } } }).entrypoints.web!;
  const instance = (id: string, node: string, change: Partial<Instance> = {}): Instance => ({
    id, app: 'shop', env: 'default', entry: 'web', release: 1, node, runtime: 'process', spec, ports: [], desired: 'running', createdAt: 1, ...change,
  });
  const put = async (i: Instance) => state.waitFor(await store.put(STORE.instances.key(i.app, i.id), STORE.instances.encode(i)));
  await put(instance('a', 'n1'));
  await put(instance('b', 'n2'));
  await put(instance('c', 'n1', { spec: { ...spec, env: { DIFFERENT: '1' } } }));
  const [a, b, c] = ['a', 'b', 'c'].map((id) => state.instances.get(id)!);
  assert.equal(a!.spec, b!.spec, 'one object for the same spec');
  assert.notEqual(c!.spec, a!.spec);
  assert.deepEqual(c!.spec.env, { DIFFERENT: '1' });
  assert.deepEqual(state.instancesOnNode('n1').map((i) => i.id).sort(), ['a', 'c']);
  assert.deepEqual(state.instancesOf('shop', 'web').length, 3);

  // The first holder goes: the others keep the shared copy, and a newcomer still gets it.
  await state.waitFor((await store.delete(STORE.instances.key('shop', 'a')))!);
  await put(instance('d', 'n2'));
  assert.equal(state.instances.get('d')!.spec, state.instances.get('b')!.spec);
  assert.deepEqual(state.instancesOnNode('n1').map((i) => i.id), ['c']);
  // An update of a record (desired state) keeps sharing.
  await put(instance('b', 'n2', { desired: 'removed' }));
  assert.equal(state.instances.get('b')!.spec, state.instances.get('d')!.spec);
  assert.equal(state.instances.get('b')!.desired, 'removed');
  state.close();
  await store.close();
});
