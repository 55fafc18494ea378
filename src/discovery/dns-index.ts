// The name index of Gantry's DNS server (dns.ts): lower-cased wire name → node with its
// A/AAAA/SRV records (and the A/AAAA of SRV targets for the additional section), plus the zone's
// SOA. Built in full once (start, or when the server is told to), then kept current one
// registry key at a time: a change adds or takes away that endpoint's share of the names it
// touches (dns-names.ts) and nothing else, so the work follows the change, not the registry.
//
// The per-query path does no record work: each (node, type) answer is encoded once (with name
// compression) on first use and cached in the node until the node changes; a query only
// copies that message and patches it (dns-responder.ts). A node's records are gathered from
// its endpoints' shares in registry key order, so the answers are the same as a build from
// scratch would give. Answers carrying the SOA (NODATA, the apex) are encoded again once the
// revision, hence the serial, has moved on.
import type { Endpoint } from '../model/registry.js';
import type { EndpointChange } from './source.js';
import { namesOf, type NamePart } from './dns-names.js';
import { C_IN, MessageWriter, T_A, T_AAAA, T_ANY, T_SOA, T_SRV, codecs, wireKey, type Rr } from './dns-wire.js';

/** An encoded answer for one name and type. The question in it is patched per query. */
export interface Encoded {
  buf: Buffer;
  /** Length without the additional section (used when the whole does not fit but the answers do). */
  lengthWithoutAdditional: number;
  /** More records than fit in 64 KiB: always send with TC. */
  overflow: boolean;
  /** The SOA generation it holds, when it holds the SOA (whose serial follows the revision). */
  soa?: number;
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
  /** Endpoints naming it: it exists while this is above zero. */
  refs = 0;
  /** Registry key → the records that endpoint gives this name (endpoints giving some only). */
  readonly parts = new Map<string, NamePart>();
  a: Rr[] = [];
  aaaa: Rr[] = [];
  srv: Rr[] = [];
  /** A/AAAA of SRV targets, for the additional section. */
  extra: Rr[] = [];
  /** The parts changed since the records above were gathered. */
  stale = false;
  readonly encoded: (Encoded | undefined)[] = new Array<Encoded | undefined>(SLOTS).fill(undefined);
  constructor(readonly name: string, readonly apex = false) {}
}

export class DnsIndex {
  private readonly nodes = new Map<string, NameNode>();
  /** Registry key → the wire keys of the names that endpoint touches (to take them away again). */
  private readonly placed = new Map<string, string[]>();
  private serial = -1;
  private soaGeneration = 0;
  private soaRdata: Buffer = Buffer.alloc(0);
  /** type, class, ttl and rdata of the SOA record (the owner is written per use). */
  soaTail: Buffer = Buffer.alloc(0);

  constructor(private readonly domain: string, private readonly ttl: number) {
    this.clear();
  }

  /** Number of names. */
  get size(): number {
    return this.nodes.size;
  }

  /** The node of a lower-cased wire name (see wireKey). */
  get(key: string): NameNode | undefined {
    return this.nodes.get(key);
  }

  /** Replaces everything with `entries` (registry key, endpoint) at `revision`. */
  build(entries: Iterable<readonly [string, Endpoint]>, revision: number): void {
    this.clear();
    for (const [key, endpoint] of entries) this.add(key, endpoint);
    this.setRevision(revision);
  }

  /** Applies the changes of a revision: only the names they touch are updated. */
  apply(changes: readonly EndpointChange[], revision: number): void {
    for (const change of changes) {
      this.remove(change.key);
      if (change.type === 'put') this.add(change.key, change.endpoint);
    }
    this.setRevision(revision);
  }

  /** The encoded response of `node` for `qtype` (encoded on first use, then cached). */
  encoded(node: NameNode, qtype: number): Encoded {
    const slot = qtype === T_A ? S_A : qtype === T_AAAA ? S_AAAA : qtype === T_SRV ? S_SRV : qtype === T_ANY ? S_ANY : qtype === T_SOA ? S_SOA : S_OTHER;
    const cached = node.encoded[slot];
    if (cached !== undefined && (cached.soa === undefined || cached.soa === this.soaGeneration)) return cached;
    return (node.encoded[slot] = this.encode(node, slot));
  }

