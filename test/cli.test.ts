// The client side of the CLI: stream parsers, config precedence, tables, convergence, and the
// HTTP client against a real local HTTP server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { LineSplitter, SseParser } from '../src/cli/stream.js';
import { ConfigError, DEFAULT_SERVER, loadClientConfig, saveClientConfig } from '../src/cli/config.js';
import { formatPorts, io, renderTable, timeAgo } from '../src/cli/output.js';
import { instancesTable, nodesTable } from '../src/cli/tables.js';
import { convergence, ProgressDisplay, progressLines, noticesOf } from '../src/cli/wait.js';
import { ApiRequestError, GantryClient, ServerUnreachableError } from '../src/cli/client.js';
import { CliError, describeCliError } from '../src/cli/errors.js';
import { registerClientCommands } from '../src/cli/commands.js';
import { MODULES } from '../src/cli/modules.js';
import { GANTRY } from './helpers/cluster.js';
import type { AppDetailResponse, InstanceView, NodeView } from '../src/model/api.js';
import type { GantryEvent, InstanceState } from '../src/model/types.js';

// ---- stream parsers ----

test('LineSplitter splits lines across chunk boundaries, CRLF included', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('hel'), []);
  assert.deepEqual(s.push('lo\nwor'), ['hello']);
  assert.deepEqual(s.push('ld\r'), []);
  assert.deepEqual(s.push('\n\nlast'), ['world', '']);
  assert.equal(s.flush(), 'last');
  assert.equal(s.flush(), undefined);
});

test('SseParser parses messages split at every possible byte', () => {
  const stream = ': keep-alive\r\nevent: gantry\r\nid: 7\r\ndata: {"a":\r\ndata: 1}\r\n\r\nid: 8\ndata: x\n\nevent: ping\rdata: p\r\rdata: no-end';
  for (let size = 1; size <= stream.length; size++) {
    const parser = new SseParser();
    const got = [];
    for (let i = 0; i < stream.length; i += size) got.push(...parser.push(stream.slice(i, i + size)));
    assert.deepEqual(got, [
      { event: 'gantry', id: '7', data: '{"a":\n1}' },
      { event: 'message', id: '8', data: 'x' },
      { event: 'ping', id: '8', data: 'p' },
    ], `chunk size ${size}`);
    assert.equal(parser.lastEventId, '8');
  }
});

test('SseParser: retry, fields without colon, id-only messages', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('retry: 1500\nid: 3\n\ndata\n\n'), [{ event: 'message', id: '3', data: '' }]);
  assert.equal(p.retry, 1500);
  assert.equal(p.lastEventId, '3');
});

// ---- config ----

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'gantry-cli-test-'));
}

