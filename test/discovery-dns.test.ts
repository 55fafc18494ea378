import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import dnsPacket, { type DecodedPacket, type Packet, type Question } from 'dns-packet';
import { DnsResponder, DnsServer, RCODE, TcpFramer } from '../src/discovery/dns.js';
import { StaticEndpointSource } from '../src/discovery/source.js';
import type { Endpoint } from '../src/model/registry.js';

const endpoint = (over: Partial<Endpoint> & Pick<Endpoint, 'id' | 'address'>): Endpoint => ({
  app: 'shop',
  env: 'prod',
  entry: 'web',
  ports: { http: 8080, metrics: 9100 },
  labels: {},
  registeredAt: 0,
  source: 'agent',
  ...over,
});

function fixture(): StaticEndpointSource {
  const source = new StaticEndpointSource();
  source.set(endpoint({ id: 'web-1', address: '10.0.0.1', node: 'n1' }));
  source.set(endpoint({ id: 'web-2', address: '10.0.0.2', node: 'n2' }));
  source.set(endpoint({ id: 'web-3', address: '10.0.0.2', node: 'n2', ports: { http: 8081, metrics: 9101 } }));
  source.set(endpoint({ id: 'api-1', entry: 'api', address: 'fd00::1', ports: { grpc: 50051 } }));
  source.set(endpoint({ id: 'ext', app: 'billing', entry: 'db', address: 'db.example.com', ports: { pg: 5432 }, source: 'api' }));
  return source;
}

let nextId = 1;
function query(name: string, type: Question['type'] = 'A', extra: Partial<Packet> = {}): Buffer {
  return dnsPacket.encode({ type: 'query', id: nextId++ & 0xffff, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }], ...extra });
}
const withEdns = (size: number): Partial<Packet> => ({ additionals: [{ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] });
const rcode = (p: DecodedPacket) => (p.flags ?? 0) & 0x0f;
const idOf = (b: Buffer) => b.readUInt16BE(0);

function udpExchange(port: number, msg: Buffer, timeoutMs = 500): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, timeoutMs);
    socket.on('error', (error) => {
      clearTimeout(timer);
      socket.close();
      reject(error);
    });
    socket.on('message', (reply) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    });
    socket.send(msg, port, '127.0.0.1');
  });
}

async function udp(port: number, msg: Buffer): Promise<DecodedPacket> {
  const reply = await udpExchange(port, msg);
  assert.ok(reply, 'no UDP answer');
  assert.equal(idOf(reply), idOf(msg));
  return dnsPacket.decode(reply);
}

/** A TCP connection that collects length-framed responses. */
class TcpClient {
  readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private readonly messages: Buffer[] = [];
  private waiter: (() => void) | undefined;
  closed = false;

  constructor(port: number, localAddress?: string) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress });
    this.socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 2 && this.buf.length >= 2 + this.buf.readUInt16BE(0)) {
        this.messages.push(this.buf.subarray(2, 2 + this.buf.readUInt16BE(0)));
        this.buf = this.buf.subarray(2 + this.buf.readUInt16BE(0));
      }
      this.waiter?.();
    });
    this.socket.on('error', () => {}); // a reset from the server shows as 'close'
    this.socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => this.socket.once('connect', resolve).once('error', reject));
  }

  static frame(msg: Buffer): Buffer {
    const out = Buffer.alloc(2 + msg.length);
    out.writeUInt16BE(msg.length, 0);
    msg.copy(out, 2);
    return out;
  }

  async next(timeoutMs = 1000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('no TCP answer');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.messages.shift()!;
  }

  close(): void {
    this.socket.destroy();
  }
}

async function tcp(port: number, msg: Buffer): Promise<DecodedPacket> {
  const client = new TcpClient(port);
  try {
    await client.connected();
    client.socket.write(TcpClient.frame(msg));
    const reply = await client.next();
    assert.equal(idOf(reply), idOf(msg));
    return dnsPacket.decode(reply);
  } finally {
    client.close();
  }
}

async function withServer(fn: (port: number, source: StaticEndpointSource, server: DnsServer) => Promise<void>, options: ConstructorParameters<typeof DnsServer>[1] = {}, source = fixture()) {
  const server = new DnsServer(source, { port: 0, ...options });
  const { port } = await server.start();
  try {
    await fn(port, source, server);
  } finally {
    await server.stop();
  }
}

const addresses = (p: DecodedPacket, type = 'A') => (p.answers ?? []).filter((a) => a.type === type).map((a) => (a as { data: string }).data).sort();

