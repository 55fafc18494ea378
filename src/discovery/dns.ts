// Gantry's DNS server: answers A/AAAA and SRV for `{entry}.{app}.{env}.{domain}` (and
// `_{port}._tcp.{entry}...`, `{id}.{entry}...`) from an EndpointSource, over UDP and TCP.
// Authoritative for `domain` only (REFUSED elsewhere, RA=0), NXDOMAIN/NODATA with an SOA,
// FORMERR for malformed queries, EDNS(0) with the client's UDP size, TC when an answer does
// not fit.
//
// The per-query path does no record work: the source is turned into an index
// (lower-cased wire name → node) when it changes, each (node, type) answer is encoded once
// (with name compression) on first use, and a query only copies that message, patches
// id, flags and the question (so the answer keeps the question's case) and appends an OPT.
// The query parser is a small strict one written for this path (dns-packet's decoder builds
// a whole object tree per message); record data is encoded with dns-packet's codecs.
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import type { Endpoint } from '../model/registry.js';
import type { EndpointSource } from './source.js';

export interface DnsOptions {
  /** Zone we are authoritative for. Default 'gantry.local'. */
  domain?: string;
  /** TTL of every record, and the negative-caching TTL (SOA minimum), in seconds. Default 5. */
  ttl?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Same port for UDP and TCP. Default 5353; 0 picks a free one. */
  port?: number;
  /** Largest UDP answer we send whatever the client's EDNS size (and the size we advertise). Default 1232. */
  maxUdpSize?: number;
  /** A TCP connection with no query for this long is closed. Default 10 s. */
  tcpIdleTimeoutMs?: number;
  /** Default 1000. */
  maxTcpConnections?: number;
  /** Kernel receive buffer of the UDP socket, in bytes (absorbs bursts). Default 4 MiB (capped by net.core.rmem_max). */
  udpRecvBufferSize?: number;
  /**
   * Extra processes answering UDP on the same socket (the kernel hands each datagram to one
   * of them), each with its own copy of the endpoints sent over IPC on change (so they lag
   * this process by an IPC hop). TCP stays here. Default 0.
   */
  workers?: number;
}

// Record types and classes we deal with.
const T_A = 1;
const T_NS = 2;
const T_SOA = 6;
const T_AAAA = 28;
const T_SRV = 33;
const T_OPT = 41;
const T_IXFR = 251;
const T_AXFR = 252;
const T_ANY = 255;
const C_IN = 1;
const C_ANY = 255;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const BADVERS = 16;

/** Largest DNS message (TCP framing limit). */
const MAX_MESSAGE = 65535;
const OPT_LENGTH = 11;
const MAX_NAME = 255;

// dns-packet's record codecs exist at run time but are not in its typings.
interface RdataCodec<T> {
  encode(data: T, buf?: Buffer, offset?: number): Buffer;
}
const codecs = dnsPacket as unknown as {
  a: RdataCodec<string>;
  aaaa: RdataCodec<string>;
  srv: RdataCodec<{ priority: number; weight: number; port: number; target: string }>;
  soa: RdataCodec<{ mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }>;
};

/** One resource record to encode: owner name (lower case, dotted), type, rdata with its length prefix. */
interface Rr {
  name: string;
  type: number;
  rdata: Buffer;
  /** For SRV: the target name and where it starts inside rdata, so later owners can point at it. */
  target?: string;
}

/** An encoded answer for one name and type. The question in it is patched per query. */
interface Encoded {
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

class NameNode {
  readonly a: Rr[] = [];
  readonly aaaa: Rr[] = [];
  readonly srv: Rr[] = [];
  /** A/AAAA of SRV targets, for the additional section. */
  readonly extra: Rr[] = [];
  readonly seen = new Set<string>();
  readonly encoded: (Encoded | undefined)[] = new Array<Encoded | undefined>(SLOTS).fill(undefined);
  constructor(readonly name: string, readonly apex = false) {}
}

function isLabel(label: string): boolean {
  if (label.length === 0 || label.length > 63) return false;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x2e) return false;
  }
  return true;
}

