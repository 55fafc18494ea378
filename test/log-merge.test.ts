// The merge's ordering guarantee (services/log-merge.ts), on lines with chosen times and a
// clock the test moves: what is exact, what the window covers, and where the bounds give way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogMerge, type MergedLine } from '../src/server/services/log-merge.js';

function merge(options: { windowMs?: number; maxBytes: number }) {
  const out: MergedLine[] = [];
  const clock = { now: 10_000 };
  const m = new LogMerge((line) => out.push(line), options, () => clock.now);
  const texts = () => out.map((l) => l.text);
  return { m, out, clock, texts };
}

test('a plain read waits for every instance, then is in time order', () => {
  const { m, texts } = merge({ maxBytes: 1 << 20 });
  for (const id of ['a', 'b', 'c']) m.add(id);
  m.push('a', ['a1', 'a5', 'a9'], [1, 5, 9]);
  m.push('b', ['b2', 'b3'], [2, 3]);
  assert.deepEqual(texts(), [], 'c has said nothing yet');
  m.end('b');
  m.push('c', ['c4'], [4]);
  assert.deepEqual(texts(), ['a1', 'b2', 'b3', 'c4'], 'c may still send a line older than a5');
  m.end('c');
  assert.deepEqual(texts(), ['a1', 'b2', 'b3', 'c4', 'a5', 'a9']);
  assert.ok(!m.done, 'a has not ended');
  m.end('a');
  assert.ok(m.done);
});

test("an instance's own lines keep their order even when its clock goes back", () => {
  const { m, texts } = merge({ maxBytes: 1 << 20 });
  m.add('a');
  m.add('b');
  m.push('a', ['a-late', 'a-early'], [50, 10]);
  m.push('b', ['b20'], [20]);
  m.end('a');
  m.end('b');
  assert.deepEqual(texts(), ['b20', 'a-late', 'a-early']);
});

test('following: a line late by less than the window is put in its place, a later one is written when it comes', () => {
  const { m, clock, texts } = merge({ windowMs: 500, maxBytes: 1 << 20 });
  m.add('a');
  m.add('b');
  m.push('a', ['a@10000'], [10_000]);
  clock.now = 10_300;
  m.flush();
  assert.deepEqual(texts(), [], 'b may still send older lines');
  m.push('b', ['b@9900'], [9_900]);
  assert.deepEqual(texts(), ['b@9900']);
  clock.now = 10_600;
  m.flush();
  assert.deepEqual(texts(), ['b@9900', 'a@10000']);
  m.push('b', ['b@9990 (late by 610 ms)'], [9_990]);
  assert.deepEqual(texts(), ['b@9900', 'a@10000', 'b@9990 (late by 610 ms)']);
});

test('past maxBytes waiting, the oldest lines are written without waiting for silent instances', () => {
  const { m, texts } = merge({ maxBytes: 10 });
  m.add('a');
  m.add('silent');
  m.push('a', ['12345', '67890', 'abcde'], [1, 2, 3]);
  assert.deepEqual(texts(), ['12345']);
  assert.ok(!m.done);
});
