// The registry harness itself (test/helpers/registry.ts): a real docker-registry takes images
// pushed by the docker CLI and the local Docker Engine pulls them back, plain and with
// basic auth over TLS, and the access log shows the blob downloads.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { skipWithoutDocker, skipWithoutProgram } from './helpers/env.js';
import { until } from './helpers/cluster.js';
import { docker, loginTo, makeImage, pushImage, removeLocalImage, startRegistry, type TestRegistry } from './helpers/registry.js';

const skip =
  (await skipWithoutDocker()) ||
  skipWithoutProgram('docker-registry', 'docker-registry') ||
  skipWithoutProgram('htpasswd', 'apache2-utils') ||
  skipWithoutProgram('openssl', 'openssl') ||
  skipWithoutProgram('busybox', 'busybox-static');
const run = `${process.pid}-${Date.now().toString(36)}`;
const registries: TestRegistry[] = [];
const images: string[] = [];
const tempDirs: string[] = [];

after(async () => {
  for (const registry of registries) await registry.stop();
  for (const image of images) await removeLocalImage(image).catch(() => {});
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

/** A DOCKER_CONFIG with no logins in it, like an agent's Docker client before it has any. */
async function emptyDockerConfig(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-docker-config-'));
  tempDirs.push(dir);
  return dir;
}

/** A distinct local image (its own marker); forgotten in after() whatever happens. */
async function newImage(name: string): Promise<string> {
  const tag = `gantrytest-registry-${run}/${name}:src`;
  images.push(tag);
  await makeImage(tag, { marker: `${name} ${run}`, sizeMiB: 1 });
  return tag;
}

const localDigests = async (ref: string) => JSON.parse((await docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])).stdout) as string[];
const isLocal = (ref: string) => docker(['image', 'inspect', ref]).then(() => true, () => false);

/** Pulls ref and waits until the access log shows the blobs went over the wire (the log line is
 *  written as the response completes, which may be a moment after the client has its bytes). */
async function pullFetchesBlobs(registry: TestRegistry, ref: string, dockerConfig: string): Promise<void> {
  const before = await registry.blobFetches();
  await docker(['pull', ref], { dockerConfig });
  // At least the image config and the one layer.
  await until('the blob GETs in the access log', async () => (await registry.blobFetches()) >= before + 2, 5000, 25);
}

let plainDigest: string | undefined;

test('a plain registry takes a pushed image and serves it back without a login', { skip }, async () => {
  const registry = await startRegistry({});
  registries.push(registry);
  assert.match(registry.host, /^127\.0\.0\.1:\d+$/);
  assert.equal(registry.url, `http://${registry.host}`);

  const source = await newImage('plain');
  const pushed = await pushImage(registry, source, 'shop/web:v1');
  images.push(pushed.ref);
  assert.equal(pushed.ref, `${registry.host}/shop/web:v1`);
  assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
  plainDigest = pushed.digest;
  assert.equal(await isLocal(pushed.ref), false, 'the pushed tag is removed locally');
  const log = await registry.accessLog();
  assert.ok(log.some((line) => line.includes('"PUT /v2/shop/web/manifests/v1 HTTP/1.1" 201 ')), log.join('\n'));

  // Only with the source gone too must the Engine download the blobs.
  await removeLocalImage(source);
  await pullFetchesBlobs(registry, pushed.ref, await emptyDockerConfig());
  assert.deepEqual(await localDigests(pushed.ref), [`${registry.host}/shop/web@${pushed.digest}`]);
});

test('a registry with basic auth over TLS wants a login to pull', { skip }, async () => {
  const auth = { username: 'gantry', password: randomBytes(12).toString('base64url') };
  const registry = await startRegistry({ auth, tls: true });
  registries.push(registry);
  assert.equal(registry.url, `https://${registry.host}`);
  const certsDir = `/etc/docker/certs.d/${registry.host}`;
  assert.ok(registry.caFile && existsSync(registry.caFile));
  assert.ok(existsSync(join(certsDir, 'ca.crt')), 'the Engine is given the CA');

  const source = await newImage('secure');
  const pushed = await pushImage(registry, source, 'shop/api:v2');
  images.push(pushed.ref);
  assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
  if (plainDigest) assert.notEqual(pushed.digest, plainDigest, 'different markers, different images');
  assert.equal(await isLocal(pushed.ref), false);
  await removeLocalImage(source);

  // Without credentials the registry answers 401, but Docker 20.10 treats every registry on
  // 127.0.0.0/8 as insecure: after that 401 it falls back to plain HTTP on the TLS port and
  // reports that failure (connection reset) instead. The access log shows the real refusal.
  const refusals = async () => (await registry.accessLog()).filter((line) => / 401 \d+ /.test(line)).length;
  const refusedBefore = await refusals();
  const stranger = await emptyDockerConfig();
  await assert.rejects(docker(['pull', pushed.ref], { dockerConfig: stranger }), /unauthorized|authentication required|no basic auth credentials|connection reset by peer/i);
  assert.ok((await refusals()) > refusedBefore, 'the registry refused the pull without credentials');
  assert.equal(await isLocal(pushed.ref), false);
  // Wrong credentials are sent, refused and reported as such (no fallback).
  const wrong = await emptyDockerConfig();
  await writeFile(join(wrong, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${auth.username}:wrong`).toString('base64') } } }));
  await assert.rejects(docker(['pull', pushed.ref], { dockerConfig: wrong }), /unauthorized/i);
  assert.equal(await isLocal(pushed.ref), false);

  const agent = await emptyDockerConfig();
  await loginTo(registry, agent);
  await pullFetchesBlobs(registry, pushed.ref, agent);
  assert.deepEqual(await localDigests(pushed.ref), [`${registry.host}/shop/api@${pushed.digest}`]);

  await registry.stop();
  assert.equal(existsSync(certsDir), false, 'stop() takes the CA back out of certs.d');
  assert.equal(existsSync(registry.dir), false);
});
