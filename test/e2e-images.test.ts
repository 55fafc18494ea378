// Images from real registries (Debian's docker-registry) to a real Docker Engine: the agent
// pulls what the node lacks, the server pins tags to digests, a rollback goes back to the old
// digest after the tag moved, and bad references are refused with the field that holds them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { skipWithoutDocker, skipWithoutProgram } from './helpers/env.js';
import { docker, hostAddress, makeImage, pushImage, removeLocalImage, startRegistry, type TestRegistry } from './helpers/registry.js';
import type { AppDetailResponse, EventListResponse } from '../src/model/api.js';

const run = promisify(execFile);
const skip = (await skipWithoutDocker()) || skipWithoutProgram('docker-registry', 'docker-registry');

function specOf(app: string, image: string, extra = ''): string {
  return `app: ${app}
env: test
entrypoints:
  web:
    image: ${image}
    command: [sleep, "3600"]
    replicas: 2
    resources: { cpu: 0.1, memory: 32Mi }
    stop: { grace: 1s, drain: 0s }
${extra}`;
}

/** The image id a container runs, and the id the engine gives a reference. */
async function containerImage(name: string): Promise<string> {
  return (await docker(['inspect', '--format', '{{.Image}}', name])).stdout.trim();
}
async function imageId(reference: string): Promise<string> {
  return (await docker(['image', 'inspect', '--format', '{{.Id}}', reference])).stdout.trim();
}