function isName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every(isLabel);
}

/** Lower-case wire form of a dotted name, as a latin1 string (the index key). */
export function wireKey(name: string): string {
  let key = '';
  for (const label of name.toLowerCase().split('.')) key += String.fromCharCode(label.length) + label;
  return key + '\0';
}

/** Scratch buffer for encoding answers (index building is synchronous). */
let scratch: Buffer | undefined;

/** Encodes a full response with name compression. Header flags/id are patched per query. */
class MessageWriter {
  readonly buf: Buffer;
  offset = 0;
  private readonly names = new Map<string, number>();
  overflow = false;

  constructor() {
    this.buf = scratch ??= Buffer.alloc(MAX_MESSAGE);
  }

  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.offset);
    this.offset += 2;
  }

  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.offset);
    this.offset += 4;
  }

  /** Remembers where the suffixes of `name` (written uncompressed at `at`) start. */
  register(name: string, at: number): void {
    const labels = name.split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.');
      if (at >= 0x4000) return;
      if (!this.names.has(suffix)) this.names.set(suffix, at);
      at += labels[i]!.length + 1;
    }
  }

  name(name: string): void {
    const labels = name.split('.');
    for (let i = 0; i < labels.length; i++) {
      const pointer = this.names.get(labels.slice(i).join('.'));
      if (pointer !== undefined) {
        this.u16(0xc000 | pointer);
        return;
      }
      if (this.offset < 0x4000) this.names.set(labels.slice(i).join('.'), this.offset);
      const label = labels[i]!;
      this.buf[this.offset] = label.length;
      this.buf.write(label, this.offset + 1, 'latin1');
      this.offset += label.length + 1;
    }
    this.buf[this.offset++] = 0;
  }

  /** Writes one record unless it might not fit (then marks overflow); returns whether written. */
  record(rr: Rr, ttl: number): boolean {
    if (this.overflow || this.offset + rr.name.length + 2 + 10 + rr.rdata.length > MAX_MESSAGE - OPT_LENGTH) {
      this.overflow = true;
      return false;
    }
    this.name(rr.name);
    this.u16(rr.type);
    this.u16(C_IN);
    this.u32(ttl);
    const at = this.offset;
    rr.rdata.copy(this.buf, at);
    this.offset += rr.rdata.length;
    if (rr.target !== undefined) this.register(rr.target, at + 8);
    return true;
  }
}

/** Header byte 2 of a response: QR, the query's opcode and RD, and AA/TC. */
function flags2(query: Buffer, aa: boolean, tc: boolean): number {
  return 0x80 | (query[2]! & 0x79) | (aa ? 0x04 : 0) | (tc ? 0x02 : 0);
}

/** Header byte 3: the query's CD bit and the rcode. */
function flags3(query: Buffer, rcode: number): number {
  return (query[3]! & 0x10) | (rcode & 0x0f);
}

/** What the parser found in a query. Reused between queries (the path is synchronous). */
interface ParsedQuery {
  /** End of the question section (12 when there is none). */
  questionEnd: number;
  nameEnd: number;
  qtype: number;
  qclass: number;
  /** -1 without EDNS, else the requested UDP payload size. */
  ednsSize: number;
  ednsVersion: number;
  /** DO bit of the query's OPT (copied to ours). */
  dnssecOk: boolean;
}

const PARSE_OK = -1;
const PARSE_DROP = -2;

/**
 * Strict parse of a query. Returns PARSE_OK, PARSE_DROP (not answerable: too short to
 * have an id, or a response), or an rcode to answer with (FORMERR, NOTIMP).
 */
