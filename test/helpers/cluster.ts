// Runs real Gantry processes for end-to-end tests: a server and agents as separate child
// processes (so each can be killed and restarted alone), and the CLI as a user would run it.
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { Agent } from 'undici';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
// scripts/test.sh builds dist/ first and sets GANTRY_TEST_BUILT=1: a process started from the
// build costs half the CPU of one compiling the sources through tsx, which matters when a test
// starts servers, agents and CLI calls on 2 shared cores. Run alone, a test uses the sources.
export const GANTRY = process.env.GANTRY_TEST_BUILT === '1' ? [join(ROOT, 'dist', 'cli', 'main.js')] : ['--import', 'tsx', MAIN];
const run = promisify(execFile);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  // What the servers and agents said lately is the best clue to why (CI keeps only this output).
  for (const cluster of liveClusters) await cluster.dump(`waiting for ${what}`);
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

const liveClusters = new Set<TestCluster>();

export interface AgentSpec {
  name: string;
  dockerSocket?: string;
  portRange: string;
  /** More flags for `gantry agent`. */
  extra?: string[];
  /** More environment for the agent process (e.g. GANTRY_BOOT_ID to play a reboot). */
  env?: Record<string, string>;
  /** The token it connects with (default: the admin token). */
  token?: string;
  /** Wait until its node is ready (default: true). */
  wait?: boolean;
}

export class TestCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'gantry-e2e-'));
  readonly token = `gty_test_${randomBytes(12).toString('hex')}`;
  readonly id = randomBytes(3).toString('hex');
  server?: ChildProcess;
  readonly agents = new Map<string, ChildProcess>();
  readonly output: string[] = [];
  port = 0;
  /** A PEM CA file: the server speaks HTTPS (started with --tls-cert), and this helper's own requests trust the CA. */
  ca?: string;
  private dispatcher?: Agent;

  constructor() {
    liveClusters.add(this);
  }

  get url(): string {
    return `${this.ca ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** fetch; with `ca`, undici's own fetch trusting it (the global fetch takes no CA). */
  private async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    if (!this.ca) return fetch(url, init);
    const undici = await import('undici');
    this.dispatcher ??= new undici.Agent({ connect: { ca: readFileSync(this.ca) } });
    return (await undici.fetch(url, { ...(init as Parameters<typeof undici.fetch>[1]), dispatcher: this.dispatcher })) as unknown as Response;
  }

  /** Options are remembered, so a restart keeps them. */
  private serverArgs: string[] = [];
  /** The server's --data-dir (default: under `dir`); `dataDir` sets it, e.g. to a small tmpfs the test mounted. */
  private serverDataDir = join(this.dir, 'server');

  async startServer(options?: { nodeTimeout?: number; registryTtl?: number; extra?: string[]; dataDir?: string }): Promise<void> {
    this.port ||= await freePort();
    if (options) this.serverArgs = ['--node-timeout', String(options.nodeTimeout ?? 30), '--registry-ttl', String(options.registryTtl ?? 15), ...(options.extra ?? [])];
    if (options?.dataDir) this.serverDataDir = options.dataDir;
    this.server = this.spawn('server', ['server', '--data-dir', this.serverDataDir, '--port', String(this.port), ...this.serverArgs]);
    await until('the server to answer', async () => (await this.fetch(`${this.url}/healthz`)).ok, 20_000);
  }

  async stopServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await stopChild(this.server, signal);
    this.server = undefined;
  }

  async startAgent(agent: AgentSpec): Promise<void> {
    const args = ['agent', '--server', this.url, '--token', agent.token ?? this.token, '--data-dir', join(this.dir, 'agents', agent.name), '--node-name', agent.name, '--port-range', agent.portRange];
    if (agent.dockerSocket) args.push('--docker-socket', agent.dockerSocket);
    args.push(...(agent.extra ?? []));
    this.agents.set(agent.name, this.spawn(`agent ${agent.name}`, args, agent.env));
    if (agent.wait === false) return;
    await until(`node ${agent.name} to be ready`, async () => {
      const { nodes } = (await this.api('GET', '/v1/nodes')) as { nodes: { name: string; state: string }[] };
      return nodes.some((n) => n.name === agent.name && n.state === 'ready');
    });
  }

  async stopAgent(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await stopChild(this.agents.get(name), signal);
    this.agents.delete(name);
  }

  /** Runs the CLI; never throws, returns the exit code and output. */
  async cli(args: string[], options: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [...GANTRY, ...args], { cwd: ROOT, env: { ...process.env, GANTRY_SERVER: this.url, GANTRY_TOKEN: this.token, GANTRY_CONFIG: join(this.dir, 'cli.json'), ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 128)));
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  async api(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** dump() when requests through it failed: when and how many, with what the cluster did. */
  async dumpIfFailed(failures: readonly { at: number }[]): Promise<void> {
    if (failures.length > 0) await this.dump(`${failures.length} failed requests, first at ${new Date(failures[0]!.at).toISOString()}`);
  }

  /** Prints its processes' latest output and events to stderr. */
  async dump(why: string): Promise<void> {
    const events = this.server
      ? await (this.api('GET', '/v1/events?limit=60') as Promise<{ events: { time: number; type: string; message: string }[] }>).then(
          (r) => r.events.map((e) => `${new Date(e.time).toISOString()} ${e.type} ${e.message}`),
          (err: Error) => [`(no events: ${err.message})`],
        )
      : ['(no server running)'];
    console.error(`--- test cluster ${this.id} (${why}): last output ---\n${this.output.slice(-60).join('\n')}\n--- its last events ---\n${events.join('\n')}`);
  }

  async close(): Promise<void> {
    for (const name of [...this.agents.keys()]) await this.stopAgent(name);
    await this.stopServer();
    endProcessesUnder(this.dir);
    liveClusters.delete(this);
    await this.dispatcher?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Starts `gantry <args>`, its output kept with the cluster's (e.g. `gantry up`, which no helper runs). */
  spawn(label: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    // GANTRY_CONFIG: the first start saves the admin token for the CLI; never into the user's own config.
    const child = spawn(process.execPath, [...GANTRY, ...args], { cwd: ROOT, env: { ...process.env, GANTRY_BOOTSTRAP_TOKEN: this.token, GANTRY_CONFIG: join(this.dir, 'cli.json'), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      this.output.push(...String(d).trimEnd().split('\n').map((l) => `[${label}] ${l}`));
      if (this.output.length > 400) this.output.splice(0, this.output.length - 400);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return child;
  }
}

/**
 * Process-runtime instances outlive their agent by design (and so do their log writers): a closed
 * test cluster ends those its agents left running, found by a working directory under its own.
 */
function endProcessesUnder(dir: string): void {
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function dockerContainers(app: string): Promise<{ id: string; name: string; startedAt: string; state: string }[]> {
  const { stdout } = await run('docker', ['ps', '-a', '--filter', `label=gantry.app=${app}`, '--format', '{{.ID}}']);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  // A container can be removed between the listing and the inspect; docker then exits 1 but still
  // prints the ones it found, which is the answer we want.
  const inspected = await run('docker', ['inspect', ...ids]).then(
    (r) => r.stdout,
    (error: { stdout?: string; stderr?: string }) => {
      if (error.stdout && /^(Error: No such object: \S+\s*)+$/.test(error.stderr ?? '')) return error.stdout;
      throw error;
    },
  );
  return (JSON.parse(inspected) as { Id: string; Name: string; State: { StartedAt: string; Status: string } }[]).map((c) => ({ id: c.Id, name: c.Name, startedAt: c.State.StartedAt, state: c.State.Status }));
}
