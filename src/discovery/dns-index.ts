// The name index of Gantry's DNS server (dns.ts), built from an EndpointSource: lower-cased
// wire name → node with its A/AAAA/SRV records (and the A/AAAA of SRV targets for the
// additional section), plus the zone's SOA. Built in one go whenever the source changes, so
// the per-query path does no record work: each (node, type) answer is encoded once (with name
// compression) on first use and cached in the node; a query only copies that message and
// patches it (dns-responder.ts).
import net from 'node:net';
import type { Endpoint } from '../model/registry.js';
import type { EndpointSource } from './source.js';
import { C_IN, MessageWriter, T_A, T_AAAA, T_ANY, T_SOA, T_SRV, codecs, isLabel, isName, wireKey, type Rr } from './dns-wire.js';

/** An encoded answer for one name and type. The question in it is patched per query. */
export interface Encoded {
  buf: Buffer;
  /** Length without the additional section (used when the whole does not fit but the answers do). */
  lengthWithoutAdditional: number;
  /** More records than fit in 64 KiB: always send with TC. */
  overflow: boolean;
}

// Slots of a node's encoded answers.
const S_A = 0;
const S_AAAA = 1;
const S_SRV = 2;
const S_ANY = 3;
const S_SOA = 4;
const S_OTHER = 5;
const SLOTS = 6;

export class NameNode {
  readonly a: Rr[] = [];
  readonly aaaa: Rr[] = [];
  readonly srv: Rr[] = [];
  /** A/AAAA of SRV targets, for the additional section. */
  readonly extra: Rr[] = [];
  readonly seen = new Set<string>();
  readonly encoded: (Encoded | undefined)[] = new Array<Encoded | undefined>(SLOTS).fill(undefined);
  constructor(readonly name: string, readonly apex = false) {}
}

/**
 * One build of the index. A new one is made on every change (`new DnsIndex(...)` is empty
 * until build()); encoded answers live in its nodes, so they go with it.
 */
export class DnsIndex {
  private readonly nodes = new Map<string, NameNode>();
  private soaRdata: Buffer = Buffer.alloc(0);
  /** type, class, ttl and rdata of the SOA record (the owner is written per use). */
  soaTail: Buffer = Buffer.alloc(0);

  constructor(private readonly domain: string, private readonly ttl: number) {}

  /** Number of names. */
  get size(): number {
    return this.nodes.size;
  }

  /** The node of a lower-cased wire name (see wireKey). */
  get(key: string): NameNode | undefined {
    return this.nodes.get(key);
  }

  /** The encoded response of `node` for `qtype` (encoded on first use, then cached). */
  encoded(node: NameNode, qtype: number): Encoded {
    const slot = qtype === T_A ? S_A : qtype === T_AAAA ? S_AAAA : qtype === T_SRV ? S_SRV : qtype === T_ANY ? S_ANY : qtype === T_SOA ? S_SOA : S_OTHER;
    return node.encoded[slot] ?? (node.encoded[slot] = this.encode(node, slot));
  }

  /** Encodes the response of `node` for one slot (question written in lower case; patched per query). */
  private encode(node: NameNode, slot: number): Encoded {
    let answers: Rr[] = [];
    let additional: Rr[] = [];
    if (slot === S_A) answers = node.a;
    else if (slot === S_AAAA) answers = node.aaaa;
    else if (slot === S_SRV) {
      answers = node.srv;
      additional = node.extra;
    } else if (slot === S_ANY) answers = node.apex ? [this.soaRecord()] : [...node.a, ...node.aaaa, ...node.srv];
    else if (slot === S_SOA && node.apex) answers = [this.soaRecord()];
    const authority = answers.length === 0 ? [this.soaRecord()] : [];
    if (answers.length === 0) additional = [];

    const w = new MessageWriter();
    w.offset = 12;
    w.name(node.name);
    w.u16(0); // qtype, qclass: copied from the query
    w.u16(0);
    let an = 0;
    let ns = 0;
    let ar = 0;
    for (const rr of answers) if (w.record(rr, this.ttl)) an++;
    for (const rr of authority) if (w.record(rr, this.ttl)) ns++;
    const lengthWithoutAdditional = w.offset;
    for (const rr of additional) if (w.record(rr, this.ttl)) ar++;
    // An overflowing additional section is just cut; only missing answers need TC.
    const overflow = w.overflow && an < answers.length;
    const buf = Buffer.from(w.buf.subarray(0, w.offset));
    buf.fill(0, 0, 4);
    buf.writeUInt16BE(1, 4);
    buf.writeUInt16BE(an, 6);
    buf.writeUInt16BE(ns, 8);
    buf.writeUInt16BE(ar, 10);
    return { buf, lengthWithoutAdditional, overflow };
  }

