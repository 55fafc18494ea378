// The pure rollout step: what counts as the new release failing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepEntry } from '../src/server/reconcile/rollout-step.js';
import { parseAppSpec } from '../src/model/spec.js';
import type { Instance, InstanceStatus } from '../src/model/types.js';

const app = parseAppSpec({ app: 'shop', entrypoints: { web: { command: 'serve', replicas: 2, ports: [{ name: 'http' }], update: { strategy: 'rolling', maxSurge: 1, maxUnavailable: 0 } } } });
const spec = app.entrypoints.web!;

function instance(id: string, release: number): Instance {
  return { id, app: 'shop', env: 'default', entry: 'web', release, node: 'n1', runtime: 'process', spec, ports: [{ name: 'http', host: 20000, protocol: 'tcp' }], desired: 'running', createdAt: 0 };
}

function status(id: string, change: Partial<InstanceStatus>): InstanceStatus {
  return { id, state: 'running', healthy: true, restarts: 0, exitCode: null, runtimeId: null, startedAt: 0, healthySince: 0, message: null, updatedAt: 0, ...change };
}

const step = (statuses: Record<string, InstanceStatus>) =>
  stepEntry({ replicas: 2, update: spec.update, old: [instance('old-1', 1), instance('old-2', 1)], fresh: [instance('new-1', 2)], status: (id) => statuses[id], state: {}, now: 10_000 });

test('a new instance that cannot start fails the release; one whose host port another program holds does not', () => {
  const crashed = step({ 'old-1': status('old-1', {}), 'old-2': status('old-2', {}), 'new-1': status('new-1', { state: 'backoff', healthy: null, exitCode: 2, message: 'exited with code 2' }) });
  assert.match(crashed.failure ?? '', /instance new-1 on n1: exited with code 2, exit code 2/);

  const portTaken = step({
    'old-1': status('old-1', {}),
    'old-2': status('old-2', {}),
    'new-1': status('new-1', { state: 'backoff', healthy: null, message: 'could not start: host port 20000/tcp already in use by another program on this node', portsTaken: [{ host: 20000, protocol: 'tcp' }] }),
  });
  assert.equal(portTaken.failure, undefined, 'the server moves it to another port instead');
  assert.equal(portTaken.done, false);
  assert.deepEqual(portTaken.remove, [], 'no old instance goes while the new one is not healthy');
});
