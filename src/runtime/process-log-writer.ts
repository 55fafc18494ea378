// The process runtime's log writer: one small process per instance run that reads the command's
// stdout and stderr from two pipes and appends each line to stdout.log / stderr.log with the time
// it arrived, in the format of process-log-records.ts.
//
// Why a process of its own: instances outlive the agent, so the agent cannot hold their pipes (its
// restart would break them), and a file the command writes straight into has no times. The writer
// is started by the runtime beside the wrapper, in its own session and outside the instance's
// cgroups: signals to the instance's process group do not reach it (it must drain what a stopping
// command still writes), the instance's memory limit cannot OOM-kill it, and it ends by itself at
// end of input (every holder of the pipes gone). Written in Perl because a host with `sh` almost
// always has it (Debian's perl-base is essential; the microsecond clock, Time::HiRes, comes with
// the `perl` package): about 1 MiB of its own memory per instance (6 MiB RSS with the shared
// libperl), where Node would take 40, and 0.15 µs of CPU per line in bulk, 0.7 µs written one by
// one (bench/process-log-writer.ts).
// Without Perl and Time::HiRes (or when the pipes cannot be made) the command writes to the files
// directly, as before, and its lines carry no times (a start warning says so).
//
// Pipes, not the sockets Node's spawn would make: a command may open /dev/stdout, which works for
// a pipe and not for a socket. They are FIFOs the runtime makes, opens at both ends (the read end
// first, non-blocking, so nothing waits for the other side) and unlinks at once.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writePrivateFileAtomicAsync } from '../host/private-files.js';
import type { StreamName } from './process-logs.js';

/** A line held this long without its newline is written as a piece (`+`), the rest follows. */
export const PIECE_WAIT_MS = 500;
/** A line longer than this is written in pieces of this size. */
export const PIECE_BYTES = 16 * 1024;

/**
 * The writer. Arguments: its pid file, stdout.log, stderr.log; the pipes are fds 3 and 4. The time
 * of each read stamps every line it completes (a line's time is when its first byte came).
 * At end of both inputs it removes its pid file, if that still names it (the wrapper waits for
 * that before it reports the command's exit, so the last lines are in the file by then).
 */
export const LOG_WRITER_SCRIPT = `use strict; use Time::HiRes (); use Fcntl;
$0 = 'gantry-log-writer';
$SIG{$_} = 'IGNORE' for qw(HUP INT QUIT TERM USR1 USR2 PIPE);
my ($pidfile, @logs) = @ARGV;
my $WAIT = ${PIECE_WAIT_MS / 1000}; my $PIECE = ${PIECE_BYTES};
my (@in, @out, @buf, @since, @open);
for my $i (0, 1) {
  open($in[$i], '<&=', 3 + $i) or die "fd " . (3 + $i) . ": $!";
  fcntl($in[$i], F_SETFL, fcntl($in[$i], F_GETFL, 0) & ~O_NONBLOCK);
  open($out[$i], '>>', $logs[$i]) or undef $out[$i];
  ($buf[$i], $since[$i], $open[$i]) = ('', 0, 1);
}
my ($sec, $head) = (-1, '');
sub stamp {
  my $t = shift; my $s = int($t);
  if ($s != $sec) { my @g = gmtime($s); $sec = $s; $head = sprintf('%04d-%02d-%02dT%02d:%02d:%02d', $g[5] + 1900, $g[4] + 1, @g[3, 2, 1, 0]); }
  return sprintf('%s.%06dZ', $head, int(($t - $s) * 1e6));
}
sub put { my ($i, $text) = @_; return unless $out[$i] && length $text; my $off = 0; while ($off < length $text) { my $n = syswrite($out[$i], $text, length($text) - $off, $off); last unless $n; $off += $n; } }
sub record {
  my ($t, $line, $ends) = @_; my $s = stamp($t); my $text = '';
  $text .= "$s+" . substr($line, 0, $PIECE, '') . "\n" while length($line) > $PIECE;
  return $text . $s . ($ends ? ' ' : '+') . $line . "\n";
}
sub lines {
  my ($i, $now, $eof) = @_;
  my ($text, $t) = ('', $since[$i]);
  my $end = rindex($buf[$i], "\n");
  if ($end >= 0) {
    my @done = split(/\n/, substr($buf[$i], 0, $end), -1);
    $text = record($t, shift(@done), 1);
    $t = $now;
    if (grep { length($_) > $PIECE } @done) { $text .= record($t, $_, 1) for @done; }
    elsif (@done) { my $s = stamp($t); $text .= "$s " . join("\n$s ", @done) . "\n"; } # one stamp for a read's lines
    $buf[$i] = substr($buf[$i], $end + 1);
  }
  $since[$i] = $t;
  $text .= stamp($t) . '+' . substr($buf[$i], 0, $PIECE, '') . "\n" while length($buf[$i]) >= $PIECE;
  if (length $buf[$i] && ($eof || $now - $t >= $WAIT)) { $text .= record($t, $buf[$i], $eof); $buf[$i] = ''; }
  put($i, $text);
}
while ($open[0] || $open[1]) {
  my ($rin, $timeout) = ('', undef);
  for my $i (0, 1) {
    vec($rin, fileno($in[$i]), 1) = 1 if $open[$i];
    next unless length $buf[$i];
    my $left = $since[$i] + $WAIT - Time::HiRes::time();
    $timeout = $left < 0 ? 0 : $left if !defined $timeout || $left < $timeout;
  }
  my $ready = select(my $rout = $rin, undef, undef, $timeout);
  next if $ready < 0 && $!{EINTR};
  for my $i (0, 1) {
    my $now = Time::HiRes::time();
    if ($open[$i] && $ready > 0 && vec($rout, fileno($in[$i]), 1)) {
      my $got = sysread($in[$i], my $chunk, 65536);
      $now = Time::HiRes::time();
      next if !defined $got && ($!{EINTR} || $!{EAGAIN});
      if (!$got) { $open[$i] = 0; lines($i, $now, 1); next; }
      $since[$i] = $now if $buf[$i] eq '';
      $buf[$i] .= $chunk;
    }
    lines($i, $now, 0);
  }
}
if (open(my $p, '<', $pidfile)) { my $pid = <$p>; close($p); unlink($pidfile) if defined $pid && $pid =~ /^$$\\b/; }
`;

