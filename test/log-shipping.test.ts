// Log shipping to real receivers run by the test: a syslog server over TCP (RFC 5424 frames with
// octet counting, parsed here), one over UDP, an HTTP endpoint taking JSON lines, and a TCP
// receiver that accepts and never reads, which must cost the instance nothing (lines dropped and
// counted instead).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { TestCluster, until } from './helpers/cluster.js';
import type { AppDetailResponse, EventListResponse } from '../src/model/api.js';

interface Syslog {
  pri: number;
  hostname: string;
  appName: string;
  procid: string;
  sd: string;
  msg: string;
}

const RFC5424 = /^<(\d{1,3})>1 \S+ (\S+) (\S+) (\S+) - (\[[^\]]*\]) (.*)$/s;
function parseSyslog(message: string): Syslog {
  const match = RFC5424.exec(message);
  assert.ok(match, `an RFC 5424 message: ${message}`);
  return { pri: Number(match[1]), hostname: match[2]!, appName: match[3]!, procid: match[4]!, sd: match[5]!, msg: match[6]! };
}

/** Octet-counted frames (RFC 6587 3.4.1): "<length> <message>". */
function tcpSyslogServer(received: Syslog[]): Promise<Server> {
  const server = createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) return;
        const length = Number(buffer.subarray(0, space).toString('latin1'));
        assert.ok(Number.isInteger(length) && length > 0, 'a frame starts with its length');
        if (buffer.length < space + 1 + length) return;
        received.push(parseSyslog(buffer.subarray(space + 1, space + 1 + length).toString('utf8')));
        buffer = buffer.subarray(space + 1 + length);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const port = (server: { address(): AddressInfo | string | null }) => (server.address() as AddressInfo).port;

