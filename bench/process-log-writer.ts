// What the process runtime's log writer (src/runtime/process-log-writer.ts) costs per line. Prints
// one JSON line (progress goes to stderr). Run: npx tsx bench/process-log-writer.ts
//
// Two process instances write LINES lines of 60 bytes each and then sleep (so the writer is still
// there to be measured once their last line is in the file):
//   bulk     `yes | head`: the lines come in 64 KiB reads, many lines per read;
//   one-by-one  a shell loop of `echo`: a write per line, about a read per line for the writer.
// Figures per case: the writer's CPU (utime + stime from /proc/<pid>/stat, clock ticks) per line in
// µs, the wall time from start until the last line is in the file against the same command writing
// straight into a file (the runtime's old way), and the writer's memory (VmRSS, RssAnon) at the end.
//
// Environment: LINES (1,000,000 for bulk; a fifth for one-by-one).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessRuntime } from '../src/runtime/process.js';
import type { RunSpec } from '../src/runtime/runtime.js';

const LINES = Number(process.env.LINES ?? 1_000_000);
const TEXT = 'x'.repeat(59);
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const stateDir = mkdtempSync(join(tmpdir(), 'gantry-bench-logs-'));
const runtime = new ProcessRuntime({ stateDir, cgroupRoot: join(stateDir, 'no-cgroups'), logCheckMs: 3_600_000 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function memory(pid: number): { rssKiB: number; anonKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), anonKiB: kib('RssAnon') };
}

/** The command's output goes to stdout; `lines` of 60 bytes. */
function commandOf(kind: 'bulk' | 'one-by-one', lines: number): string {
  return kind === 'bulk'
    ? `yes ${TEXT} | head -n ${lines}`
    : `i=0; while [ $i -lt ${lines} ]; do echo ${TEXT}; i=$((i+1)); done`;
}

async function measure(kind: 'bulk' | 'one-by-one', lines: number) {
  const id = `bench-${kind}`;
  const spec: RunSpec = {
    instanceId: id, app: 'bench', appEnv: 'bench', entry: 'w', release: 1, command: ['sh', '-c', `${commandOf(kind, lines)}; sleep 30`],
    args: [], env: {}, cpu: 0, memoryBytes: 0, ports: [], labels: {},
  };
  const started = performance.now();
  await runtime.start(spec);
  const dir = join(stateDir, id);
  const writer = Number(readFileSync(join(dir, 'log-writer.pid'), 'utf8'));
  const expected = lines * (28 + TEXT.length + 1);
  while ((statSync(join(dir, 'stdout.log'), { throwIfNoEntry: false })?.size ?? 0) < expected) await sleep(5);
  const wallMs = performance.now() - started;
  const cpuUs = cpuTicks(writer) * TICK_US;
  const mem = memory(writer);
  await runtime.remove(id);

  const direct = join(stateDir, `direct-${kind}.log`);
  const t0 = performance.now();
  execFileSync('sh', ['-c', `${commandOf(kind, lines)} > ${direct}`]);
  const directMs = performance.now() - t0;
  return { lines, writerCpuUsPerLine: +(cpuUs / lines).toFixed(3), wallMs: Math.round(wallMs), directWallMs: Math.round(directMs), writerRssKiB: mem.rssKiB, writerAnonKiB: mem.anonKiB };
}

try {
  process.stderr.write(`bulk: ${LINES} lines\n`);
  const bulk = await measure('bulk', LINES);
  process.stderr.write(`one-by-one: ${Math.round(LINES / 5)} lines\n`);
  const oneByOne = await measure('one-by-one', Math.round(LINES / 5));
  console.log(JSON.stringify({ bench: 'process-log-writer', bulk, oneByOne }));
} finally {
  await runtime.close();
  rmSync(stateDir, { recursive: true, force: true });
}