describe('images from a plain registry', { skip }, () => {
  const cluster = new TestCluster();
  const app = `img-${cluster.id}`;
  const node = `node-${cluster.id}`;
  const source = `gantry-test/img-src-${cluster.id}`;
  let registry: TestRegistry;
  let v1: { ref: string; digest: string };

  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const events = async () => ((await cluster.api('GET', `/v1/events?app=${app}&limit=500`)) as EventListResponse).events;

  before(async () => {
    registry = await startRegistry();
    await makeImage(`${source}:a`, { marker: `a-${cluster.id}` });
    v1 = await pushImage(registry, `${source}:a`, `shop/web-${cluster.id}:v1`);
    await removeLocalImage(`${source}:a`);
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '31100-31199' });
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await docker(['rm', '-f', c.id]).catch(() => undefined);
    await registry?.stop();
    for (const ref of [v1?.ref, `${source}:a`, `${source}:b`, `${source}:c`, `${source}:d`]) if (ref) await removeLocalImage(ref);
    await docker(['image', 'prune', '-f', '--filter', `label=none`]).catch(() => undefined);
  });

  test('an image no node has is pulled, and the release is pinned to the digest the tag named', async () => {
    await assert.rejects(imageId(v1.ref), 'the engine does not hold the image before the deploy');
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: specOf(app, v1.ref) });
    assert.equal(result.code, 0, `apply failed: ${result.stdout}\n${result.stderr}`);
    const { app: record, instances } = await detail();
    assert.equal(record.spec.entrypoints.web!.image, `${v1.ref}@${v1.digest}`);
    assert.equal(instances.filter((i) => i.status?.state === 'running').length, 2);
    const pinnedId = await imageId(`${v1.ref.replace(/:v1$/, '')}@${v1.digest}`);
    for (const instance of instances) assert.equal(await containerImage(`gantry-${instance.id}`), pinnedId);
    const kinds = (await events()).map((e) => e.type);
    assert.ok(kinds.includes('instance.pulling'), `events: ${kinds.join(', ')}`);
    assert.ok(kinds.includes('instance.pulled'), `events: ${kinds.join(', ')}`);
  });

  test('applying again after the tag moved makes a new release; rollback returns to the old digest', async () => {
    await makeImage(`${source}:b`, { marker: `b-${cluster.id}` });
    const v1b = await pushImage(registry, `${source}:b`, `shop/web-${cluster.id}:v1`);
    assert.notEqual(v1b.digest, v1.digest);
    const before = (await detail()).app.release;
    const moved = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: specOf(app, v1.ref) });
    assert.equal(moved.code, 0, moved.stderr);
    const after = await detail();
    assert.equal(after.app.release, before + 1);
    assert.equal(after.app.spec.entrypoints.web!.image, `${v1.ref}@${v1b.digest}`);
    const diff = await cluster.cli(['diff', app, String(before), String(before + 1)]);
    assert.match(diff.stdout, new RegExp(v1b.digest.slice(7, 19)));

    const unchanged = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: specOf(app, v1.ref) });
    assert.equal(unchanged.code, 0, unchanged.stderr);
    assert.equal((await detail()).app.release, before + 1, 'an unmoved tag is no new release');

    const back = await cluster.cli(['rollback', app, '--timeout', '90s']);
    assert.equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
    const rolled = await until('the old digest to run again', async () => {
      const now = await detail();
      const running = now.instances.filter((i) => i.desired === 'running' && i.status?.state === 'running' && i.release === now.app.release);
      return running.length === 2 && now.app.spec.entrypoints.web!.image === `${v1.ref}@${v1.digest}` ? running : undefined;
    }, 60_000);
    const oldId = await imageId(`${v1.ref.replace(/:v1$/, '')}@${v1.digest}`);
    for (const instance of rolled) assert.equal(await containerImage(`gantry-${instance.id}`), oldId, 'docker inspect shows the old digest');
  });

  test('a rollout to an image no node has pre-pulls it on the nodes before its first wave', async () => {
    await makeImage(`${source}:c`, { marker: `c-${cluster.id}`, sizeMiB: 4 });
    const v2 = await pushImage(registry, `${source}:c`, `shop/web-${cluster.id}:v2`);
    await removeLocalImage(`${source}:c`);
    const since = Date.now();
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: specOf(app, v2.ref) });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const { rollout } = (await cluster.api('GET', `/v1/apps/${app}/rollout`)) as { rollout: { to: number; entries: Record<string, { prepull?: { images: string[]; nodes: Record<string, { state: string }>; concludedAt?: number } }> } };
    const prepull = rollout.entries.web?.prepull;
    assert.ok(prepull, `the rollout record shows its pre-pull: ${JSON.stringify(rollout)}`);
    assert.deepEqual(prepull.images, [`${v2.ref}@${v2.digest}`]);
    assert.equal(prepull.nodes[node]?.state, 'done');
    assert.ok(prepull.concludedAt);
    const status = await cluster.cli(['rollout', 'status', app]);
    assert.match(status.stdout, new RegExp(`pre-pull of web \\(.*\\): pulled; 1/1 node\\(s\\) done`));
    const recent = (await events()).filter((e) => e.time >= since);
    const nodeEvents = ((await cluster.api('GET', `/v1/events?node=${node}&limit=500`)) as EventListResponse).events;
    assert.ok(nodeEvents.some((e) => e.type === 'node.image_pulled' && e.time >= since && e.message.includes(v2.digest)), 'the node says it pre-pulled');
    assert.ok(recent.some((e) => e.type === 'rollout.prepulled'), 'the rollout says the pre-pull is over');
    // The instances found the image there: none of them had to pull it.
    assert.ok(!recent.some((e) => e.type === 'instance.pulling'), `instances pulled by themselves: ${recent.filter((e) => e.type === 'instance.pulling').map((e) => e.message).join('; ')}`);
  });

  test('gantry image prepull warms every node an app may run on', async () => {
    await makeImage(`${source}:d`, { marker: `d-${cluster.id}` });
    const v3 = await pushImage(registry, `${source}:d`, `shop/warm-${cluster.id}:v3`);
    await removeLocalImage(`${source}:d`);
    const warm = `warm-${cluster.id}`;
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: specOf(warm, v3.ref).replace('replicas: 2', 'replicas: 0') });
    assert.equal(applied.code, 0, applied.stderr);
    await assert.rejects(imageId(`${v3.ref.replace(/:v3$/, '')}@${v3.digest}`));
    const result = await cluster.cli(['image', 'prepull', warm]);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`${node}\\s+.*ready`));
    assert.ok(await imageId(`${v3.ref.replace(/:v3$/, '')}@${v3.digest}`));
    await cluster.cli(['rm', warm, '--timeout', '30s']);
    await removeLocalImage(`${v3.ref.replace(/:v3$/, '')}@${v3.digest}`);
  });

  test('a tag the registry does not have is refused at apply, naming the field; nothing changes', async () => {
    const before = await detail();
    const missing = `${registry.host}/shop/web-${cluster.id}:nope`;
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: specOf(app, missing) });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /entrypoints\.web\.image/);
    assert.match(result.stderr, /manifest unknown/i);
    const wrongDigest = `${registry.host}/shop/web-${cluster.id}@sha256:${'0'.repeat(64)}`;
    const digestResult = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: specOf(app, wrongDigest) });
    assert.notEqual(digestResult.code, 0);
    assert.match(digestResult.stderr, /entrypoints\.web\.image: .*manifest unknown/i);
    const now = await detail();
    assert.equal(now.app.release, before.app.release);
    assert.equal(now.app.spec.entrypoints.web!.image, before.app.spec.entrypoints.web!.image);
  });

  test('a registry the nodes cannot reach: ps and events name image, node and cause; the old release keeps serving', async () => {
    const before = await detail();
    const unreachable = 'gantry-no-such-registry.invalid:5000/shop/web:v2';
    // autoRollback off: the failing instance stays, so ps can show why (with it on, the rollout
    // rolls back at once and takes the failing instance with it).
    const result = await cluster.cli(['apply', '-f', '-', '--no-wait'], { input: specOf(app, unreachable, '    update: { progressDeadline: 20s, autoRollback: false }\n') });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /entrypoints\.web\.image: .* is not pinned to a digest/);
    const failed = await until('a pull failure to be reported', async () => (await events()).find((e) => e.type === 'instance.pull_failed'), 60_000);
    assert.match(failed.message, /gantry-no-such-registry\.invalid:5000\/shop\/web:v2/);
    assert.match(failed.message, new RegExp(`on ${node}`));
    assert.match(failed.message, /cannot reach the registry|no such host|lookup/);
    const ps = await until('ps to say why', async () => {
      const out = await cluster.cli(['ps', app]);
      return /cannot pull gantry-no-such-registry\.invalid:5000\/shop\/web:v2 on node-/.test(out.stdout) ? out.stdout : undefined;
    }, 30_000);
    assert.match(ps, /cannot reach the registry|no such host|lookup/);
    const serving = (await detail()).instances.filter((i) => i.release === before.app.release && i.status?.state === 'running');
    assert.equal(serving.length, 2, 'the previous release keeps serving');
    const back = await cluster.cli(['rollback', app, '--timeout', '60s']);
    assert.equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
    assert.equal((await detail()).app.spec.entrypoints.web!.image, before.app.spec.entrypoints.web!.image);
  });
});

