// Image clean-up (src/agent/image-gc.ts) against the real Docker Engine: images made locally
// (`docker import`, no registry), a real DockerImages, and small fakes of what the agent's
// assignments and puller say. Old images Gantry used go; in-use, assigned, pulled, kept-release,
// hand-tagged and never-recorded images stay. Plus the name matching and the plan, which need no
// engine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ImageCollector, ImageIndex, planCleanup, type AssignedInstances, type ImageGcSettings } from '../src/agent/image-gc.js';
import { IMAGE_RECORD_FILE } from '../src/agent/image-record.js';
import { ImageDiskUsage } from '../src/agent/image-usage.js';
import { LocalNode } from '../src/agent/local-node.js';
import { NodeInfoSchema } from '../src/model/agent-protocol.js';
import type { GantryEvent } from '../src/model/types.js';
import { DockerImages } from '../src/runtime/docker-images.js';
import { DockerRuntime } from '../src/runtime/docker.js';
import type { LocalImage, Runtime } from '../src/runtime/runtime.js';
import { skipWithoutDocker } from './helpers/env.js';
import { docker, makeImage } from './helpers/registry.js';

const skip = await skipWithoutDocker();
const run = randomBytes(4).toString('hex');
/** This run's repository: every image the tests make is a tag of it, so `after` finds them all. */
const repo = `gantry-test/gc-${run}`;
const ref = (tag: string) => `${repo}:${tag}`;
const TAGS = ['a1', 'a2', 'a3', 'b1', 'b2', 'c1', 'c2', 'c3', 'd1', 'd2', 'manual', 'e1', 'e2'];
const stoppedContainer = `gantry-test-gc-${run}-stopped`;

async function present(reference: string): Promise<boolean> {
  try {
    await docker(['image', 'inspect', reference]);
    return true;
  } catch {
    return false;
  }
}

