// The app spec: defaults and units, every error naming its field, the exported JSON Schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appSpecJsonSchema, parseAppSpecText, SpecError } from '../src/model/spec.js';
import { parseDuration, parseSize } from '../src/model/units.js';

function problems(text: string): string[] {
  try {
    parseAppSpecText(text);
  } catch (err) {
    assert.ok(err instanceof SpecError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('expected the spec to be rejected');
}

test('units: durations and sizes', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1.5m'), 90_000);
  assert.equal(parseDuration('2x'), undefined);
  assert.equal(parseSize('64Mi'), 64 * 1024 * 1024);
  assert.equal(parseSize('1G'), 1e9);
  assert.equal(parseSize('12XB'), undefined);
});

test('defaults are filled and units normalised', () => {
  const spec = parseAppSpecText('app: a\nentrypoints:\n  w:\n    command: "sleep 1"\n    health: { tcp: { port: 80 } }\n');
  const entry = spec.entrypoints.w!;
  assert.equal(spec.env, 'default');
  assert.deepEqual(entry.command, ['/bin/sh', '-c', 'sleep 1']);
  assert.equal(entry.replicas, 1);
  assert.deepEqual(entry.resources, { cpu: 0.1, memory: 64 * 1024 * 1024, cpuBind: false });
  assert.deepEqual(entry.restart, { policy: 'always', backoff: { initial: 1000, max: 60_000 }, maxRetries: undefined });
  assert.equal(entry.health!.interval, 5000);
  assert.deepEqual(entry.stop, { signal: 'SIGTERM', grace: 10_000, drain: 1000 });
});

test('each mistake names its field path', () => {
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: x\n    resources: { cpu: 0 }\n'), ['entrypoints.w.resources.cpu: cpu must be greater than 0']);
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: x\n    hooks: { afterStart: x, onCrash: y }\n'), ['entrypoints.w.hooks.onCrash: unknown field']);
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: x\n    ports: [{ name: a }, { name: a }]\n'), ['entrypoints.w.ports[1].name: duplicate port name a (also ports[0])']);
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    image: i\n    ports: [{ name: a }]\n'), ['entrypoints.w.ports[0].container: container port is required for an image (docker) entry']);
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: x\n    ports: [{ name: a }]\n    health: { http: { port: b } }\n'), ['entrypoints.w.health.http.port: no port named "b" in ports']);
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: x\n    health: { interval: 1s }\n'), ['entrypoints.w.health: exactly one of http, tcp or exec is required']);
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: x\n    restart: sometimes\n'), ['entrypoints.w.restart: expected always, on-failure, never, or { policy, backoff: { initial, max }, maxRetries }']);
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: 7\n'), ['entrypoints.w.command: expected a command: a string (run by /bin/sh -c) or a non-empty list of strings']);
  assert.match(problems('app: Bad_Name\nentrypoints:\n  w:\n    command: x\n')[0]!, /^app: app must be lower-case/);
  assert.match(problems('app: a\nentrypoints:\n  w:\n    command: x\n  w:\n    command: y\n')[0]!, /^line 5, column 3: Map keys must be unique/);
  // A bad map key says what keys must be, not zod's "Invalid key in record".
  assert.deepEqual(problems('app: a\nentrypoints:\n  w:\n    command: x\n    env: { 1A: x }\n'), ['entrypoints.w.env.1A: environment variable names are letters, digits and "_", not starting with a digit (at most 256)']);
});

test('the JSON Schema in docs/ is the one the code generates', () => {
  const committed = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'docs', 'gantry.schema.json'), 'utf8')) as { required: string[] };
  assert.deepEqual(committed, appSpecJsonSchema(), 'run: npm run schema');
  assert.deepEqual(committed.required, ['app', 'entrypoints']);
});
