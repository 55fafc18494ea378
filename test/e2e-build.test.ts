// gantry build and gantry apply --build end to end: the local Docker Engine builds, a real
// registry (test/helpers/registry.ts) takes the push, a real server keeps the build records, and
// an agent runs what apply --build deployed. Nothing is fetched from the internet: the Dockerfiles
// start from the local gantry/busybox:test (scripts/test-image.sh).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestCluster, dockerContainers, until } from './helpers/cluster.js';
import { TEST_IMAGE, skipWithoutDocker, skipWithoutProgram } from './helpers/env.js';
import { removeLocalImage, startRegistry, type TestRegistry } from './helpers/registry.js';
import type { AppDetailResponse, EventListResponse } from '../src/model/api.js';
import type { BuildRecord } from '../src/model/types.js';
import { BuildInputError, dockerignore, isGitUrl, packContext, withoutCredentials } from '../src/cli/build-context.js';

const run = promisify(execFile);
const skip =
  (await skipWithoutDocker()) ||
  skipWithoutProgram('docker-registry', 'docker-registry') ||
  skipWithoutProgram('htpasswd', 'apache2-utils') ||
  skipWithoutProgram('git', 'git');
const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'build-hello');
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

type BuildSummary = Omit<BuildRecord, 'logTail'>;