test('config precedence: flags > env > file > default', () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'nested', 'config.json');
    const env = { GANTRY_CONFIG: file } as NodeJS.ProcessEnv;
    assert.deepEqual(loadClientConfig({}, env), { server: DEFAULT_SERVER });
    const path = saveClientConfig({ server: 'http://file:1', token: 'file-token' }, env);
    assert.equal(path, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { server: 'http://file:1', token: 'file-token' });
    assert.deepEqual(loadClientConfig({}, env), { server: 'http://file:1', token: 'file-token' });
    const withEnv = { ...env, GANTRY_SERVER: 'http://env:2/', GANTRY_TOKEN: 'env-token' };
    assert.deepEqual(loadClientConfig({}, withEnv), { server: 'http://env:2', token: 'env-token' });
    assert.deepEqual(loadClientConfig({ server: 'flag:3' }, withEnv), { server: 'http://flag:3', token: 'env-token' });
    assert.deepEqual(loadClientConfig({ token: 't' }, { ...env, GANTRY_SERVER: 'http://env:2' }), { server: 'http://env:2', token: 't' });
    writeFileSync(file, '{ nope');
    assert.throws(() => loadClientConfig({}, env), ConfigError);
    assert.throws(() => loadClientConfig({ server: 'ftp://x' }, { GANTRY_CONFIG: join(dir, 'none.json') }), /invalid server URL/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config file defaults to ~/.config/gantry/config.json', () => {
  const home = tempDir();
  try {
    saveClientConfig({ server: 'http://h:7070', token: 'x' }, { HOME: home });
    assert.equal(statSync(join(home, '.config', 'gantry', 'config.json')).mode & 0o777, 0o600);
    assert.deepEqual(loadClientConfig({}, { HOME: home }), { server: 'http://h:7070', token: 'x' });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

// ---- output ----

test('renderTable: upper-case header, aligned columns, no borders or trailing spaces', () => {
  const out = renderTable(['name', 'state', 'note'], [['web', 'running', ''], ['worker-long', 'x', 'two\nlines']]);
  assert.equal(out, ['NAME          STATE     NOTE', 'web           running', 'worker-long   x         two lines'].join('\n'));
});

const NOW = 1_700_000_000_000;

function instance(id: string, entry: string, state: InstanceState | null, extra: Partial<InstanceView> = {}): InstanceView {
  return {
    id, app: 'shop', env: 'default', entry, release: 1, node: 'n1', runtime: 'docker', desired: 'running', createdAt: NOW - 65_000,
    ports: [{ name: 'http', container: 80, host: 30001, protocol: 'tcp' }],
    status: state && { id, state, healthy: state === 'running' ? true : null, restarts: 0, exitCode: null, runtimeId: null, startedAt: NOW - 5_000, message: null, updatedAt: NOW },
    ...extra,
  };
}

test('ps table shows ports host→container, ages, and a MESSAGE column only when needed', () => {
  assert.equal(formatPorts([{ name: 'a', container: 80, host: 8080, protocol: 'tcp' }, { name: 'b', host: 9000, protocol: 'udp' }]), '8080→80,9000/udp');
  assert.equal(timeAgo(NOW - 500, NOW), '0s');
  assert.equal(timeAgo(NOW - 192_000, NOW), '3m12s');
  const plain = instancesTable([instance('a1', 'web', 'running')], NOW);
  assert.equal(plain.split('\n')[0], 'INSTANCE   APP    ENTRY   NODE   STATE     HEALTH    RESTARTS   PORTS      AGE');
  assert.match(plain.split('\n')[1]!, /^a1 +shop +web +n1 +running +healthy +0 +30001→80 +5s$/);
  const failed = instance('b2', 'web', 'failed');
  failed.status!.message = 'image not found';
  const table = instancesTable([failed, instance('c3', 'web', null, { node: '', unplacedReason: 'no node has 4 cpu free' })], NOW).split('\n');
  assert.match(table[0]!, /AGE +MESSAGE$/);
  assert.match(table[1]!, /failed .* image not found$/);
  assert.match(table[2]!, /^c3 +shop +web +- +unplaced +- .* no node has 4 cpu free$/);
});

test('nodes table shows allocated/total and runtime notes', () => {
  const node: NodeView = {
    name: 'n1', address: '10.0.0.5', labels: {}, cores: 8, memoryBytes: 16 * 1024 ** 3, runtimes: ['process'],
    runtimeNotes: ['docker: connect ENOENT /var/run/docker.sock'], portRange: [30000, 32767], agentVersion: '0.1.0',
    pool: 'default', reserved: { cores: 0, memoryBytes: 0 }, shareBase: 100,
    state: 'ready', registeredAt: NOW - 100_000, lastHeartbeat: NOW - 2_000,
    allocated: { cpu: 1.5, memoryBytes: 512 * 1024 ** 2, instances: 3 },
  };
  const lines = nodesTable([node], NOW).split('\n');
  assert.equal(lines[0], 'NAME   STATE   ADDRESS    CPU     MEMORY       INSTANCES   RUNTIMES   LAST SEEN');
  assert.equal(lines[1], 'n1     ready   10.0.0.5   1.5/8   512Mi/16Gi   3           process    2s ago');
  assert.match(lines.at(-1)!, /n1: docker: connect ENOENT/);
  // An IMAGES column only once some node reports its images; a node that does not shows "-".
  const withImages = nodesTable([{ ...node, images: { count: 12, bytes: 340 * 1024 ** 2 } }, { ...node, name: 'n2' }], NOW).split('\n');
  assert.match(withImages[0]!, /RUNTIMES +IMAGES +LAST SEEN$/);
  assert.match(withImages[1]!, /process +12 \(340 MiB\) +2s ago$/);
  assert.match(withImages[2]!, /^n2 .* process +- +2s ago$/);
  // A CHECKS column when the server sums up inspections (older servers do not).
  const checks = (text: string) => ({ text, pass: 0, warn: 0, fail: 0, error: 0 });
  const withChecks = nodesTable([{ ...node, checks: checks('2 fail') }, { ...node, name: 'n2', checks: checks('not inspected (agent too old)') }, { ...node, name: 'n3', checks: checks('not inspected yet') }], NOW).split('\n');
  assert.match(withChecks[0]!, /RUNTIMES +CHECKS +LAST SEEN$/);
  assert.match(withChecks[1]!, /process +2 fail +2s ago$/);
  assert.match(withChecks[2]!, /process +not inspected \(agent too old\) +2s ago$/);
  assert.match(withChecks[3]!, /process +- +2s ago$/);
});

// ---- convergence ----

function detail(entries: { name: string; desired: number; running: number; healthy: number }[], instances: InstanceView[], unplaced: AppDetailResponse['unplaced'] = []): AppDetailResponse {
  return {
    app: { name: 'shop', env: 'default', spec: {} as AppDetailResponse['app']['spec'], release: 2, stopped: false, createdAt: NOW, updatedAt: NOW, updatedBy: 'test' },
    summary: { name: 'shop', env: 'default', release: 2, stopped: false, updatedAt: NOW, entries: entries.map((e) => ({ ...e, runtime: 'docker' as const })) },
    instances,
    unplaced,
  };
}

test('convergence: running == healthy == desired and no extra instances', () => {
  const two = [instance('a', 'web', 'running'), instance('b', 'web', 'running')];
  assert.equal(convergence(detail([{ name: 'web', desired: 2, running: 2, healthy: 2 }], two)).converged, true);

  const starting = convergence(detail([{ name: 'web', desired: 2, running: 2, healthy: 1 }], two));
  assert.equal(starting.converged, false);
  assert.deepEqual(starting.pending, ['web: 1/2 healthy']);

  const old = instance('old', 'web', 'stopping', { release: 1, desired: 'removed' });
  const extra = convergence(detail([{ name: 'web', desired: 2, running: 2, healthy: 2 }], [...two, old]));
  assert.deepEqual(extra.pending, ['web: 1 extra instance']);
  assert.deepEqual(progressLines(extra), ['web  2/2 running  2/2 healthy  (1 old stopping)']);

  const gone = instance('old', 'web', 'exited', { desired: 'removed' });
  assert.equal(convergence(detail([{ name: 'web', desired: 2, running: 2, healthy: 2 }], [...two, gone])).converged, true);

  const orphan = convergence(detail([{ name: 'web', desired: 2, running: 2, healthy: 2 }], [...two, instance('w', 'worker', 'running')]));
  assert.deepEqual(orphan.pending, ['worker: 1 instance of a removed entry']);

  const lines = progressLines(convergence(detail([{ name: 'web', desired: 3, running: 3, healthy: 3 }, { name: 'worker', desired: 1, running: 0, healthy: 0 }], [])));
  assert.deepEqual(lines, ['web     3/3 running  3/3 healthy', 'worker  0/1 running  0/1 healthy']);
});

test('notices: unplaced reasons and failed/backoff instances, each shown once', () => {
  const failing = instance('f1', 'web', 'backoff');
  failing.status!.exitCode = 1;
  failing.status!.message = 'exited';
  const d = detail([{ name: 'web', desired: 2, running: 0, healthy: 0 }], [failing], [{ entry: 'web', count: 1, reason: 'no node with 4Gi free' }]);
  assert.deepEqual(noticesOf(d).map((n) => n.text), ['web: 1 instance cannot be placed: no node with 4Gi free', 'web/f1 backoff (exit code 1): exited']);
  const written: string[] = [];
  const display = new ProgressDisplay({ write: (t: string) => written.push(t), isTTY: false });
  display.update(['web  0/2'], noticesOf(d));
  display.update(['web  0/2'], noticesOf(d));
  display.update(['web  1/2'], noticesOf(d));
  assert.deepEqual(written, ['web: 1 instance cannot be placed: no node with 4Gi free\nweb/f1 backoff (exit code 1): exited\nweb  0/2\n', 'web  1/2\n']);
  const tty: string[] = [];
  const redraw = new ProgressDisplay({ write: (t: string) => tty.push(t), isTTY: true, columns: 80 });
  redraw.update(['a', 'b']);
  redraw.update(['a', 'c']);
  assert.deepEqual(tty, ['a\nb\n', '\x1b[2A\x1b[0Ja\nc\n']);
});

// ---- HTTP client against a real local server ----

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function serve(handler: Handler): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

test('client sends the token and the spec text; a non-2xx answer throws ApiRequestError', async () => {
  const seen: { method?: string; url?: string; auth?: string; type?: string; body: string }[] = [];
  const srv = await serve((req, res, body) => {
    seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body });
    if (req.url === '/v1/apps' && req.method === 'POST') {
      res.writeHead(400, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: 'invalid spec', problems: [{ path: 'entrypoints.web.replicas', message: 'too many' }] }));
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ instances: [] }));
  });
  try {
    const client = new GantryClient({ server: `${srv.url}/`, token: 's3cret' });
    assert.deepEqual(await client.listInstances({ app: 'shop', node: 'n 1' }), { instances: [] });
    const err = await client.apply('app: shop\n').catch((e: unknown) => e);
    assert.ok(err instanceof ApiRequestError);
    assert.equal(err.status, 400);
    assert.equal(err.message, 'invalid spec');
    assert.deepEqual(err.problems, [{ path: 'entrypoints.web.replicas', message: 'too many' }]);
    assert.deepEqual(describeCliError(err), { exitCode: 1, text: 'error: invalid spec\n  entrypoints.web.replicas: too many' });
    assert.deepEqual(seen[0], { method: 'GET', url: '/v1/instances?app=shop&node=n+1', auth: 'Bearer s3cret', type: undefined, body: '' });
    assert.deepEqual(seen[1], { method: 'POST', url: '/v1/apps', auth: 'Bearer s3cret', type: 'text/yaml', body: 'app: shop\n' });
  } finally {
    await srv.close();
  }
});