test('A: one record per distinct address, authoritative, no recursion, default TTL 5', async () => {
  await withServer(async (port) => {
    for (const send of [udp, tcp]) {
      const res = await send(port, query('web.shop.prod.gantry.local'));
      assert.equal(rcode(res), RCODE.NOERROR);
      assert.equal(res.flag_qr, true);
      assert.equal(res.flag_aa, true);
      assert.equal(res.flag_ra, false);
      assert.equal(res.flag_rd, true);
      assert.equal(res.flag_tc, false);
      assert.deepEqual(addresses(res), ['10.0.0.1', '10.0.0.2']);
      for (const a of res.answers ?? []) {
        assert.equal(a.name, 'web.shop.prod.gantry.local');
        assert.equal((a as { ttl: number }).ttl, 5);
      }
      assert.deepEqual(res.questions, [{ name: 'web.shop.prod.gantry.local', type: 'A', class: 'IN' }]);
    }
  });
});

test('TTL option applies to records and to negative answers (SOA minimum)', async () => {
  await withServer(
    async (port) => {
      const res = await udp(port, query('web.shop.prod.gantry.local'));
      assert.ok(res.answers!.every((a) => (a as { ttl: number }).ttl === 7));
      const nx = await udp(port, query('nope.shop.prod.gantry.local'));
      const soa = nx.authorities![0] as dnsPacket.SoaAnswer;
      assert.equal(soa.ttl, 7);
      assert.equal(soa.data.minimum, 7);
    },
    { ttl: 7 },
  );
});

test('names are case-insensitive and answered in the case of the question', async () => {
  await withServer(async (port) => {
    const res = await udp(port, query('WeB.ShOp.PROD.Gantry.LOCAL'));
    assert.equal(rcode(res), RCODE.NOERROR);
    assert.deepEqual(addresses(res), ['10.0.0.1', '10.0.0.2']);
    assert.equal(res.questions![0]!.name, 'WeB.ShOp.PROD.Gantry.LOCAL');
    assert.ok(res.answers!.every((a) => a.name === 'WeB.ShOp.PROD.Gantry.LOCAL'));
    // The cached answer does not keep the previous question's case.
    const lower = await udp(port, query('web.shop.prod.gantry.local'));
    assert.ok(lower.answers!.every((a) => a.name === 'web.shop.prod.gantry.local'));
  });
});

test('SRV per port name with the targets\' addresses in the additional section', async () => {
  await withServer(async (port) => {
    const res = await udp(port, query('_http._tcp.web.shop.prod.gantry.local', 'SRV'));
    assert.equal(rcode(res), RCODE.NOERROR);
    assert.equal(res.flag_aa, true);
    const srv = (res.answers ?? []) as dnsPacket.SrvAnswer[];
    assert.deepEqual(
      srv.map((a) => [a.name, a.data.priority, a.data.weight, a.data.port, a.data.target]).sort(),
      [
        ['_http._tcp.web.shop.prod.gantry.local', 0, 10, 8080, 'web-1.web.shop.prod.gantry.local'],
        ['_http._tcp.web.shop.prod.gantry.local', 0, 10, 8080, 'web-2.web.shop.prod.gantry.local'],
        ['_http._tcp.web.shop.prod.gantry.local', 0, 10, 8081, 'web-3.web.shop.prod.gantry.local'],
      ],
    );
    const extra = (res.additionals ?? []).map((a) => [a.name, a.type, (a as { data: string }).data]).sort();
    assert.deepEqual(extra, [
      ['web-1.web.shop.prod.gantry.local', 'A', '10.0.0.1'],
      ['web-2.web.shop.prod.gantry.local', 'A', '10.0.0.2'],
      ['web-3.web.shop.prod.gantry.local', 'A', '10.0.0.2'],
    ]);
    // Every target resolves on its own.
    for (const a of srv) assert.deepEqual(addresses(await udp(port, query(a.data.target))), [a.data.target.startsWith('web-1') ? '10.0.0.1' : '10.0.0.2']);

    // Plain SRV on the entry name: every port of every endpoint.
    const all = await udp(port, query('web.shop.prod.gantry.local', 'SRV'));
    assert.deepEqual(((all.answers ?? []) as dnsPacket.SrvAnswer[]).map((a) => a.data.port).sort(), [8080, 8080, 8081, 9100, 9100, 9101]);
    assert.equal(all.additionals!.length, 3);

    // IPv6 endpoint: AAAA, additional AAAA; host name address: SRV target is the host name itself.
    const grpc = await udp(port, query('_grpc._tcp.api.shop.prod.gantry.local', 'SRV'));
    assert.equal((grpc.answers![0] as dnsPacket.SrvAnswer).data.target, 'api-1.api.shop.prod.gantry.local');
    assert.deepEqual(grpc.additionals!.map((a) => [a.type, (a as { data: string }).data]), [['AAAA', 'fd00::1']]);
    assert.deepEqual(addresses(await udp(port, query('api.shop.prod.gantry.local', 'AAAA')), 'AAAA'), ['fd00::1']);
    const pg = await udp(port, query('_pg._tcp.db.billing.prod.gantry.local', 'SRV'));
    assert.deepEqual(((pg.answers ?? []) as dnsPacket.SrvAnswer[]).map((a) => [a.data.target, a.data.port]), [['db.example.com', 5432]]);
    assert.equal((pg.additionals ?? []).length, 0);
  });
});

