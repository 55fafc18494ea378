// The protocol part of Gantry's DNS server (dns.ts), without sockets: turns a query message
// into a response message. Authoritative for `domain` only (REFUSED elsewhere, RA=0),
// NXDOMAIN/NODATA with an SOA, FORMERR for malformed queries, EDNS(0) with the client's UDP
// size, TC when an answer does not fit.
//
// The per-query path does no record work: the source is turned into an index (dns-index.ts)
// once, each change of the source is applied to the names it touches, each (node, type) answer
// is encoded once on first use, and a query only copies that message, patches id, flags and
// the question (so the answer keeps the question's case) and appends an OPT.
import type { EndpointChange, EndpointSource } from './source.js';
import { DnsIndex } from './dns-index.js';
import {
  BADVERS,
  C_ANY,
  C_IN,
  MAX_MESSAGE,
  OPT_LENGTH,
  PARSE_DROP,
  PARSE_OK,
  RCODE,
  T_AXFR,
  T_IXFR,
  T_OPT,
  flags2,
  flags3,
  isName,
  parseQuery,
  wireKey,
  type ParsedQuery,
} from './dns-wire.js';

export interface DnsResponderOptions {
  domain?: string;
  ttl?: number;
  maxUdpSize?: number;
}

/**
 * The protocol part of the server, without sockets: turns a query message into a response
 * message (or undefined: drop). Keeps an index of the source, built in full when it starts
 * following the source (or is told to rebuild) and updated per change after that.
 */
export class DnsResponder {
  readonly domain: string;
  readonly ttl: number;
  readonly maxUdpSize: number;
  private readonly domainKey: string;
  private readonly index: DnsIndex;
  /** The index does not reflect the source: build it in full before it is used. */
  private dirty = true;
  private rebuildScheduled = false;
  private readonly parsed: ParsedQuery = { questionEnd: 12, nameEnd: 12, qtype: 0, qclass: 0, ednsSize: -1, ednsVersion: 0, dnssecOk: false };
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly source: EndpointSource, options: DnsResponderOptions = {}) {
    const domain = (options.domain ?? 'gantry.local').toLowerCase().replace(/^\.+|\.+$/g, '');
    if (!isName(domain)) throw new Error(`invalid DNS domain: ${JSON.stringify(options.domain)}`);
    this.domain = domain;
    this.domainKey = wireKey(domain);
    this.ttl = Math.max(0, Math.floor(options.ttl ?? 5));
    this.maxUdpSize = Math.min(MAX_MESSAGE, Math.max(512, Math.floor(options.maxUdpSize ?? 1232)));
    this.index = new DnsIndex(this.domain, this.ttl);
    this.open();
  }

  /** Follows the source's changes (done by the constructor; again after close()). */
  open(): void {
    if (this.unsubscribe) return;
    this.dirty = true;
    this.unsubscribe = this.source.subscribe((revision, changes) => this.apply(revision, changes));
  }

  /** Stops following the source; answer() still works (from a fresh read of the source). */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.dirty = true;
  }

  /** Rebuilds the name index from the whole source. Encoded answers are made again on demand. */
  rebuild(): void {
    this.dirty = false;
    this.index.build(this.source.entries(), this.source.revision);
  }

  /** Applies one change of the source to the names it touches. */
  private apply(revision: number, changes: readonly EndpointChange[]): void {
    if (!this.dirty) {
      this.index.apply(changes, revision);
      return;
    }
    // Not built yet: build in full soon, off the query path (a query arriving first builds).
    if (this.rebuildScheduled) return;
    this.rebuildScheduled = true;
    setImmediate(() => {
      this.rebuildScheduled = false;
      if (this.dirty && this.unsubscribe) this.rebuild();
    }).unref();
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

    const encoded = this.index.encoded(node, qtype);

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
    const tail = this.index.soaTail;
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
}