const execFileAsync = promisify(execFile);

let support: { ok: boolean; why?: string } | undefined;

/** Whether this host can run the writer: perl with Time::HiRes (checked once). */
export function logWriterSupport(): { ok: boolean; why?: string } {
  if (!support) {
    const probe = spawnSync('perl', ['-MTime::HiRes', '-e', '1'], { stdio: 'ignore' });
    support = probe.status === 0 ? { ok: true } : { ok: false, why: `log lines carry no times: ${probe.error ? 'no perl on this host' : 'perl has no Time::HiRes (Debian: the perl package)'}` };
  }
  return support;
}

/** Where the writer of an instance keeps its pid while it runs. */
export function writerPidFile(dir: string): string {
  return join(dir, 'log-writer.pid');
}

/** A started writer: hand `stdout` / `stderr` to the wrapper, then `release()` the runtime's copies. */
export interface LogWriter {
  pid: number;
  stdout: number;
  stderr: number;
  release(): Promise<void>;
}

/**
 * Starts the writer of one run of the instance in `dir` (appending to `files`) and writes its pid
 * file. The write ends it returns stay open in this process until release(): the writer sees the
 * end of its input only once the command, and everything it started, has closed them too.
 */
export async function startLogWriter(dir: string, files: Record<StreamName, string>): Promise<LogWriter> {
  const fifos = { stdout: join(dir, 'stdout.pipe'), stderr: join(dir, 'stderr.pipe') };
  const handles: FileHandle[] = [];
  const release = async () => {
    for (const handle of handles.splice(0)) await handle.close().catch(() => undefined);
  };
  try {
    await Promise.all(Object.values(fifos).map((path) => rm(path, { force: true })));
    await execFileAsync('mkfifo', ['-m', '600', fifos.stdout, fifos.stderr]).catch((err: Error & { stderr?: string }) => {
      throw new Error(`cannot make the log pipes: ${err.stderr?.trim() || err.message}`);
    });
    const ends: Record<StreamName, { read: number; write: number }> = { stdout: { read: -1, write: -1 }, stderr: { read: -1, write: -1 } };
    for (const stream of ['stdout', 'stderr'] as const) {
      const read = await open(fifos[stream], fsc.O_RDONLY | fsc.O_NONBLOCK);
      handles.push(read);
      const write = await open(fifos[stream], fsc.O_WRONLY);
      handles.push(write);
      ends[stream] = { read: read.fd, write: write.fd };
    }
    await Promise.all(Object.values(fifos).map((path) => rm(path, { force: true })));
    const pidFile = writerPidFile(dir);
    const child = spawn('perl', ['-e', LOG_WRITER_SCRIPT, pidFile, files.stdout, files.stderr], {
      cwd: dir, detached: true, stdio: ['ignore', 'ignore', 'ignore', ends.stdout.read, ends.stderr.read], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) throw new Error('cannot start the log writer (perl)');
    await writePrivateFileAtomicAsync(pidFile, `${child.pid}\n`);
    // Only the write ends stay here, for the wrapper; the read ends are the writer's alone.
    for (const handle of handles.splice(0)) {
      if (handle.fd === ends.stdout.write || handle.fd === ends.stderr.write) handles.push(handle);
      else await handle.close();
    }
    return { pid: child.pid, stdout: ends.stdout.write, stderr: ends.stderr.write, release };
  } catch (err) {
    await release();
    await Promise.all(Object.values(fifos).map((path) => rm(path, { force: true })));
    throw err;
  }
}