function parseQuery(msg: Buffer, q: ParsedQuery): number {
  const length = msg.length;
  if (length < 12) return PARSE_DROP;
  if (msg[2]! & 0x80) return PARSE_DROP; // a response: never answer those (no loops)
  q.questionEnd = 12;
  q.ednsSize = -1;
  q.ednsVersion = 0;
  q.dnssecOk = false;
  if ((msg[2]! & 0x78) !== 0) return RCODE.NOTIMP;
  // QDCOUNT must be 1, and a query carries no answer or authority records.
  if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0) return RCODE.FORMERR;

  let offset = 12;
  for (;;) {
    if (offset >= length) return RCODE.FORMERR;
    const len = msg[offset]!;
    if (len === 0) {
      offset++;
      break;
    }
    // No compression in the question (nothing before it to point at), no extended labels.
    if (len > 63) return RCODE.FORMERR;
    offset += len + 1;
    if (offset - 12 >= MAX_NAME) return RCODE.FORMERR;
  }
  if (offset - 12 > MAX_NAME || offset + 4 > length) return RCODE.FORMERR;
  q.nameEnd = offset;
  q.qtype = (msg[offset]! << 8) | msg[offset + 1]!;
  q.qclass = (msg[offset + 2]! << 8) | msg[offset + 3]!;
  offset += 4;
  q.questionEnd = offset;

  // Additional section: look for one OPT; skip others (they need not be understood).
  const arcount = (msg[10]! << 8) | msg[11]!;
  for (let i = 0; i < arcount; i++) {
    const nameStart = offset;
    for (;;) {
      if (offset >= length) return RCODE.FORMERR;
      const len = msg[offset]!;
      if (len === 0) {
        offset++;
        break;
      }
      if ((len & 0xc0) === 0xc0) {
        offset += 2; // a pointer ends the name; skipping does not follow it, so no loops
        break;
      }
      if (len > 63) return RCODE.FORMERR;
      offset += len + 1;
    }
    if (offset + 10 > length) return RCODE.FORMERR;
    const type = (msg[offset]! << 8) | msg[offset + 1]!;
    const rdlength = (msg[offset + 8]! << 8) | msg[offset + 9]!;
    if (offset + 10 + rdlength > length) return RCODE.FORMERR;
    if (type === T_OPT) {
      if (q.ednsSize !== -1 || offset !== nameStart + 1) return RCODE.FORMERR; // one OPT, owned by the root
      q.ednsSize = (msg[offset + 2]! << 8) | msg[offset + 3]!;
      q.ednsVersion = msg[offset + 5]!;
      q.dnssecOk = (msg[offset + 6]! & 0x80) !== 0;
    }
    offset += 10 + rdlength;
  }
  return PARSE_OK;
}

export interface DnsResponderOptions {
  domain?: string;
  ttl?: number;
  maxUdpSize?: number;
}

/**
 * The protocol part of the server, without sockets: turns a query message into a response
 * message (or undefined: drop). Keeps an index of the source, rebuilt when it changes.
 */