test('NXDOMAIN for unknown names, NODATA for names without that type, REFUSED outside the domain', async () => {
  await withServer(async (port) => {
    for (const name of ['nope.shop.prod.gantry.local', 'x.web-1.web.shop.prod.gantry.local', 'staging.gantry.local', '_smtp._tcp.web.shop.prod.gantry.local']) {
      const res = await udp(port, query(name));
      assert.equal(rcode(res), RCODE.NXDOMAIN, name);
      assert.equal(res.flag_aa, true);
      assert.equal(res.answers!.length, 0);
      assert.equal(res.authorities!.length, 1);
      const soa = res.authorities![0] as dnsPacket.SoaAnswer;
      assert.equal(soa.type, 'SOA');
      assert.equal(soa.name, 'gantry.local');
    }
    // Existing names (and empty non-terminals) without records of the asked type.
    for (const [name, type] of [
      ['web.shop.prod.gantry.local', 'AAAA'],
      ['web.shop.prod.gantry.local', 'TXT'],
      ['shop.prod.gantry.local', 'A'],
      ['prod.gantry.local', 'SRV'],
      ['_tcp.web.shop.prod.gantry.local', 'SRV'],
      ['gantry.local', 'A'],
      ['db.billing.prod.gantry.local', 'A'],
    ] as const) {
      const res = await udp(port, query(name, type));
      assert.equal(rcode(res), RCODE.NOERROR, `${name} ${type}`);
      assert.equal(res.flag_aa, true);
      assert.equal(res.answers!.length, 0);
      assert.equal(res.authorities![0]!.type, 'SOA');
      assert.equal(res.questions![0]!.type, type);
    }
    const apex = await udp(port, query('gantry.local', 'SOA'));
    assert.equal(apex.answers![0]!.type, 'SOA');

    for (const name of ['example.com', 'gantry.localx', 'xgantry.local', 'local']) {
      const res = await udp(port, query(name));
      assert.equal(rcode(res), RCODE.REFUSED, name);
      assert.equal(res.flag_ra, false);
      assert.equal(res.flag_aa, false);
      assert.equal(res.answers!.length, 0);
    }
  });
});

test('a custom domain', async () => {
  await withServer(
    async (port) => {
      assert.deepEqual(addresses(await udp(port, query('web.shop.prod.svc.example'))), ['10.0.0.1', '10.0.0.2']);
      assert.equal(rcode(await udp(port, query('web.shop.prod.gantry.local'))), RCODE.REFUSED);
    },
    { domain: 'svc.example.' },
  );
});

test('a change in the source shows in the next answer', async () => {
  await withServer(async (port, source) => {
    assert.deepEqual(addresses(await udp(port, query('web.shop.prod.gantry.local'))), ['10.0.0.1', '10.0.0.2']);
    source.set(endpoint({ id: 'web-4', address: '10.0.0.4' }));
    assert.deepEqual(addresses(await udp(port, query('web.shop.prod.gantry.local'))), ['10.0.0.1', '10.0.0.2', '10.0.0.4']);
    assert.equal((await udp(port, query('_http._tcp.web.shop.prod.gantry.local', 'SRV'))).answers!.length, 4);
    for (const id of ['web-1', 'web-2', 'web-3', 'web-4']) source.delete({ app: 'shop', env: 'prod', entry: 'web', id });
    assert.equal(rcode(await udp(port, query('web.shop.prod.gantry.local'))), RCODE.NXDOMAIN);
    // A change without a query in between is picked up too (rebuilt in the background).
    source.set(endpoint({ id: 'web-5', address: '10.0.0.5' }));
    await sleep(10);
    assert.deepEqual(addresses(await tcp(port, query('web.shop.prod.gantry.local'))), ['10.0.0.5']);
    // The SOA serial follows the source revision.
    const soa = (await udp(port, query('gantry.local', 'SOA'))).answers![0] as dnsPacket.SoaAnswer;
    assert.equal(soa.data.serial, source.revision);
  });
});

test('EDNS: an OPT in the query gets an OPT in the answer; other versions get BADVERS', async () => {
  await withServer(async (port) => {
    const res = await udp(port, query('web.shop.prod.gantry.local', 'A', withEdns(4096)));
    const opt = res.additionals!.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer;
    assert.ok(opt);
    assert.equal(opt.udpPayloadSize, 1232);
    assert.equal(addresses(res).length, 2);
    const noEdns = await udp(port, query('web.shop.prod.gantry.local'));
    assert.equal((noEdns.additionals ?? []).length, 0);
    const nx = await udp(port, query('nope.gantry.local', 'A', withEdns(1232)));
    assert.equal(rcode(nx), RCODE.NXDOMAIN);
    assert.ok(nx.additionals!.some((a) => a.type === 'OPT'));

    const v1 = query('web.shop.prod.gantry.local', 'A', withEdns(1232));
    v1[v1.length - 5] = 1; // EDNS version (name 1, type 2, class 2, ext-rcode 1, version 1, flags 2, rdlength 2)
    const bad = await udp(port, v1);
    const badOpt = bad.additionals!.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer;
    assert.equal(badOpt.extendedRcode, 1); // BADVERS = 16 = (1 << 4) | 0
    assert.equal(rcode(bad), 0);
    assert.equal(bad.answers!.length, 0);
  });
});