test('client: a refused connection says how to start the server (exit 4)', async () => {
  const srv = await serve(() => undefined);
  const url = srv.url;
  await srv.close();
  const err = await new GantryClient({ server: url }).listNodes().catch((e: unknown) => e);
  assert.ok(err instanceof ServerUnreachableError);
  assert.equal(err.message, `cannot reach the Gantry server at ${url}: ECONNREFUSED. Is it running? (gantry up)`);
  assert.equal(describeCliError(err).exitCode, 4);
});

test('client streams log lines split across chunks', async () => {
  const srv = await serve((req, res) => {
    assert.equal(req.url, '/v1/instances/i-1/logs?tail=5&follow=1');
    res.writeHead(200, { 'content-type': 'text/plain' });
    const parts = ['one\ntw', 'o\r', '\nthr', 'ee ü', 'ber\nend'];
    let i = 0;
    const next = () => (i < parts.length ? res.write(parts[i++], () => setTimeout(next, 5)) : res.end());
    next();
  });
  try {
    const lines: string[] = [];
    for await (const line of new GantryClient({ server: srv.url }).logs('i-1', { tail: 5, follow: true })) lines.push(line);
    assert.deepEqual(lines, ['one', 'two', 'three über', 'end']);
  } finally {
    await srv.close();
  }
});

