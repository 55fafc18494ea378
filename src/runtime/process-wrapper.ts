// Helpers of the process runtime: the sh wrapper every instance runs under, signals, exec and
// the PATH lookup. The size-capped log files (capping, tail, follow) are in process-logs.ts.
import { spawn, spawnSync } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { constants as osc } from 'node:os';
import { delimiter, resolve } from 'node:path';
import type { ExecResult } from './runtime.js';

/** The signals the wrapper passes on to the command. */
export const FORWARDED_SIGNALS = ['TERM', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2'] as const;

/**
 * The session leader of every instance: `sh -c WRAPPER gantry-wrapper <instance dir> <command...>`,
 * started with fd 3 a pipe from the runtime.
 *
 * 1. Gate: it blocks reading fd 3 until the runtime has moved it into the instance's cgroups and
 *    written the record, then gets "go" (EOF without "go": the agent died meanwhile, nothing runs).
 *    So the command starts inside the cgroups, race-free, and its children inherit them.
 * 2. It runs the command as its child, "$@" passed through untouched (never a shell string), and
 *    traps TERM INT HUP QUIT USR1 USR2 to forward them. Traps with a handler (never `trap ''`) are
 *    reset to the default on exec; but sh makes a background job ignore INT and QUIT, so the runtime
 *    prefixes the command with `env --default-signal --` (GNU coreutils >= 8.31) to undo that.
 *    The runtime signals the whole process group, which the command is in: it first drops a
 *    `sent.<SIG>` marker so the wrapper does not deliver that signal to the command a second time.
 * 3. It waits for the command and writes its status, 128+signal when killed, to <dir>/exit atomically
 *    (tmp + mv) before exiting with it: the exit code stays observable by an agent that is not the
 *    wrapper's parent. A trapped signal makes `wait` return 128+signal early: if the command still
 *    runs it waits again; if sh reaped it meanwhile (e.g. while running `rm` in the trap), a second
 *    `wait` returns its real status (127 when the first one already was the real one).
 * 4. With a log writer (process-log-writer.ts) its stdout and stderr are the writer's pipes: it closes
 *    its own ends and waits, at most a second (the command may have left a process holding them),
 *    for the writer to remove its pid file, so the command's last lines are in the files by the time
 *    the exit is.
 */
export const WRAPPER = `dir=$1; shift
IFS= read -r go <&3 || go=
exec 3<&-
[ "$go" = go ] || exit 125
child= pending=
fwd() {
  trapped=1
  if [ -e "$dir/sent.$1" ]; then
    rm -f "$dir/sent.$1"
    [ -n "$child" ] && return 0
  fi
  if [ -n "$child" ]; then kill "-$1" "$child" 2>/dev/null; else pending="$pending $1"; fi
  return 0
}
for sig in ${FORWARDED_SIGNALS.join(' ')}; do trap "fwd $sig" "$sig"; done
( exec "$@" ) &
child=$!
for sig in $pending; do kill "-$sig" "$child" 2>/dev/null; done
while :; do
  trapped=
  wait "$child"; status=$?
  { [ -n "$trapped" ] && [ "$status" -gt 128 ]; } || break
  kill -0 "$child" 2>/dev/null && continue
  wait "$child"; again=$?
  [ "$again" -ne 127 ] && status=$again
  break
done
exec >/dev/null 2>&1
n=0
while [ -e "$dir/log-writer.pid" ] && [ "$n" -lt 100 ]; do sleep 0.01 || break; n=$((n+1)); done
printf '%s\\n' "$status" > "$dir/exit.tmp" && mv -f "$dir/exit.tmp" "$dir/exit"
exit "$status"
`;

let defaultSignalSupport: boolean | undefined;

/**
 * What goes before the command in the wrapper's "$@": `env --default-signal --` when env supports it
 * (else nothing, and `warning` says INT/QUIT stay ignored). A program path containing "=" would be
 * taken by env for an assignment, so that one goes through `sh -c 'exec "$@"'`.
 */
export function commandPrefix(program: string): { prefix: string[]; warning?: string } {
  defaultSignalSupport ??= spawnSync('env', ['--default-signal', '--', 'true'], { stdio: 'ignore' }).status === 0;
  if (!defaultSignalSupport) {
    return { prefix: [], warning: 'env has no --default-signal (coreutils < 8.31): SIGINT and SIGQUIT are ignored by the command' };
  }
  const prefix = ['env', '--default-signal', '--'];
  return { prefix: program.includes('=') ? [...prefix, '/bin/sh', '-c', 'exec "$@"', 'sh'] : prefix };
}

// ---- Signals and exec ------------------------------------------------------------------------

const EXEC_OUTPUT_CAP = 64 * 1024;

/** "TERM", "SIGTERM", "sigterm" or "15" → "SIGTERM". */
export function signalName(signal: string): NodeJS.Signals {
  const signals = osc.signals as Record<string, number>;
  const upper = signal.trim().toUpperCase();
  const name = /^\d+$/.test(upper)
    ? Object.keys(signals).find((key) => signals[key] === Number(upper))
    : upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (!name || signals[name] === undefined) throw new Error(`unknown signal ${JSON.stringify(signal)}`);
  return name as NodeJS.Signals;
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** How runCaptured keeps output: exec keeps the first 64 KiB, an init step its last 4 KiB. */
export interface CaptureOptions {
  /** Bytes kept; default 64 KiB. */
  cap?: number;
  /** Which end is kept past the cap; default 'head'. */
  keep?: 'head' | 'tail';
  /** What ran, for the timeout note; default "exec". */
  what?: string;
  /** Once the program exits, SIGKILL what is left of its process group (its background children). */
  killGroupOnExit?: boolean;
}

/** How long the output pipes may stay open after the program exited (held by an escaped child). */
const PIPE_GRACE_MS = 500;

/**
 * Runs program with args in cwd/env in its own process group, stdout and stderr as they come,
 * capped (see CaptureOptions); on timeout the whole group is killed and it resolves with 124.
 */
export function runCaptured(
  program: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
  timeoutMs: number,
  options: CaptureOptions = {},
): Promise<ExecResult> {
  const cap = options.cap ?? EXEC_OUTPUT_CAP;
  const keep = options.keep ?? 'head';
  const what = options.what ?? 'exec';
  const capText = cap % 1024 === 0 ? `${cap / 1024} KiB` : `${cap} bytes`;
  return new Promise((done) => {
    const child = spawn(program, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    let timedOut = false;
    const collect = (chunk: Buffer) => {
      if (keep === 'head') {
        const room = cap - size;
        if (chunk.length > room) truncated = true;
        if (room > 0) {
          const part = chunk.subarray(0, room);
          chunks.push(part);
          size += part.length;
        }
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
      if (size > 2 * cap) {
        const all = Buffer.concat(chunks);
        chunks = [all.subarray(all.length - cap)];
        size = cap;
        truncated = true;
      }
    };
    const text = (): string => {
      let buf = Buffer.concat(chunks);
      if (keep === 'tail' && buf.length > cap) {
        buf = buf.subarray(buf.length - cap);
        truncated = true;
      }
      if (keep === 'tail' && truncated) {
        let start = 0;
        while (start < buf.length && ((buf[start] ?? 0) & 0xc0) === 0x80) start++; // no half character first
        return `[gantry: output cut to its last ${capText}]\n${buf.subarray(start).toString('utf8')}`;
      }
      const out = buf.toString('utf8');
      return truncated ? `${out}\n[gantry: output truncated at ${capText}]` : out;
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    // A child that left the process group (setsid) may hold the pipes open: do not wait for it
    // once the program is done with (timed out, or exited with killGroupOnExit).
    const closePipesSoon = () =>
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, PIPE_GRACE_MS).unref();
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      closePipesSoon();
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126;
      done({ exitCode: code, output: `${what}: cannot run ${JSON.stringify(program)}: ${err.message}` });
    });
    child.on('exit', () => {
      if (!options.killGroupOnExit || child.pid === undefined) return;
      if (!timedOut) clearTimeout(timer); // it finished in time, whatever its leftovers do
      killGroup(child.pid, 'SIGKILL');
      closePipesSoon();
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let output = text();
      if (timedOut) output += `${output === '' || output.endsWith('\n') ? '' : '\n'}[gantry: ${what} timed out after ${timeoutMs} ms]`;
      const exitCode = timedOut ? 124 : (code ?? 128 + (signal ? (osc.signals[signal] ?? 0) : 0));
      done({ exitCode, output });
    });
  });
}

// ---- PATH lookup ------------------------------------------------------------------------------

/** The absolute path `program` runs as with this PATH and cwd; a readable Error when there is none. */
export async function resolveExecutable(program: string, pathVar: string, cwd: string): Promise<string> {
  const candidates = program.includes('/')
    ? [resolve(cwd, program)]
    : pathVar.split(delimiter).map((dir) => resolve(cwd, dir || '.', program));
  let notExecutable: string | undefined;
  for (const candidate of candidates) {
    try {
      if (!(await stat(candidate)).isFile()) continue;
    } catch {
      continue;
    }
    try {
      await access(candidate, fsc.X_OK);
      return candidate;
    } catch {
      notExecutable ??= candidate;
    }
  }
  if (notExecutable) throw new Error(`cannot start "${program}": ${notExecutable} is not executable`);
  if (program.includes('/')) throw new Error(`cannot start "${program}": no such file (${candidates[0]})`);
  throw new Error(`cannot start "${program}": command not found in PATH (${pathVar})`);
}