test('.dockerignore: patterns, directories, ** and exceptions; the Dockerfile is always sent', async () => {
  const rules = dockerignore('# comment\n\nnode_modules\n*.log\n/secret.txt\ndocs/**/*.md\n!docs/keep.md\nbuild/\n');
  const out = (path: string) => rules.excluded(path);
  assert.ok(out('node_modules') && out('node_modules/x/y.js'));
  assert.ok(out('a.log') && !out('sub/a.log'), '* stays within a segment');
  assert.ok(out('secret.txt') && out('build/out.bin'));
  assert.ok(out('docs/a.md') && out('docs/x/y/z.md') && !out('docs/keep.md') && !out('docs/a.txt'));
  assert.ok(!out('src/main.ts'));

  const dir = mkdtempSync(join(tmpdir(), 'gantry-context-'));
  try {
    for (const sub of ['src', 'node_modules/pkg', 'docs']) mkdirSync(join(dir, sub), { recursive: true });
    for (const file of ['Dockerfile', 'src/main.ts', 'node_modules/pkg/index.js', 'debug.log', 'docs/keep.md', 'docs/drop.md']) writeFileSync(join(dir, file), `${file}\n`);
    writeFileSync(join(dir, '.dockerignore'), 'node_modules\n*.log\ndocs\n!docs/keep.md\nDockerfile\n');
    const packed = await packContext(dir, 'Dockerfile');
    const listing = await new Promise<string>((resolve, reject) => {
      const tar = execFile('tar', ['-t'], (err, stdout) => (err ? reject(err) : resolve(stdout)));
      packed.stream.pipe(tar.stdin!);
    });
    const names = listing.split('\n').filter(Boolean).map((n) => n.replace(/\/$/, '')).sort();
    assert.deepEqual(names, ['.dockerignore', 'Dockerfile', 'docs', 'docs/keep.md', 'src', 'src/main.ts']);
    assert.equal(packed.files, 4);
    await assert.rejects(packContext(dir, 'nope/Dockerfile'), (err: Error) => err instanceof BuildInputError && /no Dockerfile at nope\/Dockerfile/.test(err.message));
    await assert.rejects(packContext(dir, '../Dockerfile'), /must be a path inside the build context/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  assert.ok(isGitUrl('https://example.com/x/y') && isGitUrl('git@example.com:x/y') && isGitUrl('/srv/repo.git') && !isGitUrl('./app'));
  assert.equal(withoutCredentials('https://user:token@example.com/x.git'), 'https://example.com/x.git');
});

describe('gantry build and apply --build', { skip }, () => {
  const cluster = new TestCluster();
  const app = `build-hello-${cluster.id}`;
  const node = `node-${cluster.id}`;
  const registries: TestRegistry[] = [];
  const images: string[] = [];
  const dirs: string[] = [];
  let registry: TestRegistry;

  const tempDir = (what: string) => {
    const dir = mkdtempSync(join(tmpdir(), `gantry-build-test-${what}-`));
    dirs.push(dir);
    return dir;
  };
  /** The digest `gantry build` printed: "built and pushed REF@sha256:…". */
  const printedDigest = (stdout: string, ref: string) => new RegExp(`built and pushed ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}@(sha256:[0-9a-f]{64})`).exec(stdout)?.[1];
  const manifestDigest = async (repository: string, tag: string) => {
    const response = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, { headers: { accept: DOCKER_MANIFEST } });
    assert.equal(response.status, 200, `GET manifest ${repository}:${tag}`);
    return response.headers.get('docker-content-digest');
  };
  const buildsList = async (query = '') => ((await cluster.api('GET', `/v1/builds${query}`)) as { builds: BuildSummary[] }).builds;

  before(async () => {
    registry = await startRegistry();
    registries.push(registry);
    await cluster.startServer();
    await cluster.startAgent({ name: node, portRange: '30400-30449' });
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    for (const c of await dockerContainers(app)) await run('docker', ['rm', '-f', c.id]);
    for (const image of images) await removeLocalImage(image).catch((err: Error) => console.error(`could not remove ${image}: ${err.message}`));
    for (const r of registries) await r.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('gantry build --push builds the example, the registry holds it, and the server keeps the record', async () => {
    const ref = `${registry.host}/hello-build:v1`;
    images.push(ref);
    const result = await cluster.cli(['build', 'examples/build-hello', '-t', ref, '--build-arg', `BASE=${TEST_IMAGE}`, '--push']);
    assert.equal(result.code, 0, `build failed: ${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /Step 1\/\d+ : ARG BASE/, 'the engine log is printed');
    const digest = printedDigest(result.stdout, ref);
    assert.ok(digest, `no digest printed: ${result.stdout}`);
    assert.equal(await manifestDigest('hello-build', 'v1'), digest);

    const [record] = await buildsList();
    assert.ok(record, 'a build record');
    assert.equal(record.image, ref);
    assert.equal(record.digest, digest);
    assert.equal(record.result, 'succeeded');
    assert.equal(record.source, 'build-hello');
    assert.ok(record.durationMs > 0 && record.durationMs < 120_000, `duration ${record.durationMs}`);
    assert.match(record.commit ?? '', /^[0-9a-f]{40}$/, 'the commit of the work tree the example is in');
    const { build: full } = (await cluster.api('GET', `/v1/builds/${record.id}`)) as { build: BuildRecord };
    assert.ok(full.logTail.some((line) => line.includes('Successfully tagged')), full.logTail.join('\n'));

    const listed = await cluster.cli(['builds']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${record.id}.*succeeded.*${digest.slice(0, 19)}`));
  });

  test('a failing RUN fails the build with the engine\'s error, recorded as failed with a build.failed event', async () => {
    const dir = tempDir('fail');
    writeFileSync(join(dir, 'Dockerfile'), `FROM ${TEST_IMAGE}\nRUN echo about to fail && exit 3\n`);
    const ref = `${registry.host}/broken:v1`;
    images.push(ref);
    const result = await cluster.cli(['build', dir, '-t', ref, '--push']);
    assert.notEqual(result.code, 0);
    assert.match(result.stdout, /about to fail/);
    assert.match(result.stderr, /returned a non-zero code: 3/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');

    const [record] = await buildsList();
    assert.equal(record?.result, 'failed');
    assert.equal(record.image, ref);
    assert.equal(record.digest, undefined);
    assert.match(record.error ?? '', /returned a non-zero code: 3/);
    const { events } = (await cluster.api('GET', '/v1/events')) as EventListResponse;
    assert.ok(events.some((e) => e.type === 'build.failed' && e.message.includes(ref) && e.data?.build === record.id), JSON.stringify(events.slice(-5)));
  });

  test('bad input is refused before anything is built, naming what is wrong', async () => {
    const ref = `${registry.host}/hello-build:v1`;
    const cases: [string[], RegExp][] = [
      [['build', 'examples/nothing-here', '-t', ref], /build context examples\/nothing-here does not exist/],
      [['build', 'package.json', '-t', ref], /is not a directory/],
      [['build', 'examples', '-t', ref], /no Dockerfile at Dockerfile/],
      [['build', 'examples/build-hello', '-t', 'Not/A:ref:x'], /is not a valid reference/],
      [['build', 'examples/build-hello', '-t', ref, '--docker-host', 'unix:///nonexistent/docker.sock'], /cannot reach the Docker Engine at unix:\/\/\/nonexistent\/docker.sock/],
    ];
    const before = (await buildsList()).length;
    for (const [args, message] of cases) {
      const result = await cluster.cli(args);
      assert.notEqual(result.code, 0, args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.equal((await buildsList()).length, before, 'nothing was built, nothing recorded');
  });

  test('a git URL is cloned at --ref and its commit recorded', async () => {
    const work = tempDir('git');
    const repo = join(work, 'src');
    cpSync(EXAMPLE, repo, { recursive: true });
    const git = (...args: string[]) => run('git', args, { cwd: repo, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
    await git('init', '--quiet', '--initial-branch', 'main');
    await git('add', '.');
    await git('commit', '--quiet', '-m', 'hello');
    await git('tag', 'release-1');
    const commit = (await git('rev-parse', 'HEAD')).stdout.trim();
    const bare = join(work, 'hello.git');
    await run('git', ['clone', '--quiet', '--bare', repo, bare]);

    const ref = `${registry.host}/hello-git:v1`;
    images.push(ref);
    const result = await cluster.cli(['build', bare, '--ref', 'release-1', '-t', ref, '--build-arg', `BASE=${TEST_IMAGE}`, '--push', '-o', 'json']);
    assert.equal(result.code, 0, `build failed: ${result.stdout}\n${result.stderr}`);
    const answer = JSON.parse(result.stdout) as { image: string; digest: string; commit: string; durationMs: number };
    assert.equal(answer.image, ref);
    assert.equal(answer.commit, commit);
    assert.equal(await manifestDigest('hello-git', 'v1'), answer.digest);
    const [record] = await buildsList();
    assert.equal(record?.commit, commit);
    assert.equal(record.ref, 'release-1');
    assert.equal(record.source, bare);
  });

  test('a registry that wants a login: refused without one; --registry-user with the password on stdin, or the Docker config, pushes; the password is shown nowhere', async () => {
    const auth = { username: 'builder', password: `pw-${cluster.id}-secret` };
    const privateRegistry = await startRegistry({ auth });
    registries.push(privateRegistry);
    const ref = `${privateRegistry.host}/private/hello:v1`;
    images.push(ref);
    const args = ['build', 'examples/build-hello', '-t', ref, '--build-arg', `BASE=${TEST_IMAGE}`, '--push'];
    const emptyConfig = tempDir('docker-config');

    const refused = await cluster.cli(args, { env: { DOCKER_CONFIG: emptyConfig } });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /the push to 127\.0\.0\.1:\d+ failed: .*(unauthorized|no basic auth credentials|authentication required).*docker login/i);

    const withFlag = await cluster.cli([...args, '--registry-user', auth.username, '--registry-password-stdin'], { input: `${auth.password}\n`, env: { DOCKER_CONFIG: emptyConfig } });
    assert.equal(withFlag.code, 0, `${withFlag.stdout}\n${withFlag.stderr}`);
    assert.ok(printedDigest(withFlag.stdout, ref));

    const config = tempDir('docker-config');
    writeFileSync(join(config, 'config.json'), JSON.stringify({ auths: { [privateRegistry.host]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } } }));
    const fromConfig = await cluster.cli(args, { env: { DOCKER_CONFIG: config } });
    assert.equal(fromConfig.code, 0, `${fromConfig.stdout}\n${fromConfig.stderr}`);

    const records = await Promise.all((await buildsList('?limit=3')).map(async (b) => ((await cluster.api('GET', `/v1/builds/${b.id}`)) as { build: BuildRecord }).build));
    assert.deepEqual(records.map((r) => r.result), ['succeeded', 'succeeded', 'failed']);
    for (const text of [refused, withFlag, fromConfig].flatMap((r) => [r.stdout, r.stderr]).concat(JSON.stringify(records))) {
      assert.ok(!text.includes(auth.password), 'the password appears in the output or a record');
    }
  });

  test('apply --build builds, pushes and deploys the example with its image pinned to the digest', async () => {
    const dir = tempDir('apply');
    cpSync(EXAMPLE, dir, { recursive: true });
    const spec = readFileSync(join(dir, 'gantry.yaml'), 'utf8').replaceAll('127.0.0.1:5000', registry.host).replace(/^app: hello-build$/m, `app: ${app}`);
    assert.match(spec, new RegExp(`app: ${app}`));
    writeFileSync(join(dir, 'gantry.yaml'), spec);
    const ref = `${registry.host}/hello-build:v1`;

    const result = await cluster.cli(['apply', '--build', '-f', join(dir, 'gantry.yaml'), '--timeout', '90s']);
    assert.equal(result.code, 0, `apply --build failed: ${result.stdout}\n${result.stderr}\n${cluster.output.slice(-30).join('\n')}`);
    const digest = printedDigest(result.stdout, ref);
    assert.ok(digest, result.stdout);
    assert.equal(await manifestDigest('hello-build', 'v1'), digest);

    const detail = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
    assert.equal(detail.app.spec.entrypoints.web!.image, `${ref}@${digest}`);
    const instance = await until('the instance to run and be healthy', async () => {
      const { instances } = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
      return instances.find((i) => i.desired === 'running' && i.status?.state === 'running' && i.status.healthy);
    }, 60_000);
    const page = await (await fetch(`http://127.0.0.1:${instance.ports[0]!.host}/`, { signal: AbortSignal.timeout(2000) })).text();
    assert.match(page, /hello from an image gantry built/);

    const [record] = await buildsList(`?app=${app}`);
    assert.equal(record?.app, app);
    assert.equal(record.digest, digest);
  });
});