function bigSource(n: number): StaticEndpointSource {
  const source = new StaticEndpointSource();
  for (let i = 0; i < n; i++) source.set(endpoint({ id: `big-${i}`, entry: 'big', address: `10.1.${i >> 8}.${i & 255}` }));
  return source;
}

test('a large answer: TC over UDP (with or without EDNS, as the size demands), whole over TCP', async () => {
  await withServer(
    async (port) => {
      const name = 'big.shop.prod.gantry.local';
      const plain = await udp(port, query(name));
      assert.equal(plain.flag_tc, true);
      assert.equal(plain.answers!.length, 0);
      assert.equal(plain.questions![0]!.name, name);

      // 60 A records (~1 KB) fit in an EDNS answer of 1232 bytes.
      const edns = await udpExchange(port, query(name, 'A', withEdns(4096)));
      assert.ok(edns && edns.length <= 1232);
      const decoded = dnsPacket.decode(edns);
      assert.equal(decoded.flag_tc, false);
      assert.equal(addresses(decoded).length, 60);

      // A small EDNS size is raised to 512, still too small.
      assert.equal((await udp(port, query(name, 'A', withEdns(100)))).flag_tc, true);

      // SRV: 60 × 2 ports is too much for UDP at all; TCP has everything.
      const srvUdp = await udp(port, query(name, 'SRV', withEdns(1232)));
      assert.equal(srvUdp.flag_tc, true);
      assert.ok(srvUdp.additionals!.some((a) => a.type === 'OPT'));
      const srvTcp = await tcp(port, query(name, 'SRV'));
      assert.equal(srvTcp.flag_tc, false);
      assert.equal(srvTcp.answers!.length, 120);
      assert.equal(srvTcp.additionals!.length, 60);
      const aTcp = await tcp(port, query(name));
      assert.equal(addresses(aTcp).length, 60);
    },
    {},
    bigSource(60),
  );
});

test('when only the additional section does not fit it is left out, without TC', () => {
  const responder = new DnsResponder(bigSource(7));
  const reply = responder.answer(query('_http._tcp.big.shop.prod.gantry.local', 'SRV'))!;
  assert.ok(reply.length <= 512);
  const res = dnsPacket.decode(reply);
  assert.equal(res.flag_tc, false);
  assert.equal(res.answers!.length, 7);
  assert.equal((res.additionals ?? []).length, 0);
  const full = dnsPacket.decode(responder.answer(query('_http._tcp.big.shop.prod.gantry.local', 'SRV', withEdns(1232)))!);
  assert.equal(full.additionals!.filter((a) => a.type === 'A').length, 7);
  responder.close();
});

test('answers are compressed: 25 A records fit in 512 bytes', () => {
  const responder = new DnsResponder(bigSource(25));
  const reply = responder.answer(query('big.shop.prod.gantry.local'))!;
  assert.ok(reply.length <= 512, String(reply.length));
  assert.equal(dnsPacket.decode(reply).answers!.length, 25);
  responder.close();
});

test('TCP: two queries in one write, a query split across writes, several queries per connection, idle timeout', async () => {
  await withServer(
    async (port) => {
      const client = new TcpClient(port);
      await client.connected();
      const q1 = query('web.shop.prod.gantry.local');
      const q2 = query('_http._tcp.web.shop.prod.gantry.local', 'SRV');
      client.socket.write(Buffer.concat([TcpClient.frame(q1), TcpClient.frame(q2)]));
      const r1 = await client.next();
      const r2 = await client.next();
      assert.equal(idOf(r1), idOf(q1));
      assert.equal(idOf(r2), idOf(q2));
      assert.equal(dnsPacket.decode(r2).answers!.length, 3);

      // Split: the length prefix itself in two, then the rest in pieces.
      const q3 = TcpClient.frame(query('api.shop.prod.gantry.local', 'AAAA'));
      for (const piece of [q3.subarray(0, 1), q3.subarray(1, 5), q3.subarray(5, 20), q3.subarray(20)]) {
        client.socket.write(piece);
        await sleep(20);
      }
      const r3 = dnsPacket.decode(await client.next());
      assert.deepEqual(addresses(r3, 'AAAA'), ['fd00::1']);

      // A malformed message on a connection gets FORMERR and the connection keeps working.
      const bad = Buffer.from(query('web.shop.prod.gantry.local'));
      bad.writeUInt16BE(2, 4);
      client.socket.write(TcpClient.frame(bad));
      assert.equal(rcode(dnsPacket.decode(await client.next())), RCODE.FORMERR);
      client.socket.write(TcpClient.frame(q1));
      assert.equal(addresses(dnsPacket.decode(await client.next())).length, 2);

      // Idle: closed by the server.
      await sleep(400);
      assert.equal(client.closed, true);
      client.close();
    },
    { tcpIdleTimeoutMs: 250 },
  );
});