  private soaRecord(): Rr {
    return { name: this.domain, type: T_SOA, rdata: this.soaRdata };
  }

  /** Fills the index from the source (call once, on a new DnsIndex). */
  build(source: EndpointSource): void {
    const domain = this.domain;
    const index = this.nodes;
    const node = (name: string, apex = false): NameNode => {
      const key = wireKey(name);
      let n = index.get(key);
      if (n === undefined) index.set(key, (n = new NameNode(name, apex)));
      return n;
    };
    node(domain, true);

    const addAddress = (n: NameNode, address: string, family: 0 | 4 | 6): Rr | undefined => {
      if (family === 0) return undefined;
      const rr: Rr = family === 4 ? { name: n.name, type: T_A, rdata: codecs.a.encode(address) } : { name: n.name, type: T_AAAA, rdata: codecs.aaaa.encode(address) };
      if (!n.seen.has(address)) {
        n.seen.add(address);
        (family === 4 ? n.a : n.aaaa).push(rr);
      }
      return rr;
    };

    for (const endpoint of source.list()) this.addEndpoint(endpoint, domain, node, addAddress);
    for (const n of index.values()) n.seen.clear();

    const serial = source.revision >>> 0;
    this.soaRdata = codecs.soa.encode({ mname: `ns.${domain}`, rname: `hostmaster.${domain}`, serial, refresh: 3600, retry: 600, expire: 86400, minimum: this.ttl });
    const tail = Buffer.alloc(8 + this.soaRdata.length);
    tail.writeUInt16BE(T_SOA, 0);
    tail.writeUInt16BE(C_IN, 2);
    tail.writeUInt32BE(this.ttl, 4);
    this.soaRdata.copy(tail, 8);
    this.soaTail = tail;
  }

  private addEndpoint(
    endpoint: Endpoint,
    domain: string,
    node: (name: string) => NameNode,
    addAddress: (n: NameNode, address: string, family: 0 | 4 | 6) => Rr | undefined,
  ): void {
    const entry = endpoint.entry.toLowerCase();
    const app = endpoint.app.toLowerCase();
    const env = endpoint.env.toLowerCase();
    const id = endpoint.id.toLowerCase();
    if (!isLabel(entry) || !isLabel(app) || !isLabel(env)) return;
    const base = `${entry}.${app}.${env}.${domain}`;
    if (base.length > 253) return;
    node(`${env}.${domain}`);
    node(`${app}.${env}.${domain}`);
    const entryNode = node(base);

    const address = endpoint.address;
    let family: 0 | 4 | 6 = net.isIPv4(address) ? 4 : net.isIPv6(address) && !address.includes('%') ? 6 : 0;
    if (family !== 0) {
      try {
        addAddress(entryNode, address, family);
      } catch {
        family = 0; // not encodable after all
      }
    }

    // SRV target: the instance's own name (answered with its address), or a host name address as is.
    const idName = `${id}.${base}`;
    let target: string | undefined;
    let targetRr: Rr | undefined;
    if (isLabel(id) && idName.length <= 253) {
      const idNode = node(idName);
      if (family !== 0) {
        targetRr = addAddress(idNode, address, family);
        target = idName;
      }
    }
    if (target === undefined && family === 0 && isName(address.replace(/\.$/, ''))) target = address.replace(/\.$/, '').toLowerCase();
    if (target === undefined) return;

    for (const [portName, port] of Object.entries(endpoint.ports)) {
      if (!Number.isInteger(port) || port < 0 || port > 65535) continue;
      const rdata = codecs.srv.encode({ priority: 0, weight: 10, port, target });
      this.addSrv(entryNode, rdata, target, targetRr);
      const service = `_${portName.toLowerCase()}`;
      if (!isLabel(service) || base.length + service.length + 6 > 253) continue;
      node(`_tcp.${base}`);
      this.addSrv(node(`${service}._tcp.${base}`), rdata, target, targetRr);
    }
  }

  private addSrv(n: NameNode, rdata: Buffer, target: string, targetRr: Rr | undefined): void {
    const key = `srv ${rdata.toString('latin1')}`;
    if (n.seen.has(key)) return;
    n.seen.add(key);
    n.srv.push({ name: n.name, type: T_SRV, rdata, target });
    if (targetRr !== undefined && !n.seen.has(`extra ${target}`)) {
      n.seen.add(`extra ${target}`);
      n.extra.push(targetRr);
    }
  }
}