test('followEvents parses SSE and reconnects from the last id when the connection drops', async () => {
  const requests: { url?: string; lastId?: string }[] = [];
  const ev = (seq: number): string => `event: gantry\nid: ${seq}\ndata: ${JSON.stringify({ time: NOW, level: 'info', type: 't', message: `m${seq}` })}\n\n`;
  const srv = await serve((req, res) => {
    requests.push({ url: req.url, lastId: req.headers['last-event-id'] as string | undefined });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (requests.length === 1) {
      const text = `: hello\n${ev(1)}${ev(2)}`;
      res.write(text.slice(0, 40));
      setTimeout(() => { res.write(text.slice(40)); setTimeout(() => res.destroy(), 20); }, 20);
    } else {
      res.write(ev(2) + ev(3)); // a server that resends the event it resumed from
    }
  });
  try {
    const got: GantryEvent[] = [];
    for await (const e of new GantryClient({ server: srv.url }).followEvents({ app: 'shop', retryDelayMs: 10 })) {
      got.push(e);
      if (got.length === 3) break;
    }
    assert.deepEqual(got.map((e) => [e.seq, e.message]), [[1, 'm1'], [2, 'm2'], [3, 'm3']]);
    assert.deepEqual(requests, [
      { url: '/v1/events?app=shop&follow=1', lastId: undefined },
      { url: '/v1/events?app=shop&follow=1&since=2', lastId: '2' },
    ]);
  } finally {
    await srv.close();
  }
});