/** Hand-made query: header + raw question bytes. */
function raw(id: number, counts: [number, number, number, number], body: number[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  counts.forEach((c, i) => header.writeUInt16BE(c, 4 + 2 * i));
  return Buffer.concat([header, Buffer.from(body)]);
}
const label = (s: string) => [s.length, ...Buffer.from(s)];
const A_IN = [0, 1, 0, 1];

test('malformed packets: FORMERR with the same id when the header is readable, else dropped; the server keeps answering', async () => {
  await withServer(async (port) => {
    const formerr = async (msg: Buffer, what: string) => {
      const reply = await udpExchange(port, msg);
      assert.ok(reply, `${what}: no answer`);
      assert.equal(idOf(reply), idOf(msg), what);
      const res = dnsPacket.decode(reply);
      assert.equal(res.flag_qr, true, what);
      assert.equal(rcode(res), RCODE.FORMERR, what);
    };
    const name = [...label('web'), ...label('shop'), ...label('prod'), ...label('gantry'), ...label('local'), 0];

    // Too short for an id: dropped.
    assert.equal(await udpExchange(port, Buffer.from([1, 2, 3, 4, 5]), 200), undefined);
    assert.equal(await udpExchange(port, Buffer.alloc(0), 200), undefined);
    // A response (QR set) is never answered.
    const response = query('web.shop.prod.gantry.local');
    response[2]! |= 0x80;
    assert.equal(await udpExchange(port, response, 200), undefined);

    await formerr(raw(0x1111, [1, 0, 0, 0], []), 'header only');
    await formerr(raw(0x1112, [1, 0, 0, 0], name.slice(0, 9)), 'truncated name');
    await formerr(raw(0x1113, [1, 0, 0, 0], [...name, 0, 1]), 'truncated type/class');
    await formerr(raw(0x1114, [1, 0, 0, 0], [...label('web'), 60, 1, 2, 3, 0, ...A_IN]), 'label longer than the packet');
    await formerr(raw(0x1115, [1, 0, 0, 0], [0x45, ...Buffer.alloc(0x45, 97), 0, ...A_IN]), 'label length over 63');
    await formerr(raw(0x1116, [1, 0, 0, 0], [0xc0, 12, ...A_IN]), 'compression pointer to itself in the question');
    await formerr(raw(0x1117, [1, 0, 0, 0], [...label('a'), 0xc0, 12, ...A_IN]), 'compression loop');
    await formerr(raw(0x1118, [1, 0, 0, 0], [...Array.from({ length: 5 }, () => [...label('x'.repeat(60))]).flat(), 0, ...A_IN]), 'name over 255 bytes');
    await formerr(raw(0x1119, [2, 0, 0, 0], [...name, ...A_IN, ...name, ...A_IN]), 'two questions');
    await formerr(raw(0x111a, [0, 0, 0, 0], []), 'no question');
    await formerr(raw(0x111b, [1, 1, 0, 0], [...name, ...A_IN]), 'answer count in a query');
    await formerr(raw(0x111c, [1, 0, 0, 1], [...name, ...A_IN, 0, 0, 41, 2, 0]), 'truncated OPT');
    await formerr(raw(0x111d, [1, 0, 0, 2], [...name, ...A_IN, ...[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0], ...[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]]), 'two OPTs');
    await formerr(raw(0x111e, [1, 0, 0, 1], [...name, ...A_IN, 0xc0, 0x1e, 0, 41, 4, 0, 0, 0, 0, 0, 0, 9, 1]), 'OPT rdata past the end');
    await formerr(raw(0x111f, [1, 0, 0, 0], [...label('web'), 0x80, ...A_IN]), 'reserved label type');

    // Opcode other than QUERY: NOTIMP with the same id.
    const status = query('web.shop.prod.gantry.local');
    status[2] = (status[2]! & 0x87) | (2 << 3);
    const notimp = await udpExchange(port, status);
    assert.ok(notimp);
    assert.equal(idOf(notimp), idOf(status));
    assert.equal(rcode(dnsPacket.decode(notimp)), RCODE.NOTIMP);

    // A well-formed query with a non-OPT additional record (TSIG-like, pointer owner) is answered.
    const withTsig = raw(0x1120, [1, 0, 0, 1], [...name, ...A_IN, 0xc0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 2, 1, 2]);
    assert.equal(addresses(dnsPacket.decode((await udpExchange(port, withTsig))!)).length, 2);
    // Class CH: refused.
    assert.equal(rcode(dnsPacket.decode((await udpExchange(port, raw(0x1121, [1, 0, 0, 0], [...name, 0, 1, 0, 3])))!)), RCODE.REFUSED);

    // Random bytes: a FORMERR (or drop, or whatever rcode), never a crash.
    for (let i = 0; i < 200; i++) {
      const junk = randomBytes(1 + Math.floor(Math.random() * 100));
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => socket.send(junk, port, '127.0.0.1', () => resolve()));
      socket.close();
    }
    // Still answering, over both transports.
    assert.deepEqual(addresses(await udp(port, query('web.shop.prod.gantry.local'))), ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(addresses(await tcp(port, query('web.shop.prod.gantry.local'))), ['10.0.0.1', '10.0.0.2']);
  });
});

test('fuzz: mutated and random messages never throw, and every reply decodes', () => {
  const responder = new DnsResponder(bigSource(40));
  const seeds = [
    query('big.shop.prod.gantry.local'),
    query('_http._tcp.big.shop.prod.gantry.local', 'SRV', withEdns(1232)),
    query('nope.gantry.local', 'A', withEdns(4096)),
    query('example.com', 'AAAA'),
  ];
  let replies = 0;
  for (let i = 0; i < 20_000; i++) {
    let msg: Buffer;
    if (i % 4 === 0) msg = randomBytes(Math.floor(Math.random() * 80));
    else {
      msg = Buffer.from(seeds[i % seeds.length]!);
      const flips = 1 + Math.floor(Math.random() * 4);
      for (let f = 0; f < flips; f++) msg[Math.floor(Math.random() * msg.length)] = Math.floor(Math.random() * 256);
      if (Math.random() < 0.2) msg = msg.subarray(0, Math.floor(Math.random() * msg.length));
    }
    const reply = responder.answer(msg);
    if (reply === undefined) continue;
    replies++;
    assert.equal(idOf(reply), idOf(msg));
    assert.ok(reply.length <= 1232);
    assert.doesNotThrow(() => dnsPacket.decode(reply), `reply to ${msg.toString('hex')}`);
  }
  assert.ok(replies > 1000);
  responder.close();
});

test('workers: extra processes answer on the same UDP socket and follow source changes', async () => {
  await withServer(
    async (port, source) => {
      // Enough queries that both processes answer some; every answer is right.
      for (let i = 0; i < 50; i++) assert.deepEqual(addresses(await udp(port, query('web.shop.prod.gantry.local'))), ['10.0.0.1', '10.0.0.2']);
      source.set(endpoint({ id: 'web-9', address: '10.0.0.9' }));
      // The workers get the change over IPC: soon every process answers with it.
      const deadline = Date.now() + 5000;
      let streak = 0;
      while (streak < 20) {
        assert.ok(Date.now() < deadline, 'workers did not follow the change');
        const got = addresses(await udp(port, query('web.shop.prod.gantry.local')));
        streak = got.includes('10.0.0.9') ? streak + 1 : 0;
      }
      assert.deepEqual(addresses(await tcp(port, query('web.shop.prod.gantry.local'))), ['10.0.0.1', '10.0.0.2', '10.0.0.9']);
    },
    { workers: 1 },
  );
});

// TCP connection management (RFC 7766 §6.2): idle connections must not lock legitimate
// clients out. The options below lift the timeouts out of the way where a test is about caps.
const noTimeouts = { tcpIdleTimeoutMs: 60_000, tcpFirstQueryTimeoutMs: 60_000 };

/** Opens `n` TCP connections from `localAddress` one after the other and sends nothing. */
async function idleConnections(port: number, n: number, localAddress = '127.0.0.1'): Promise<TcpClient[]> {
  const clients: TcpClient[] = [];
  for (let i = 0; i < n; i++) {
    const client = new TcpClient(port, localAddress);
    clients.push(client);
    await client.connected();
  }
  return clients;
}

/** Waits (up to `timeoutMs`) until `condition` holds; false if it never did. */
async function eventually(condition: () => boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** One query over a fresh TCP connection from `localAddress`: answered within `timeoutMs`. */
async function tcpFrom(port: number, localAddress: string, timeoutMs = 2000): Promise<DecodedPacket> {
  const client = new TcpClient(port, localAddress);
  try {
    await client.connected();
    const msg = query('web.shop.prod.gantry.local');
    client.socket.write(TcpClient.frame(msg));
    const reply = await client.next(timeoutMs);
    assert.equal(idOf(reply), idOf(msg));
    return dnsPacket.decode(reply);
  } finally {
    client.close();
  }
}

const openCount = (clients: TcpClient[]) => clients.filter((c) => !c.closed).length;

test('TCP: at the connection cap a newcomer evicts the longest-idle connection instead of being refused', async () => {
  await withServer(
    async (port) => {
      // The cap's worth of idle connections from several addresses (under the per-client cap).
      const idle: TcpClient[] = [];
      for (let i = 0; i < 5; i++) idle.push(...(await idleConnections(port, 10, `127.0.1.${i + 1}`)));
      // One of the oldest makes a query: it is no longer the longest idle.
      const active = idle[0]!;
      const q = query('web.shop.prod.gantry.local');
      active.socket.write(TcpClient.frame(q));
      assert.equal(idOf(await active.next()), idOf(q));

      // A legitimate client still gets its answer, promptly.
      const started = Date.now();
      assert.deepEqual(addresses(await tcpFrom(port, '127.0.0.1')), ['10.0.0.1', '10.0.0.2']);
      assert.ok(Date.now() - started < 2000);
      // The one evicted is the longest idle: the second opened, not the one that asked.
      assert.ok(await eventually(() => idle[1]!.closed), 'the longest-idle connection was not evicted');
      assert.equal(active.closed, false);
      assert.equal(openCount(idle), 49);

      // Again and again (an attacker re-opening connections): every newcomer is answered.
      for (let i = 0; i < 5; i++) {
        const more = await idleConnections(port, 20, '127.0.2.1');
        assert.deepEqual(addresses(await tcpFrom(port, '127.0.0.1')), ['10.0.0.1', '10.0.0.2']);
        for (const c of more) c.close();
      }
      for (const c of idle) c.close();
    },
    { maxTcpConnections: 50, ...noTimeouts },
  );
});

test('TCP: 1,000 idle connections (the default cap) do not lock out a legitimate client', async () => {
  await withServer(
    async (port) => {
      // 20 addresses × 50 connections: the default cap, under the default per-client cap.
      const idle: TcpClient[] = [];
      for (let i = 0; i < 20; i++) idle.push(...(await idleConnections(port, 50, `127.0.3.${i + 1}`)));
      const started = Date.now();
      assert.deepEqual(addresses(await tcpFrom(port, '127.0.0.1')), ['10.0.0.1', '10.0.0.2']);
      assert.ok(Date.now() - started < 2000);
      assert.ok(await eventually(() => idle[0]!.closed), 'the longest-idle connection was not evicted');
      assert.equal(openCount(idle), 999);
      for (const c of idle) c.close();
    },
    noTimeouts,
  );
});

test('TCP: one client address cannot hold more than its per-client cap; it evicts its own longest idle', async () => {
  await withServer(
    async (port) => {
      const greedy = await idleConnections(port, 30, '127.0.4.1');
      // Only the last 10 stay open: each newcomer past the cap evicted this client's oldest.
      assert.ok(await eventually(() => openCount(greedy) === 10), `${openCount(greedy)} connections open`);
      assert.ok(greedy.slice(20).every((c) => !c.closed));
      // Other clients are not affected, and the greedy client still gets answers.
      const other = await idleConnections(port, 5, '127.0.4.2');
      assert.deepEqual(addresses(await tcpFrom(port, '127.0.4.3')), ['10.0.0.1', '10.0.0.2']);
      assert.deepEqual(addresses(await tcpFrom(port, '127.0.4.1')), ['10.0.0.1', '10.0.0.2']);
      assert.equal(openCount(other), 5);
      assert.ok(await eventually(() => openCount(greedy) === 9));
      for (const c of [...greedy, ...other]) c.close();
    },
    { maxTcpConnections: 50, maxTcpConnectionsPerClient: 10, ...noTimeouts },
  );
});

test('TCP: the default per-client cap is 100', async () => {
  await withServer(
    async (port) => {
      const greedy = await idleConnections(port, 150, '127.0.5.1');
      assert.ok(await eventually(() => openCount(greedy) === 100), `${openCount(greedy)} connections open`);
      assert.ok(greedy.slice(50).every((c) => !c.closed));
      for (const c of greedy) c.close();
    },
    noTimeouts,
  );
});

test('TCP: no complete query within the first-query timeout, or a frame trickled byte by byte (slowloris): closed', async () => {
  await withServer(
    async (port) => {
      const silent = new TcpClient(port);
      const slow = new TcpClient(port);
      const good = new TcpClient(port);
      await Promise.all([silent.connected(), slow.connected(), good.connected()]);
      const started = Date.now();
      const q = query('web.shop.prod.gantry.local');
      good.socket.write(TcpClient.frame(q));
      assert.equal(idOf(await good.next()), idOf(q));
      // An incomplete frame, one byte every 50 ms: activity, but never a query.
      const frame = TcpClient.frame(query('web.shop.prod.gantry.local'));
      frame.writeUInt16BE(65535, 0);
      let sent = 0;
      const trickle = setInterval(() => {
        if (!slow.closed && sent < frame.length) slow.socket.write(frame.subarray(sent, ++sent));
      }, 50);
      try {
        assert.ok(await eventually(() => silent.closed, 2000), 'a silent connection outlived the first-query timeout');
        assert.ok(await eventually(() => slow.closed, 2000), 'a trickling connection outlived the first-query timeout');
        // The connection that asked lives on (idle timeout 4 s).
        assert.ok(Date.now() - started < 3500);
        assert.equal(good.closed, false);

        // After a query, trickling an incomplete frame does not reset the idle timeout.
        let goodSent = 0;
        const goodTrickle = setInterval(() => {
          if (!good.closed && goodSent < frame.length) good.socket.write(frame.subarray(goodSent, ++goodSent));
        }, 50);
        try {
          assert.ok(await eventually(() => good.closed, 7000), 'a trickling connection outlived the idle timeout');
        } finally {
          clearInterval(goodTrickle);
        }
      } finally {
        clearInterval(trickle);
        for (const c of [silent, slow, good]) c.close();
      }
    },
    { tcpFirstQueryTimeoutMs: 300, tcpIdleTimeoutMs: 4000 },
  );
});

test('TCP: a 65535-byte message in small pieces, then more messages in the same write, are answered', async () => {
  await withServer(async (port) => {
    const client = new TcpClient(port);
    await client.connected();
    // A query padded to the largest length (trailing bytes: FORMERR or an answer, with its id).
    const big = Buffer.alloc(65535);
    const q = query('web.shop.prod.gantry.local');
    q.copy(big);
    const frame = TcpClient.frame(big);
    for (let offset = 0; offset < frame.length - 1000; offset += 1000) client.socket.write(frame.subarray(offset, offset + 1000));
    const tail = frame.subarray(Math.floor((frame.length - 1) / 1000) * 1000);
    const q2 = query('web.shop.prod.gantry.local');
    client.socket.write(Buffer.concat([tail, TcpClient.frame(q2), TcpClient.frame(q2).subarray(0, 1)]));
    assert.equal(idOf(await client.next()), idOf(q));
    const r2 = await client.next();
    assert.equal(idOf(r2), idOf(q2));
    assert.deepEqual(addresses(dnsPacket.decode(r2)), ['10.0.0.1', '10.0.0.2']);
    client.socket.write(TcpClient.frame(q2).subarray(1));
    assert.equal(idOf(await client.next()), idOf(q2));
    client.close();
  });
});

test('TCP: a client that sends without reading is paused, then gets every answer once it reads', async () => {
  await withServer(async (port) => {
    const client = new TcpClient(port);
    await client.connected();
    client.socket.pause();
    const q = TcpClient.frame(query('_http._tcp.web.shop.prod.gantry.local', 'SRV'));
    const n = 20_000;
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => q));
    for (let i = 0; i < n / 1000; i++) client.socket.write(batch);
    await sleep(300);
    client.socket.resume();
    for (let i = 0; i < n; i++) assert.equal(idOf(await client.next(5000)), idOf(q.subarray(2)));
    assert.equal(client.closed, false);
    client.close();
  });
});

