// Retention of the process runtime's log files (process-logs.ts capLogFile), on real files:
// rotation by size into N files, removal by age, and the age rotation of a live file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capLogFile } from '../src/runtime/process-logs.js';
import { logRetentionOf } from '../src/cli/log-retention.js';

const lines = (from: number, count: number) => Array.from({ length: count }, (_, i) => `line ${from + i}`).join('\n') + '\n';

test('past the size, files rotate to .1 … .N-1 and no more are kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-retention-'));
  try {
    const log = join(dir, 'stdout.log');
    const retention = { maxFiles: 3 };
    for (let round = 0; round < 4; round++) {
      writeFileSync(log, lines(round * 1000, 1000));
      assert.equal(await capLogFile(log, 4096, retention), true);
      assert.equal(statSync(log).size, 0);
    }
    assert.ok(existsSync(`${log}.1`) && existsSync(`${log}.2`));
    assert.ok(!existsSync(`${log}.3`), 'only maxFiles files in all');
    // The newest copy holds the end of the last round, cut at a line start.
    const newest = readFileSync(`${log}.1`, 'utf8');
    assert.ok(newest.length <= 4096);
    assert.match(newest, /^line \d+\n/);
    assert.match(newest, /line 3999\n$/);
    assert.match(readFileSync(`${log}.2`, 'utf8'), /line 2999\n$/);
    // Fewer files allowed: the extra copy goes at the next check.
    appendFileSync(log, 'small\n');
    assert.equal(await capLogFile(log, 4096, { maxFiles: 2 }), false);
    assert.ok(!existsSync(`${log}.2`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('copies older than the max age are removed, and a live file that old is rotated', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-retention-'));
  try {
    const log = join(dir, 'stderr.log');
    const day = 86_400_000;
    const retention = { maxFiles: 3, maxAgeMs: day };
    writeFileSync(`${log}.2`, 'from last week\n');
    writeFileSync(`${log}.1`, 'from two days ago\n');
    writeFileSync(log, 'written since\n');
    const now = Date.now();
    utimesSync(`${log}.2`, (now - 7 * day) / 1000, (now - 7 * day) / 1000);
    utimesSync(`${log}.1`, (now - 2 * day) / 1000, (now - 2 * day) / 1000);
    // The live file has filled since .1 was made, two days ago: its lines may be that old.
    assert.equal(await capLogFile(log, 10 * 1024 * 1024, retention, now), true);
    assert.ok(!existsSync(`${log}.2`) && !existsSync(`${log}.3`), 'both old copies removed');
    assert.equal(readFileSync(`${log}.1`, 'utf8'), 'written since\n');
    assert.equal(statSync(log).size, 0);
    // Just rotated: nothing more to do until a day has passed.
    appendFileSync(log, 'new\n');
    assert.equal(await capLogFile(log, 10 * 1024 * 1024, retention, now + 1000), false);
    assert.equal(await capLogFile(log, 10 * 1024 * 1024, retention, Date.now() + day + 1000), true);
    assert.equal(readFileSync(`${log}.1`, 'utf8'), 'new\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent flags are checked, naming the flag', () => {
  assert.deepEqual(logRetentionOf({ logMaxSize: '10Mi', logMaxFiles: '5', logMaxAge: '7d' }), { maxBytes: 10 * 1024 * 1024, maxFiles: 5, maxAgeMs: 7 * 86_400_000 });
  assert.throws(() => logRetentionOf({ logMaxSize: '1k', logMaxFiles: '5' }), /--log-max-size 1k/);
  assert.throws(() => logRetentionOf({ logMaxSize: '10Mi', logMaxFiles: '0' }), /--log-max-files 0/);
  assert.throws(() => logRetentionOf({ logMaxSize: '10Mi', logMaxFiles: '2', logMaxAge: 'soon' }), /--log-max-age soon/);
});