  private clear(): void {
    this.nodes.clear();
    this.placed.clear();
    const apex = new NameNode(this.domain, true);
    this.nodes.set(wireKey(this.domain), apex);
  }

  private add(key: string, endpoint: Endpoint): void {
    const names = namesOf(endpoint, this.domain);
    if (names.size === 0) return;
    this.placed.set(key, [...names.keys()]);
    for (const [wire, { name, part }] of names) {
      let node = this.nodes.get(wire);
      if (node === undefined) this.nodes.set(wire, (node = new NameNode(name)));
      node.refs++;
      if (part !== undefined) {
        node.parts.set(key, part);
        this.touch(node);
      }
    }
  }

  private remove(key: string): void {
    const wires = this.placed.get(key);
    if (wires === undefined) return;
    this.placed.delete(key);
    for (const wire of wires) {
      const node = this.nodes.get(wire);
      if (node === undefined) continue;
      if (node.parts.delete(key)) this.touch(node);
      if (--node.refs <= 0 && !node.apex) this.nodes.delete(wire);
    }
  }

  private touch(node: NameNode): void {
    node.stale = true;
    node.encoded.fill(undefined);
  }

  /** Gathers a node's records from its parts, in key order, each distinct record once. */
  private gather(node: NameNode): void {
    node.stale = false;
    const a: Rr[] = [];
    const aaaa: Rr[] = [];
    const srv: Rr[] = [];
    const extra: Rr[] = [];
    const addresses = new Set<string>();
    const rdatas = new Set<string>();
    const targets = new Set<string>();
    const keys = [...node.parts.keys()];
    if (keys.length > 1) keys.sort();
    for (const key of keys) {
      const part = node.parts.get(key)!;
      if (part.addressRr !== undefined && !addresses.has(part.address!)) {
        addresses.add(part.address!);
        (part.addressRr.type === T_A ? a : aaaa).push(part.addressRr);
      }
      for (const s of part.srv) {
        if (rdatas.has(s.key)) continue;
        rdatas.add(s.key);
        srv.push(s.rr);
        if (s.targetRr !== undefined && !targets.has(s.rr.target!)) {
          targets.add(s.rr.target!);
          extra.push(s.targetRr);
        }
      }
    }
    Object.assign(node, { a, aaaa, srv, extra });
  }

  /** Encodes the response of `node` for one slot (question written in lower case; patched per query). */
  private encode(node: NameNode, slot: number): Encoded {
    if (node.stale) this.gather(node);
    let answers: Rr[] = [];
    let additional: Rr[] = [];
    if (slot === S_A) answers = node.a;
    else if (slot === S_AAAA) answers = node.aaaa;
    else if (slot === S_SRV) {
      answers = node.srv;
      additional = node.extra;
    } else if (slot === S_ANY) answers = node.apex ? [this.soaRecord()] : [...node.a, ...node.aaaa, ...node.srv];
    else if (slot === S_SOA && node.apex) answers = [this.soaRecord()];
    const withSoa = answers.length === 0 || (node.apex && (slot === S_ANY || slot === S_SOA));
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
    return { buf, lengthWithoutAdditional, overflow, ...(withSoa ? { soa: this.soaGeneration } : {}) };
  }

  private soaRecord(): Rr {
    return { name: this.domain, type: T_SOA, rdata: this.soaRdata };
  }

  private setRevision(revision: number): void {
    const serial = revision >>> 0;
    if (serial === this.serial) return;
    this.serial = serial;
    this.soaGeneration++;
    const domain = this.domain;
    this.soaRdata = codecs.soa.encode({ mname: `ns.${domain}`, rname: `hostmaster.${domain}`, serial, refresh: 3600, retry: 600, expire: 86400, minimum: this.ttl });
    const tail = Buffer.alloc(8 + this.soaRdata.length);
    tail.writeUInt16BE(T_SOA, 0);
    tail.writeUInt16BE(C_IN, 2);
    tail.writeUInt32BE(this.ttl, 4);
    this.soaRdata.copy(tail, 8);
    this.soaTail = tail;
  }
}