test('TCP: with a per-client cap of 1 each new connection replaces the previous one', async () => {
  await withServer(
    async (port) => {
      const clients: TcpClient[] = [];
      for (let i = 0; i < 4; i++) {
        clients.push(...(await idleConnections(port, 1, '127.0.6.1')));
        assert.ok(await eventually(() => openCount(clients) === 1), `${openCount(clients)} connections open`);
        assert.equal(clients.at(-1)!.closed, false);
      }
      assert.deepEqual(addresses(await tcpFrom(port, '127.0.6.1')), ['10.0.0.1', '10.0.0.2']);
      assert.ok(await eventually(() => openCount(clients) === 0));
    },
    { maxTcpConnectionsPerClient: 1, ...noTimeouts },
  );
});

test('TcpFramer: any split of the stream gives the same messages; the pending frame never exceeds 2 + 65535 bytes', () => {
  const messages = [Buffer.alloc(0), Buffer.from('a'), randomBytes(300), randomBytes(65535), randomBytes(12), randomBytes(4000)];
  const stream = Buffer.concat(messages.map((m) => TcpClient.frame(m)));
  const splits: number[][] = [[stream.length], Array.from({ length: stream.length }, () => 1), [1, 2, 3, 65536, 1, 1]];
  for (let i = 0; i < 50; i++) splits.push(Array.from({ length: 20 }, () => 1 + Math.floor(Math.random() * 9000)));
  for (const sizes of splits) {
    const framer = new TcpFramer();
    const got: Buffer[] = [];
    let offset = 0;
    for (let i = 0; offset < stream.length; i++) {
      const size = sizes[i % sizes.length]!;
      framer.push(stream.subarray(offset, offset + size), (msg) => got.push(Buffer.from(msg)));
      offset += size;
      assert.ok(framer.pending <= 2 + 65535, String(framer.pending));
    }
    assert.equal(framer.pending, 0);
    assert.deepEqual(got, messages);
  }
});