/**
 * A registry holding one image pushed as `target` (and gone from the local engine), a server and
 * an agent: what the registry suites below share. Set up in `before`, all removed in `after`.
 */
function registrySuite(name: string, options: { registry: Parameters<typeof startRegistry>[0]; target: string; portRange: string; serverExtra?: (cluster: TestCluster) => string[] }) {
  const cluster = new TestCluster();
  const suite = { cluster, app: `${name}-${cluster.id}`, node: `node-${cluster.id}`, registry: undefined as unknown as TestRegistry, pushed: { ref: '', digest: '' } };
  const source = `gantry-test/${name}-src-${cluster.id}`;
  before(async () => {
    suite.registry = await startRegistry(options.registry);
    await makeImage(`${source}:a`, { marker: `${name}-${cluster.id}` });
    suite.pushed = await pushImage(suite.registry, `${source}:a`, options.target.replace('{id}', cluster.id));
    await removeLocalImage(`${source}:a`);
    await cluster.startServer(options.serverExtra ? { extra: options.serverExtra(cluster) } : undefined);
    await cluster.startAgent({ name: suite.node, portRange: options.portRange });
  });
  after(async () => {
    await cluster.cli(['rm', suite.app, '--timeout', '60s']);
    await cluster.close();
    for (const c of await dockerContainers(suite.app)) await docker(['rm', '-f', c.id]).catch(() => undefined);
    await suite.registry?.stop();
    for (const ref of [suite.pushed.ref, `${source}:a`]) if (ref) await removeLocalImage(ref);
  });
  return suite;
}

