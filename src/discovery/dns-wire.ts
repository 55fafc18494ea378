// Wire-level pieces of Gantry's DNS server (dns.ts): record type and class numbers, rcodes,
// size limits, name checks, the index key of a name, a message writer with name compression,
// response header flags, and the query parser.
//
// The query parser is a small strict one written for the per-query path (dns-packet's decoder
// builds a whole object tree per message); record data is encoded with dns-packet's codecs.
import dnsPacket from 'dns-packet';

// Record types and classes we deal with.
export const T_A = 1;
export const T_NS = 2;
export const T_SOA = 6;
export const T_AAAA = 28;
export const T_SRV = 33;
export const T_OPT = 41;
export const T_IXFR = 251;
export const T_AXFR = 252;
export const T_ANY = 255;
export const C_IN = 1;
export const C_ANY = 255;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const BADVERS = 16;

/** Largest DNS message (TCP framing limit). */
export const MAX_MESSAGE = 65535;
export const OPT_LENGTH = 11;
const MAX_NAME = 255;

// dns-packet's record codecs exist at run time but are not in its typings.
interface RdataCodec<T> {
  encode(data: T, buf?: Buffer, offset?: number): Buffer;
}
export const codecs = dnsPacket as unknown as {
  a: RdataCodec<string>;
  aaaa: RdataCodec<string>;
  srv: RdataCodec<{ priority: number; weight: number; port: number; target: string }>;
  soa: RdataCodec<{ mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }>;
};

/** One resource record to encode: owner name (lower case, dotted), type, rdata with its length prefix. */
export interface Rr {
  name: string;
  type: number;
  rdata: Buffer;
  /** For SRV: the target name and where it starts inside rdata, so later owners can point at it. */
  target?: string;
}

export function isLabel(label: string): boolean {
  if (label.length === 0 || label.length > 63) return false;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x2e) return false;
  }
  return true;
}

export function isName(name: string): boolean {
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
export class MessageWriter {
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
export function flags2(query: Buffer, aa: boolean, tc: boolean): number {
  return 0x80 | (query[2]! & 0x79) | (aa ? 0x04 : 0) | (tc ? 0x02 : 0);
}

/** Header byte 3: the query's CD bit and the rcode. */
export function flags3(query: Buffer, rcode: number): number {
  return (query[3]! & 0x10) | (rcode & 0x0f);
}

/** What the parser found in a query. Reused between queries (the path is synchronous). */
export interface ParsedQuery {
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

export const PARSE_OK = -1;
export const PARSE_DROP = -2;

/**
 * Strict parse of a query. Returns PARSE_OK, PARSE_DROP (not answerable: too short to
 * have an id, or a response), or an rcode to answer with (FORMERR, NOTIMP).
 */
export function parseQuery(msg: Buffer, q: ParsedQuery): number {
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