// ---- commands ----

async function run(args: string[]): Promise<{ error?: unknown; stdout: string; stderr: string }> {
  const program = new Command('gantry').exitOverride();
  registerClientCommands(program);
  const out = { stdout: '', stderr: '' };
  const saved = { ...io };
  io.out = { write: (t: string) => (out.stdout += t) };
  io.err = { write: (t: string) => (out.stderr += t) };
  try {
    await program.parseAsync(['node', 'gantry', ...args]);
    return out;
  } catch (error) {
    return { ...out, error };
  } finally {
    Object.assign(io, saved);
  }
}

test('apply validates locally: every problem printed as file: path: message, exit 2, nothing sent', async () => {
  const dir = tempDir();
  let requests = 0;
  const srv = await serve((_req, res) => { requests++; res.end('{}'); });
  try {
    const file = join(dir, 'gantry.yaml');
    writeFileSync(file, 'app: Shop\nentrypoints:\n  web:\n    replicas: -1\n    bogus: 1\n');
    const { error, stderr } = await run(['apply', '-f', file, '--server', srv.url]);
    assert.ok(error instanceof CliError);
    assert.equal(describeCliError(error).exitCode, 2);
    assert.match(stderr, new RegExp(`^${file}: app: `, 'm'));
    assert.match(stderr, new RegExp(`^${file}: entrypoints.web.bogus: unknown field$`, 'm'));
    assert.match(stderr, new RegExp(`^${file}: entrypoints.web.replicas: `, 'm'));
    assert.equal(requests, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await srv.close();
  }
});

test('apply posts the spec and waits until the app converges, polling a server without the watch stream; timeout exits 3', async () => {
  const dir = tempDir();
  let polls = 0;
  let healthy = 0;
  const srv = await serve((req, res) => {
    if (req.url!.startsWith('/v1/watch')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: 'Route GET:/v1/watch not found' }));
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.method === 'POST') return res.end(JSON.stringify({ app: detail([], []).app, created: true, changed: true }));
    polls++;
    res.end(JSON.stringify(detail([{ name: 'web', desired: 2, running: 2, healthy }], [instance('a', 'web', 'running'), instance('b', 'web', 'running')])));
    healthy = Math.min(2, healthy + 1);
  });
  try {
    const file = join(dir, 'gantry.yaml');
    writeFileSync(file, 'app: shop\nentrypoints:\n  web:\n    image: nginx\n    replicas: 2\n');
    const ok = await run(['apply', '-f', file, '--server', srv.url]);
    assert.equal(ok.error, undefined);
    assert.equal(polls, 3);
    assert.equal(ok.stdout.split('\n')[0], 'app shop created (release 2)');
    assert.match(ok.stdout, /^web {2}2\/2 running {2}0\/2 healthy\nweb {2}2\/2 running {2}1\/2 healthy\nweb {2}2\/2 running {2}2\/2 healthy\napp shop converged in /m);

    healthy = -10; // never gets healthy
    const slow = await run(['apply', '-f', file, '--server', srv.url, '--timeout', '700ms']);
    assert.ok(slow.error instanceof CliError);
    assert.equal(slow.error.exitCode, 3);
    assert.match(slow.error.message, /^timed out after 700ms waiting for app shop to converge: web: .*healthy/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await srv.close();
  }
});