describe('log shipping to syslog and HTTP receivers', () => {
  const cluster = new TestCluster();
  const node = `ship-${cluster.id}`;
  const app = `ship-${cluster.id}`;
  const flood = `flood-${cluster.id}`;
  const tcp: Syslog[] = [];
  const udp: Syslog[] = [];
  const http: Record<string, unknown>[] = [];
  const stuckSockets: Socket[] = [];
  let tcpServer: Server;
  let stuckServer: Server;
  let httpServer: HttpServer;
  const udpServer = createSocket('udp4');

  before(async () => {
    tcpServer = await tcpSyslogServer(tcp);
    // Accepts and never reads: its receive buffer and then the agent's send buffer fill.
    stuckServer = createServer((socket) => {
      socket.pause();
      stuckSockets.push(socket);
    });
    await new Promise<void>((resolve) => stuckServer.listen(0, '127.0.0.1', resolve));
    udpServer.on('message', (message) => udp.push(parseSyslog(message.toString('utf8'))));
    await new Promise<void>((resolve) => udpServer.bind(0, '127.0.0.1', resolve));
    httpServer = createHttpServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        assert.equal(request.headers['content-type'], 'application/x-ndjson');
        assert.equal(request.headers['x-source'], 'gantry-test');
        for (const line of body.split('\n').filter(Boolean)) http.push(JSON.parse(line) as Record<string, unknown>);
        response.end();
      });
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    // The cluster's default sinks, for apps whose spec has no logs:.
    const sinks = join(cluster.dir, 'log-sinks.yaml');
    writeFileSync(sinks, `ship:\n  - http: { url: "http://127.0.0.1:${port(httpServer)}/default", headers: { X-Source: gantry-test } }\n`);
    await cluster.startServer({ extra: ['--log-sinks', sinks] });
    await cluster.startAgent({ name: node, portRange: '32300-32349', dockerSocket: join(cluster.dir, 'no-docker.sock') });
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '30s']);
    await cluster.cli(['rm', flood, '--timeout', '30s']);
    await cluster.close();
    for (const socket of stuckSockets) socket.destroy();
    await Promise.all([tcpServer, stuckServer, httpServer].map((s) => new Promise((resolve) => s.close(resolve))));
    udpServer.close();
  });

  test('specs with bad addresses, URLs with credentials or credential headers are refused, naming the field', async () => {
    const entrypoints = { web: { command: ['sleep', '60'], resources: { cpu: 0.01, memory: '16Mi' } } };
    for (const [ship, field] of [
      [{ syslog: { address: 'no-port' } }, /logs\.ship\.0\.syslog\.address|address/],
      [{ http: { url: 'https://user:secret@logs.example/in' } }, /url/],
      [{ http: { url: 'https://logs.example/in', headers: { Authorization: 'Bearer x' } } }, /credential headers/],
      [{ http: { url: 'ftp://logs.example/in' } }, /url/],
    ] as const) {
      const response = await fetch(`${cluster.url}/v1/apps`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ app: 'bad-ship', logs: { ship: [ship] }, entrypoints }) });
      const text = await response.text();
      assert.equal(response.status, 400, text);
      assert.match(text, field);
    }
  });

  test("each receiver gets the instance's lines with node, app, instance, entry, env and team", async () => {
    const spec = {
      app,
      env: 'staging',
      logs: {
        ship: [
          { syslog: { address: `127.0.0.1:${port(tcpServer)}`, protocol: 'tcp', facility: 'local3' } },
          { syslog: { address: `127.0.0.1:${port(udpServer)}`, protocol: 'udp', appName: 'shop-frontend' } },
          { http: { url: `http://127.0.0.1:${port(httpServer)}/ingest`, headers: { 'X-Source': 'gantry-test' } } },
        ],
      },
      entrypoints: { web: { command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo "hello $i"; echo "oops $i" >&2; sleep 0.2; done'], resources: { cpu: 0.01, memory: '16Mi' } } },
    };
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: JSON.stringify(spec) });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const [instance] = ((await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse).instances;
    const id = instance!.id;
    await until('lines at every receiver', () => tcp.length >= 6 && udp.length >= 6 && http.length >= 6);

    const hello = tcp.find((m) => m.msg.startsWith('hello '))!;
    assert.equal(hello.pri, 19 * 8 + 6, 'local3.info');
    assert.equal(tcp.find((m) => m.msg.startsWith('oops '))!.pri, 19 * 8 + 3, 'local3.err for stderr');
    assert.equal(hello.hostname, node);
    assert.equal(hello.appName, app);
    assert.equal(hello.procid, id);
    assert.equal(hello.sd, '[gantry@32473 entry="web" env="staging" team="default"]');
    // In order over TCP.
    const numbers = tcp.filter((m) => m.msg.startsWith('hello ')).map((m) => Number(m.msg.split(' ')[1]));
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b));

    const datagram = udp.find((m) => m.msg.startsWith('hello '))!;
    assert.equal(datagram.pri, 1 * 8 + 6, 'user.info by default');
    assert.equal(datagram.appName, 'shop-frontend');
    assert.equal(datagram.procid, id);

    const json = http.find((l) => String(l.text).startsWith('hello '))!;
    assert.deepEqual(
      { node: json.node, app: json.app, env: json.env, team: json.team, entry: json.entry, instance: json.instance, stream: json.stream },
      { node, app, env: 'staging', team: 'default', entry: 'web', instance: id, stream: 'stdout' },
    );
    assert.ok(!Number.isNaN(Date.parse(String(json.time))));
  });

  test("an app without logs: ships to the cluster's default sinks", async () => {
    const plain = `plain-${cluster.id}`;
    const spec = { app: plain, entrypoints: { web: { command: ['sh', '-c', 'while :; do echo plain line; sleep 0.2; done'], resources: { cpu: 0.01, memory: '16Mi' } } } };
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: JSON.stringify(spec) });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    try {
      await until('lines of the app at the default sink', () => http.some((l) => l.app === plain && l.text === 'plain line'));
      assert.ok(!tcp.some((m) => m.appName === plain), "not at the other app's sinks");
    } finally {
      await cluster.cli(['rm', plain, '--timeout', '30s']);
    }
  });

  test('a sink that never reads costs the instance nothing: its lines are dropped and counted', async () => {
    const line = 'x'.repeat(200);
    const spec = {
      app: flood,
      logs: { ship: [{ syslog: { address: `127.0.0.1:${port(stuckServer)}` } }] },
      entrypoints: { web: { command: ['awk', `BEGIN { for (;;) { for (i = 0; i < 2000; i++) printf "line %d ${line}\\n", n++; fflush(); system("sleep 0.1") } }`], resources: { cpu: 0.2, memory: '32Mi' } } },
    };
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s'], { input: JSON.stringify(spec) });
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const dropped = await until('an instance.logs_dropped event', async () => {
      const { events } = (await cluster.api('GET', `/v1/events?app=${flood}&limit=1000`)) as EventListResponse;
      return events.find((e) => e.type === 'instance.logs_dropped');
    }, 60_000);
    assert.match(dropped.message, /lines of flood-.* not shipped to syslog tcp 127\.0\.0\.1:\d+: its queue was full/);
    // The instance keeps writing: its newest line number keeps growing after the drops.
    const newest = async () => {
      const { stdout } = await cluster.cli(['logs', flood, '--tail', '1']);
      return Number(/line (\d+)/.exec(stdout)?.[1] ?? -1);
    };
    const first = await newest();
    await until('the flooding instance to keep writing', async () => (await newest()) > first + 10_000);
    // And the agent keeps shipping the other app's lines.
    const before = tcp.length;
    await until('more lines at the reading receiver', () => tcp.length > before + 5);
  });
});
