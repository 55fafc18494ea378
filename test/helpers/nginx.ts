// A private nginx for the upstream renderer's tests: its own prefix in a temp directory (main
// config, pid, error log, temp paths), `daemon off` so it is our child, stopped by its pid.
// Also tiny HTTP backends (child processes, so they can be SIGKILLed like a crashed instance)
// and a request loop that counts what fails while instances come and go.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { freePort, until as untilAnything } from './cluster.js';
import { join } from 'node:path';

const inCI = process.env.CI === 'true';
export const NGINX = process.env.GANTRY_TEST_NGINX ?? 'nginx';

let nginxProbe: Promise<string | undefined> | undefined;

/** undefined when `nginx -v` runs, else the reason it does not. */
export function nginxMissing(): Promise<string | undefined> {
  nginxProbe ??= new Promise((resolve) => {
    execFile(NGINX, ['-v'], (err) => resolve(err ? `no nginx (${NGINX} -v: ${err.message})` : undefined));
  });
  return nginxProbe;
}

/** For `test(name, { skip: await skipWithoutNginx() }, ...)`: skips locally, never in CI. */
export async function skipWithoutNginx(): Promise<string | false> {
  const missing = await nginxMissing();
  if (!missing) return false;
  if (inCI) throw new Error(`CI requires nginx: ${missing}`);
  return missing;
}

export { freePort };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** cluster.ts's until, polling faster by default: nginx and renderer changes take milliseconds. */
export function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  return untilAnything(what, probe, timeoutMs, everyMs);
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * nginx in a temp prefix. Its `http {}` includes `include` (the renderer's output), which
 * start() seeds with a comment when missing: with no server block nginx listens nowhere until
 * the first render (with a `listen`) is reloaded in.
 */
export class TestNginx {
  readonly dir = mkdtempSync(join(tmpdir(), 'gantry-nginx-'));
  readonly conf = join(this.dir, 'nginx.conf');
  readonly include = join(this.dir, 'conf.d', 'upstreams.conf');
  readonly errorLog = join(this.dir, 'error.log');
  readonly pidFile = join(this.dir, 'nginx.pid');
  private child: ChildProcess | undefined;
  private stderr = '';

  constructor() {
    // As root the workers run as nobody: they must be able to reach the temp paths.
    chmodSync(this.dir, 0o755);
    const tmp = (name: string) => join(this.dir, 'tmp', name);
    writeFileSync(
      this.conf,
      [
        'daemon off;',
        'worker_processes 2;',
        `pid ${this.pidFile};`,
        `error_log ${this.errorLog} notice;`,
        'events { worker_connections 1024; }',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${tmp('body')};`,
        `  proxy_temp_path ${tmp('proxy')};`,
        `  fastcgi_temp_path ${tmp('fastcgi')};`,
        `  uwsgi_temp_path ${tmp('uwsgi')};`,
        `  scgi_temp_path ${tmp('scgi')};`,
        `  include ${this.include};`,
        '}',
        '',
      ].join('\n'),
    );
    for (const sub of ['conf.d', 'tmp']) {
      mkdirSync(join(this.dir, sub));
      chmodSync(join(this.dir, sub), 0o755);
    }
  }

  /** argv options that keep every nginx invocation inside the prefix (-e: the startup error log). */
  private get flags(): string[] {
    return ['-p', this.dir, '-c', this.conf, '-e', this.errorLog];
  }

  get checkCommand(): string[] {
    return [NGINX, '-t', '-q', ...this.flags];
  }

  get reloadCommand(): string[] {
    return [NGINX, ...this.flags, '-s', 'reload'];
  }

  async start(): Promise<void> {
    if (!existsSync(this.include)) writeFileSync(this.include, '# nothing rendered yet\n');
    const child = spawn(NGINX, this.flags, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child = child;
    await until(`nginx to write ${this.pidFile}`, () => {
      if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${this.stderr}${this.log()}`);
      return existsSync(this.pidFile) && readFileSync(this.pidFile, 'utf8').trim() === String(child.pid);
    });
  }

  /** How many reloads (SIGHUP) the master has taken in so far. */
  reloads(): number {
    return (this.log().match(/reconfiguring/g) ?? []).length;
  }

  log(): string {
    return existsSync(this.errorLog) ? readFileSync(this.errorLog, 'utf8') : '';
  }

  /** Stops the nginx this helper started (by its pid), then removes the prefix. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await waitForExit(child, 5000);
    }
    this.child = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const BACKEND = `
const http = require('node:http');
const [id, port] = process.argv.slice(1);
const server = http.createServer((req, res) => { res.setHeader('x-backend', id); res.end(id); });
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeIdleConnections(); });
`;

/** A tiny HTTP server in its own process that answers every request with its id. */
export class Backend {
  private constructor(
    readonly id: string,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  static async start(id: string): Promise<Backend> {
    const port = await freePort();
    const child = spawn(process.execPath, ['-e', BACKEND, id, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`backend ${id} exited (${code}) before listening`)));
      child.stdout!.once('data', () => resolve());
    });
    return new Backend(id, port, child);
  }

  /** Graceful: stops accepting, finishes in-flight requests, exits. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await waitForExit(this.child, 5000);
  }

  /** Abrupt, like a crashed instance: the kernel resets its connections. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await waitForExit(this.child, 5000);
  }
}

export interface Reply {
  status: number;
  body: string;
}

/** One GET on a fresh connection (no keep-alive, so no client-side idle-connection races). */
export function get(port: number, host: string, path = '/', timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface LoadStats {
  ok: number;
  failures: { at: number; what: string }[];
  byBackend: Map<string, number>;
}

/** `concurrency` loops of back-to-back GETs through nginx until stop(); anything but a 200 fails. */
export function loadLoop(port: number, host: string, concurrency = 4): { stats: LoadStats; stop(): Promise<LoadStats> } {
  const stats: LoadStats = { ok: 0, failures: [], byBackend: new Map() };
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const reply = await get(port, host);
        if (reply.status === 200) {
          stats.ok++;
          stats.byBackend.set(reply.body, (stats.byBackend.get(reply.body) ?? 0) + 1);
        } else stats.failures.push({ at: Date.now(), what: `HTTP ${reply.status}` });
      } catch (err) {
        stats.failures.push({ at: Date.now(), what: (err as Error).message });
      }
    }
  });
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}