test('bad usage exits 2', async () => {
  const { error } = await run(['scale', 'shop', 'web', 'many']);
  assert.equal(describeCliError(error).exitCode, 2);
  const bad = await run(['ps', '-o', 'yaml']);
  assert.equal(describeCliError(bad.error).exitCode, 2);
});

// ---- the gantry command as a process: complete help, and what a command loads ----

const ROOT = join(import.meta.dirname, '..');

function gantry(args: string[], nodeFlags: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  // Node's flags go before the script (the last of GANTRY): after tsx's, when the tests run the sources.
  const child = spawn(process.execPath, [...GANTRY.slice(0, -1), ...nodeFlags, GANTRY.at(-1)!, ...args], {
    cwd: ROOT,
    env: { ...process.env, GANTRY_CONFIG: join(tmpdir(), 'gantry-cli-test-no-config.json'), GANTRY_SERVER: '', GANTRY_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr })));
}

test('gantry --help lists the commands of every module, though a command loads only its own; an unknown command gets the whole list', async () => {
  const all = new Command('gantry');
  for (const module of MODULES) await module.register(all);
  const expected = [...all.commands.map((c) => c.name()), 'help'].sort();

  const [help, up, tokenCreate, unknown] = await Promise.all([gantry(['--help']), gantry(['up', '--help']), gantry(['token', 'create', '--help']), gantry(['pss'])]);
  assert.equal(help.code, 0, help.stderr);
  const listed = help.stdout.slice(help.stdout.indexOf('\nCommands:\n')).split('\n').slice(2).map((line) => /^ {2}([\w-]+)/.exec(line)?.[1]).filter((name): name is string => name !== undefined);
  assert.deepEqual(listed.slice().sort(), expected, help.stdout);
  assert.equal(listed[0], 'up', 'the quick start comes first');

  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /--data-dir <dir>/);
  assert.match(up.stdout, /--node-name <name>/);
  assert.match(tokenCreate.stdout, /--role <role>/);

  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'pss'/);
  assert.match(unknown.stderr, /Did you mean ps\?/);
  assert.match(unknown.stderr, /^ {2}agent /m, 'the help after the error lists every command');
});

test('gantry ps loads the CLI only: not the server, the agent, the spec schemas or the table library', async () => {
  const dir = tempDir();
  const srv = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ instances: [], unplaced: [] }));
  });
  try {
    // A module hook that writes down every module the process resolves.
    const loaded = join(dir, 'loaded.txt');
    writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';\nlet file;\nexport function initialize(data) { file = data.file; }\nexport async function resolve(specifier, context, next) {\n  const result = await next(specifier, context);\n  appendFileSync(file, result.url + '\\n');\n  return result;\n}\n`);
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url, { data: { file: ${JSON.stringify(loaded)} } });\n`);
    const ps = await gantry(['ps', '--server', srv.url], ['--import', join(dir, 'register.mjs')]);
    assert.equal(ps.code, 0, ps.stderr);
    assert.equal(ps.stderr, 'no instances\n');
    const urls = readFileSync(loaded, 'utf8').trim().split('\n');
    assert.ok(urls.some((url) => /\/cli\/client-actions\.[jt]s$/.test(url)), `the hook saw the modules:\n${urls.join('\n')}`);
    const heavy = urls.filter((url) => /\/(src|dist)\/(server|agent|runtime|store|discovery|sim|host)\/|\/model\/spec\.|\/cli\/(daemon|wait|app-changes)\.|node_modules\/(fastify|dockerode|zod|yaml|better-sqlite3|cli-table3|undici|pino|ws|redis)\//.test(url));
    assert.deepEqual(heavy, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await srv.close();
  }
});
