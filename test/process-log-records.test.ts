// The process runtime's log records (process-log-records.ts) on their own: the parts of the format
// that real instances rarely hit (lines past the 1 MiB cap, lines that look stamped but are not,
// both streams without any time), read as the runtime reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineJoiner, MAX_JOINED_LINE, mergeStreams, parseRecord } from '../src/runtime/process-log-records.js';
import type { LogLine } from '../src/runtime/runtime.js';

test('a record gives its time to the microsecond, its text and whether the line goes on', () => {
  assert.deepEqual(parseRecord('2026-11-30T22:35:53.123456Z hello world'), { time: Date.parse('2026-11-30T22:35:53Z') + 123.456, text: 'hello world', continues: false });
  assert.deepEqual(parseRecord('2026-11-30T22:35:53.000001Z+piece'), { time: Date.parse('2026-11-30T22:35:53Z') + 0.001, text: 'piece', continues: true });
  assert.equal(parseRecord('2026-11-30T22:35:53.123456Z ').text, '', 'an empty line');
  // Lines of the old format, some looking almost stamped, are kept whole and have no time.
  for (const old of ['plain text', '2026-11-30T22:35:53Z app stamp', '2026-11-30T22:35:53.123Z app stamp', '2026-13-45T22:35:53.123456Z not a date', '']) {
    const record = parseRecord(old);
    if (record.time !== null) assert.fail(`${old} read as stamped`);
    assert.deepEqual(record, { time: null, text: old, continues: false });
  }
});

test('pieces are joined at the time of the first; a line past 1 MiB is cut and says so', () => {
  const joiner = new LineJoiner('stdout');
  assert.equal(joiner.push(parseRecord('2026-11-30T22:35:53.000001Z+ab')), undefined);
  assert.equal(joiner.push(parseRecord('2026-11-30T22:35:54.000002Z+cd')), undefined);
  assert.deepEqual(joiner.push(parseRecord('2026-11-30T22:35:55.000003Z ef')), { stream: 'stdout', time: Date.parse('2026-11-30T22:35:53Z') + 0.001, text: 'abcdef' });
  assert.equal(joiner.pending(), undefined);

  const piece = 'x'.repeat(16 * 1024);
  for (let i = 0; i < MAX_JOINED_LINE / piece.length + 10; i++) assert.equal(joiner.push({ time: 1, text: piece, continues: true }), undefined);
  const cut = joiner.push({ time: 2, text: 'end', continues: false })!;
  assert.equal(cut.time, 1);
  assert.ok(cut.text.startsWith(piece) && cut.text.length < MAX_JOINED_LINE + 100, `${cut.text.length} characters`);
  assert.match(cut.text, /\[gantry: line cut at 1 MiB\]$/);
  // A line that has not ended shows as far as it got.
  joiner.push({ time: 3, text: 'half', continues: true });
  assert.deepEqual(joiner.pending(), { stream: 'stdout', time: 3, text: 'half' });
});

test('both streams merged by time; a line without one goes with the line before it; ties to the first stream', () => {
  const line = (stream: LogLine['stream'], time: number | null, text: string): LogLine => ({ stream, time, text });
  const out = [line('stdout', 1, 'o1'), line('stdout', null, 'o-old'), line('stdout', 5, 'o5')];
  const err = [line('stderr', null, 'e-old'), line('stderr', 3, 'e3'), line('stderr', 5, 'e5'), line('stderr', 9, 'e9')];
  assert.deepEqual(mergeStreams(out, err).map((l) => l.text), ['e-old', 'o1', 'o-old', 'e3', 'o5', 'e5', 'e9']);
  assert.deepEqual(mergeStreams(err, out).map((l) => l.text), ['e-old', 'o1', 'o-old', 'e3', 'e5', 'o5', 'e9']);
  // Old files only: one stream after the other, as before the times.
  assert.deepEqual(mergeStreams([line('stdout', null, 'a'), line('stdout', null, 'b')], [line('stderr', null, 'c')]).map((l) => l.text), ['a', 'b', 'c']);
});