describe('images from a private registry (htpasswd auth, TLS trusted through certs.d)', { skip }, () => {
  const password = `Pw-${Math.random().toString(36).slice(2)}-${Date.now()}`;
  // Not on 127.0.0.1: there the engine skips certificate checks, and this test is about them.
  const suite = registrySuite('priv', { registry: { auth: { username: 'deployer', password }, tls: true, address: hostAddress() }, target: 'team/app-{id}:v1', portRange: '31200-31299' });
  const { cluster, app } = suite;
  const detail = () => cluster.api('GET', `/v1/apps/${app}`) as Promise<AppDetailResponse>;
  const login = (secret: string) => cluster.cli(['registry', 'login', suite.registry.host, '-u', 'deployer', '--password-stdin'], { input: `${secret}\n` });

  test('without credentials the apply is refused, naming the field and what to do', async () => {
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: specOf(app, suite.pushed.ref) });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /entrypoints\.web\.image/);
    assert.match(result.stderr, new RegExp(`gantry registry login ${suite.registry.host.replace(/\./g, '\\.')}`));
  });

  test('a wrong password is refused as such', async () => {
    assert.equal((await login('not-the-password')).code, 0);
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '30s'], { input: specOf(app, suite.pushed.ref) });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /refused the stored credentials/);
  });

  test('with the credentials stored, the server pins and the agent pulls over verified TLS', async () => {
    assert.equal((await login(password)).code, 0);
    const ls = await cluster.cli(['registry', 'ls']);
    assert.match(ls.stdout, new RegExp(`${suite.registry.host.replace(/\./g, '\\.')}\\s+deployer`));
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '90s'], { input: specOf(app, suite.pushed.ref) });
    assert.equal(result.code, 0, `apply failed: ${result.stdout}\n${result.stderr}`);
    const { app: record, instances } = await detail();
    assert.equal(record.spec.entrypoints.web!.image, `${suite.pushed.ref}@${suite.pushed.digest}`);
    assert.equal(instances.filter((i) => i.status?.state === 'running').length, 2);
  });

  test('the password appears in no answer, event, log line or stored file', async () => {
    const answers = await Promise.all(
      ['/v1/registries', `/v1/apps/${app}`, `/v1/apps/${app}/releases`, '/v1/events?limit=1000', '/v1/instances', '/v1/nodes'].map(async (path) => JSON.stringify(await cluster.api('GET', path))),
    );
    for (const [i, text] of answers.entries()) assert.ok(!text.includes(password), `answer ${i} holds the password`);
    assert.ok(!cluster.output.join('\n').includes(password), 'server or agent output holds the password');
    // grep exits 1 when nothing matches: the wanted outcome.
    const found = await run('grep', ['-rlF', '--', password, cluster.dir]).then(({ stdout }) => stdout, (err: { code?: number; stdout?: string }) => (err.code === 1 ? '' : `grep failed: ${String(err.code)}`));
    assert.equal(found.trim(), '', `files under the cluster's directories (store, agent cache) hold the password: ${found}`);
  });
});

describe('a registry the server cannot reach but its nodes can', { skip }, () => {
  // The server trusts no registry CA (an empty certs folder): the node's engine does (/etc/docker/certs.d).
  const suite = registrySuite('vianode', { registry: { tls: true, address: hostAddress() }, target: 'far/app-{id}:v1', portRange: '31300-31399', serverExtra: (cluster) => ['--registry-certs-dir', join(cluster.dir, 'no-certs')] });
  const { cluster, app, node } = suite;

  test("the tag is pinned through a node's engine, and the event says so", async () => {
    const result = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: specOf(app, suite.pushed.ref).replace('replicas: 2', 'replicas: 1') });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const { app: record } = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
    assert.equal(record.spec.entrypoints.web!.image, `${suite.pushed.ref}@${suite.pushed.digest}`);
    const { events } = (await cluster.api('GET', '/v1/events?limit=200')) as EventListResponse;
    const resolved = events.find((e) => e.type === 'app.image_resolved');
    assert.match(resolved?.message ?? '', new RegExp(`through node ${node}'s engine`));
  });
});