export class DnsResponder {
  readonly domain: string;
  readonly ttl: number;
  readonly maxUdpSize: number;
  private readonly domainKey: string;
  private index = new Map<string, NameNode>();
  private dirty = true;
  private rebuildScheduled = false;
  private soaRdata: Buffer = Buffer.alloc(0);
  /** type, class, ttl and rdata of the SOA record (the owner is written per use). */
  private soaTail: Buffer = Buffer.alloc(0);
  private readonly parsed: ParsedQuery = { questionEnd: 12, nameEnd: 12, qtype: 0, qclass: 0, ednsSize: -1, ednsVersion: 0, dnssecOk: false };
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly source: EndpointSource, options: DnsResponderOptions = {}) {
    const domain = (options.domain ?? 'gantry.local').toLowerCase().replace(/^\.+|\.+$/g, '');
    if (!isName(domain)) throw new Error(`invalid DNS domain: ${JSON.stringify(options.domain)}`);
    this.domain = domain;
    this.domainKey = wireKey(domain);
    this.ttl = Math.max(0, Math.floor(options.ttl ?? 5));
    this.maxUdpSize = Math.min(MAX_MESSAGE, Math.max(512, Math.floor(options.maxUdpSize ?? 1232)));
    this.open();
  }

  /** Follows the source's changes (done by the constructor; again after close()). */
  open(): void {
    if (this.unsubscribe) return;
    this.dirty = true;
    this.unsubscribe = this.source.subscribe(() => {
      this.dirty = true;
      if (this.rebuildScheduled) return;
      // Rebuild off the query path soon; a query arriving first rebuilds itself.
      this.rebuildScheduled = true;
      setImmediate(() => {
        this.rebuildScheduled = false;
        if (this.dirty && this.unsubscribe) this.rebuild();
      }).unref();
    });
  }

  /** Stops following the source; answer() still works (from a fresh read of the source). */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.dirty = true;
  }

  /** Number of names in the index (tests, metrics). */
  get names(): number {
    if (this.dirty) this.rebuild();
    return this.index.size;
  }

  /**
   * Answers one query message. `maxSize` is the transport's limit: leave it undefined for
   * UDP (512, or the EDNS size up to maxUdpSize), pass 65535 for TCP. Returns undefined
   * when the message must be dropped. Never throws on any input.
   */
  answer(msg: Buffer, maxSize?: number): Buffer | undefined {
    try {
      return this.answerUnsafe(msg, maxSize);
    } catch {
      return undefined;
    }
  }

  private answerUnsafe(msg: Buffer, maxSize: number | undefined): Buffer | undefined {
    const q = this.parsed;
    const status = parseQuery(msg, q);
    if (status === PARSE_DROP) return undefined;
    if (status !== PARSE_OK) return this.bare(msg, 12, status, false, false);
    if (q.ednsSize !== -1 && q.ednsVersion !== 0) return this.bare(msg, q.questionEnd, BADVERS, false, true);
    if (q.qclass !== C_IN && q.qclass !== C_ANY) return this.bare(msg, q.questionEnd, RCODE.REFUSED, false, q.ednsSize !== -1);
    const qtype = q.qtype;
    if (qtype === T_OPT) return this.bare(msg, q.questionEnd, RCODE.FORMERR, false, q.ednsSize !== -1);

    if (this.dirty) this.rebuild();
    const key = msg.toString('latin1', 12, q.nameEnd).toLowerCase();
    const node = this.index.get(key);
    const edns = q.ednsSize !== -1;
    if (node === undefined) {
      const domainAt = this.domainOffset(msg, key);
      if (domainAt < 0) return this.bare(msg, q.questionEnd, RCODE.REFUSED, false, edns);
      return this.nxdomain(msg, q.questionEnd, domainAt, edns, maxSize);
    }
    if (qtype === T_AXFR || qtype === T_IXFR) return this.bare(msg, q.questionEnd, RCODE.REFUSED, true, edns);

    const slot = qtype === T_A ? S_A : qtype === T_AAAA ? S_AAAA : qtype === T_SRV ? S_SRV : qtype === T_ANY ? S_ANY : qtype === T_SOA ? S_SOA : S_OTHER;
    const encoded = node.encoded[slot] ?? (node.encoded[slot] = this.encode(node, slot));

    const limit = maxSize ?? (edns ? Math.max(512, Math.min(q.ednsSize, this.maxUdpSize)) : 512);
    const optLength = edns ? OPT_LENGTH : 0;
    const src = encoded.buf;
    let length = src.length;
    let tc = encoded.overflow;
    let dropAdditional = false;
    let empty = false;
    if (length + optLength > limit) {
      if (encoded.lengthWithoutAdditional + optLength <= limit) {
        length = encoded.lengthWithoutAdditional;
        dropAdditional = true;
      } else {
        length = q.questionEnd;
        tc = true;
        empty = true;
      }
    }
    const out = Buffer.allocUnsafe(length + optLength);
    src.copy(out, 0, 0, length);
    msg.copy(out, 0, 0, 2); // id
    msg.copy(out, 12, 12, q.questionEnd); // the question as asked (case, type, class)
    out[2] = flags2(msg, true, tc);
    out[3] = flags3(msg, 0);
    if (empty) out.fill(0, 6, 12);
    else if (dropAdditional) out[10] = out[11] = 0;
    if (edns) {
      const ar = ((out[10]! << 8) | out[11]!) + 1;
      out[10] = ar >> 8;
      out[11] = ar & 0xff;
      this.writeOpt(out, length, 0, q.dnssecOk);
    }
    return out;
  }

  /** Offset in `msg` where our domain starts in the question name, or -1 when outside it. */
  private domainOffset(msg: Buffer, key: string): number {
    const domainKey = this.domainKey;
    if (key.length < domainKey.length || !key.endsWith(domainKey)) return -1;
    const target = 12 + key.length - domainKey.length;
    let offset = 12;
    while (offset < target) offset += msg[offset]! + 1;
    return offset === target ? target : -1;
  }

  /** Header (+ question) (+ OPT) response with no records. */
  private bare(msg: Buffer, questionEnd: number, rcode: number, aa: boolean, edns: boolean): Buffer {
    const out = Buffer.allocUnsafe(questionEnd + (edns ? OPT_LENGTH : 0));
    msg.copy(out, 0, 0, questionEnd);
    out[2] = flags2(msg, aa, false);
    out[3] = flags3(msg, rcode);
    out[4] = 0;
    out[5] = questionEnd > 12 ? 1 : 0;
    out.fill(0, 6, 12);
    if (edns) {
      out[11] = 1;
      this.writeOpt(out, questionEnd, rcode >> 4, this.parsed.dnssecOk);
    }
    return out;
  }

  private nxdomain(msg: Buffer, questionEnd: number, domainAt: number, edns: boolean, maxSize: number | undefined): Buffer {
    const tail = this.soaTail;
    const soaLength = 2 + tail.length;
    const limit = maxSize ?? (edns ? Math.max(512, Math.min(this.parsed.ednsSize, this.maxUdpSize)) : 512);
    const withSoa = questionEnd + soaLength + (edns ? OPT_LENGTH : 0) <= limit;
    const end = questionEnd + (withSoa ? soaLength : 0);
    const out = Buffer.allocUnsafe(end + (edns ? OPT_LENGTH : 0));
    msg.copy(out, 0, 0, questionEnd);
    out[2] = flags2(msg, true, false);
    out[3] = flags3(msg, RCODE.NXDOMAIN);
    out[4] = 0;
    out[5] = 1;
    out[6] = out[7] = out[8] = out[10] = 0;
    out[9] = withSoa ? 1 : 0;
    out[11] = edns ? 1 : 0;
    if (withSoa) {
      out.writeUInt16BE(0xc000 | domainAt, questionEnd);
      tail.copy(out, questionEnd + 2);
    }
    if (edns) this.writeOpt(out, end, 0, this.parsed.dnssecOk);
    return out;
  }

  private writeOpt(out: Buffer, at: number, extendedRcode: number, dnssecOk: boolean): void {
    out[at] = 0; // root owner
    out.writeUInt16BE(T_OPT, at + 1);
    out.writeUInt16BE(this.maxUdpSize, at + 3);
    out[at + 5] = extendedRcode;
    out[at + 6] = 0; // version
    out[at + 7] = dnssecOk ? 0x80 : 0;
    out[at + 8] = 0;
    out[at + 9] = 0; // rdlength
    out[at + 10] = 0;
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

  /** Rebuilds the name index from the source. Encoded answers are made again on demand. */
  rebuild(): void {
    this.dirty = false;
    const domain = this.domain;
    const index = new Map<string, NameNode>();
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

    for (const endpoint of this.source.list()) this.addEndpoint(endpoint, domain, node, addAddress);
    for (const n of index.values()) n.seen.clear();

    const serial = this.source.revision >>> 0;
    this.soaRdata = codecs.soa.encode({ mname: `ns.${domain}`, rname: `hostmaster.${domain}`, serial, refresh: 3600, retry: 600, expire: 86400, minimum: this.ttl });
    const tail = Buffer.alloc(8 + this.soaRdata.length);
    tail.writeUInt16BE(T_SOA, 0);
    tail.writeUInt16BE(C_IN, 2);
    tail.writeUInt32BE(this.ttl, 4);
    this.soaRdata.copy(tail, 8);
    this.soaTail = tail;
    this.index = index;
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

/** Answers every datagram arriving on `socket` with `responder`. */
export function serveUdp(socket: dgram.Socket, responder: DnsResponder): void {
  socket.on('message', (msg, rinfo) => {
    const out = responder.answer(msg);
    if (out !== undefined) socket.send(out, rinfo.port, rinfo.address);
  });
  socket.on('error', () => {}); // e.g. ICMP unreachable surfacing on send: nothing to do
}

/** Messages from DnsServer to its worker processes (dns-worker.ts). */
export type DnsWorkerMessage =
  | { type: 'init'; options: DnsResponderOptions }
  | { type: 'endpoints'; revision: number; endpoints: Endpoint[] }
  | { type: 'socket' };

const workerScript = fileURLToPath(import.meta.url).replace(/dns\.(ts|js)$/, 'dns-worker.$1');

/** A DNS server (UDP and TCP on the same port) answering from an EndpointSource. */
export class DnsServer {
  readonly responder: DnsResponder;
  private readonly host: string;
  private readonly port: number;
  private readonly tcpIdleTimeoutMs: number;
  private readonly maxTcpConnections: number;
  private readonly udpRecvBufferSize: number;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private readonly workerCount: number;
  private readonly workers = new Set<ChildProcess>();
  private unsubscribeWorkers: (() => void) | undefined;
  private syncScheduled = false;
  private stopping = false;

  constructor(private readonly source: EndpointSource, private readonly options: DnsOptions = {}) {
    this.responder = new DnsResponder(source, options);
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 5353;
    this.tcpIdleTimeoutMs = options.tcpIdleTimeoutMs ?? 10_000;
    this.maxTcpConnections = options.maxTcpConnections ?? 1000;
    this.udpRecvBufferSize = options.udpRecvBufferSize ?? 4 * 1024 * 1024;
    this.workerCount = Math.max(0, Math.floor(options.workers ?? 0));
  }

  async start(): Promise<{ port: number }> {
    if (this.udp) throw new Error('DNS server already started');
    this.responder.open();
    this.responder.rebuild();
    // Port 0: take a free UDP port, then the same for TCP; retry if TCP's is taken.
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(this.port);
      const port = udp.address().port;
      try {
        this.tcp = await this.listenTcp(port);
        this.udp = udp;
      } catch (error) {
        udp.close();
        if (this.port !== 0 || attempt >= 10) throw error;
        continue;
      }
      this.stopping = false;
      if (this.workerCount > 0) {
        this.unsubscribeWorkers = this.source.subscribe(() => this.scheduleSync());
        try {
          await Promise.all(Array.from({ length: this.workerCount }, () => this.startWorker()));
        } catch (error) {
          await this.stop();
          throw error;
        }
      }
      return { port };
    }
  }

  private workerOptions(): DnsResponderOptions {
    return { domain: this.responder.domain, ttl: this.responder.ttl, maxUdpSize: this.responder.maxUdpSize };
  }

  private startWorker(): Promise<void> {
    // From the TypeScript sources the worker needs tsx, which may have been registered in
    // code (bin/gantry) rather than by a flag that fork would pass on.
    const execArgv = workerScript.endsWith('.ts') && !process.execArgv.some((arg) => arg.includes('tsx')) ? [...process.execArgv, '--import', 'tsx'] : process.execArgv;
    const child = fork(workerScript, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.workers.add(child);
    const send = (message: DnsWorkerMessage, handle?: dgram.Socket) => child.send(message, handle as never, () => {});
    send({ type: 'init', options: this.workerOptions() });
    send({ type: 'endpoints', revision: this.source.revision, endpoints: this.source.list() });
    send({ type: 'socket' }, this.udp);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`DNS worker exited (${signal ?? code}) before it was ready`));
      child.once('exit', onExit);
      child.once('message', () => {
        child.off('exit', onExit);
        child.once('exit', () => {
          this.workers.delete(child);
          // Replace a worker that died while we run (the socket is still open here).
          if (!this.stopping && this.udp) setTimeout(() => void this.startWorker().catch(() => {}), 1000).unref();
        });
        resolve();
      });
    });
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      if (this.workers.size === 0) return;
      const message: DnsWorkerMessage = { type: 'endpoints', revision: this.source.revision, endpoints: this.source.list() };
      for (const child of this.workers) if (child.connected) child.send(message, undefined, undefined, () => {});
    });
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    this.stopping = true;
    this.unsubscribeWorkers?.();
    this.unsubscribeWorkers = undefined;
    await Promise.all(
      [...this.workers].map((child) => {
        this.workers.delete(child);
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        return exited;
      }),
    );
    this.responder.close();
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
    await Promise.all([
      udp && new Promise<void>((resolve) => udp.close(() => resolve())),
      tcp && new Promise<void>((resolve) => tcp.close(() => resolve())),
    ]);
  }

  private bindUdp(port: number): Promise<dgram.Socket> {
    const type = net.isIPv6(this.host) ? 'udp6' : 'udp4';
    // The lookup is only used for the client's address, always an IP literal: answer at once
    // instead of through dns.lookup (which defers to the next tick).
    const socket = dgram.createSocket({
      type,
      lookup: (address: string, _options: unknown, callback: (err: Error | null, address: string, family: number) => void) =>
        callback(null, address, type === 'udp6' ? 6 : 4),
    } as dgram.SocketOptions);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: this.host, exclusive: true }, () => {
        socket.off('error', reject);
        serveUdp(socket, this.responder);
        try {
          socket.setRecvBufferSize(this.udpRecvBufferSize);
        } catch {
          // the kernel's limit applies
        }
        resolve(socket);
      });
    });
  }

  private listenTcp(port: number): Promise<net.Server> {
    const server = net.createServer({ noDelay: true }, (socket) => this.serveTcp(socket));
    server.maxConnections = this.maxTcpConnections;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: this.host, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', () => {});
        resolve(server);
      });
    });
  }

  private serveTcp(socket: net.Socket): void {
    this.connections.add(socket);
    socket.setTimeout(this.tcpIdleTimeoutMs, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => this.connections.delete(socket));
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      let corked = false;
      while (buf.length - offset >= 2) {
        const length = (buf[offset]! << 8) | buf[offset + 1]!;
        if (buf.length - offset - 2 < length) break;
        const msg = buf.subarray(offset + 2, offset + 2 + length);
        offset += 2 + length;
        const out = this.responder.answer(msg, MAX_MESSAGE);
        if (out === undefined) continue;
        if (!corked) {
          socket.cork();
          corked = true;
        }
        const frame = Buffer.allocUnsafe(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        socket.write(frame);
      }
      if (corked) socket.uncork();
      // Keep only the incomplete rest (copied, so the big chunk can be freed).
      pending = offset < buf.length ? Buffer.from(buf.subarray(offset)) : undefined;
      // A client that sends without reading: stop reading until it catches up.
      if (socket.writableNeedDrain) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
  }
}