describe('image clean-up on a real engine', { skip }, () => {
  const store = new DockerImages(new Docker());
  const dirs: string[] = [];

  before(async () => {
    // Distinct markers make distinct images (distinct ids), as distinct releases would have.
    await Promise.all(TAGS.map((tag) => makeImage(ref(tag), { marker: `${run}-${tag}` })));
  });

  after(async () => {
    await docker(['rm', '-f', stoppedContainer]).catch(() => undefined);
    const ids = (await docker(['images', '--quiet', repo]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['rmi', '-f', ...new Set(ids)]).catch(() => undefined);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function collector(settings: ImageGcSettings, assigned: string[] = [], pulling: string[] = []) {
    const dataDir = await mkdtemp(join(tmpdir(), 'gantry-gc-'));
    dirs.push(dataDir);
    const events: Omit<GantryEvent, 'time'>[] = [];
    const assignments: AssignedInstances = { records: () => assigned.map((image) => ({ spec: { image } })) };
    const gc = new ImageCollector({ store, dataDir, settings, assignments, pulls: { inFlight: () => pulling.map((image) => ({ image })) }, event: (e) => events.push(e) });
    return { gc, events, dataDir };
  }

  test('with keep 1, the images of releases 1 and 2 go and release 3 stays; the record forgets what went', async () => {
    const { gc, events, dataDir } = await collector({ keepReleases: 1 });
    gc.noteUse(ref('a1'), { app: 'shop', release: 1 });
    gc.noteUse(ref('a2'), { app: 'shop', release: 2 });
    gc.noteUse(ref('a3'), { app: 'shop', release: 3 });
    const result = await gc.collect();
    assert.deepEqual(result.removed.map((r) => r.image).sort(), [ref('a1'), ref('a2')]);
    assert.equal(await present(ref('a1')), false);
    assert.equal(await present(ref('a2')), false);
    assert.equal(await present(ref('a3')), true);
    assert.deepEqual(events.map((e) => e.type), ['node.image_removed', 'node.image_removed']);
    assert.ok(events.every((e) => typeof e.data?.bytes === 'number' && e.data.bytes > 0 && e.data.app === 'shop'), JSON.stringify(events));
    const record = JSON.parse(await readFile(join(dataDir, IMAGE_RECORD_FILE), 'utf8')) as { apps: Record<string, { image: string }[]> };
    assert.deepEqual(record.apps.shop!.map((u) => u.image), [ref('a3')]);
    assert.deepEqual((await gc.collect()).removed, [], 'nothing left to remove');
  });

  test('an old image a stopped container (created, never started) is made from stays', async () => {
    await docker(['create', '--name', stoppedContainer, ref('b1')]);
    const { gc, events } = await collector({ keepReleases: 1 });
    gc.noteUse(ref('b1'), { app: 'shop', release: 1 });
    gc.noteUse(ref('b2'), { app: 'shop', release: 2 });
    const result = await gc.collect();
    assert.deepEqual(result.removed, []);
    assert.deepEqual(result.kept.map((k) => [k.image, k.why]), [[ref('b1'), 'a container uses it']]);
    assert.equal(await present(ref('b1')), true);
    assert.deepEqual(events, []);
  });

  test('an old image an assignment names, one being pulled, and one a kept release uses under another name stay', async () => {
    await docker(['tag', ref('c3'), ref('c3-alias')]);
    const { gc } = await collector({ keepReleases: 1 }, [ref('c1')], [ref('c2')]);
    gc.noteUse(ref('c3-alias'), { app: 'shop', release: 1 });
    gc.noteUse(ref('c1'), { app: 'shop', release: 1 });
    gc.noteUse(ref('c2'), { app: 'shop', release: 2 });
    gc.noteUse(ref('c3'), { app: 'shop', release: 3 });
    const result = await gc.collect();
    assert.deepEqual(result.removed, []);
    const why = new Map(result.kept.map((k) => [k.image, k.why]));
    assert.match(why.get(ref('c1')) ?? '', /^assigned/);
    assert.match(why.get(ref('c2')) ?? '', /^being pulled/);
    assert.equal(why.get(ref('c3-alias')), 'a newer release uses it');
    for (const tag of ['c1', 'c2', 'c3', 'c3-alias']) assert.equal(await present(ref(tag)), true, tag);
  });

  test('an image Gantry never recorded is never removed, however old and unused, nor one also tagged by hand', async () => {
    await docker(['tag', ref('b2'), ref('b2-by-hand')]);
    const { gc } = await collector({ keepReleases: 1 });
    gc.noteUse(ref('b2'), { app: 'blog', release: 1 });
    gc.noteUse(ref('d1'), { app: 'shop', release: 1 });
    gc.noteUse(ref('d2'), { app: 'shop', release: 2 });
    gc.noteUse(ref('d2'), { app: 'blog', release: 2 });
    const result = await gc.collect();
    assert.deepEqual(result.removed.map((r) => r.image), [ref('d1')]);
    assert.deepEqual(result.kept.map((k) => [k.image, k.why]), [[ref('b2'), `also tagged ${ref('b2-by-hand')}, which Gantry did not use`]]);
    assert.equal(await present(ref('manual')), true);
    assert.equal(await present(ref('b2')), true);
  });

  test('keep 0 turns clean-up off', async () => {
    const { gc } = await collector({ keepReleases: 0 });
    assert.equal(gc.enabled, false);
    gc.noteUse(ref('e1'), { app: 'shop', release: 1 });
    gc.noteUse(ref('e2'), { app: 'shop', release: 2 });
    assert.deepEqual(await gc.collect(), { removed: [], kept: [] });
    assert.equal(await present(ref('e1')), true);
  });

  test("the node's image disk use: counted, rounded to MiB, asked of the engine at most once a minute", async () => {
    let lists = 0;
    const list = () => {
      lists += 1;
      return store.list();
    };
    const counting = { images: { list } } as unknown as Runtime;
    const usage = new ImageDiskUsage();
    const first = await usage.current([counting], 1_000_000);
    assert.ok(first && first.count > 0 && first.bytes > 0 && first.bytes % (1024 * 1024) === 0, JSON.stringify(first));
    assert.deepEqual(await usage.current([counting], 1_030_000), first);
    assert.equal(lists, 1, 'a second report within the minute does not list again');
    usage.changed();
    await usage.current([counting], 1_031_000);
    assert.equal(lists, 2, 'after a clean-up it lists again');
  });

  test("the agent's node description carries the images, and the protocol keeps them", async () => {
    const runtime = new DockerRuntime({ namePrefix: `gantry-test-gc-${run}-` });
    try {
      const node = await LocalNode.describe({ name: `gc-${run}` }, [runtime]);
      assert.ok(node.info.images && node.info.images.count > 0, JSON.stringify(node.info.images));
      assert.deepEqual(NodeInfoSchema.parse(node.info).images, node.info.images);
    } finally {
      await runtime.close();
    }
  });
});

describe('image clean-up without an engine', () => {
  const digest = `sha256:${'ab'.repeat(32)}`;
  const images: LocalImage[] = [
    { id: 'sha256:1', names: [`registry.example.com:5000/shop/web@${digest}`], sizeBytes: 1, createdAt: 0 },
    { id: 'sha256:2', names: ['nginx:1.25', 'registry.example.com:5000/shop/web:v2'], sizeBytes: 1, createdAt: 0 },
  ];

  test('references find their image: pinned by digest whatever the tag, Docker Hub names in either spelling', () => {
    const index = new ImageIndex(images);
    assert.equal(index.find(`registry.example.com:5000/shop/web:v1@${digest}`)?.id, 'sha256:1');
    assert.equal(index.find(`registry.example.com:5000/shop/web:v2@${digest}`)?.id, 'sha256:1');
    assert.equal(index.find('registry.example.com:5000/shop/web:v2')?.id, 'sha256:2');
    assert.equal(index.find('docker.io/library/nginx:1.25')?.id, 'sha256:2');
    assert.equal(index.find('nginx'), undefined, 'nginx means nginx:latest');
    assert.equal(index.find(`registry.example.com:5000/shop/web@sha256:${'cd'.repeat(32)}`), undefined);
  });

  test('per app the newest N distinct releases are kept, the rest are candidates, oldest first', () => {
    const use = (image: string, release: number) => ({ image, release, lastUsedAt: 0 });
    const apps = new Map([
      ['shop', [use('web:1', 1), use('init:1', 1), use('web:2', 2), use('web:3', 3), use('init:3', 3)]],
      ['blog', [use('blog:7', 7)]],
    ]);
    const plan = planCleanup(apps, 2);
    assert.deepEqual(plan.candidates.map((c) => c.use.image), ['web:1', 'init:1']);
    assert.deepEqual(plan.keep.map((k) => k.use.image).sort(), ['blog:7', 'init:3', 'web:2', 'web:3']);
  });
});
