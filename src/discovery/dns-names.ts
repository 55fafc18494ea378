// The names of Gantry's DNS zone that one endpoint brings into being, and the records it puts
// at each: a pure function of the endpoint, so the index (dns-index.ts) can add and take away
// one endpoint's share of the zone without looking at any other endpoint.
//
// An endpoint `{id}` of `{entry}.{app}.{env}` (lower-cased) makes these names exist:
//   {env}.{domain}, {app}.{env}.{domain}, _tcp.{entry}...   no records of their own
//   {entry}.{app}.{env}.{domain}                             its address, an SRV per port
//   {id}.{entry}.{app}.{env}.{domain}                        its address (the SRV target)
//   _{port}._tcp.{entry}.{app}.{env}.{domain}                the SRV of that port
// Names or labels DNS cannot carry are skipped, as is an endpoint whose entry name is too long.
import net from 'node:net';
import type { Endpoint } from '../model/registry.js';
import { T_A, T_AAAA, T_SRV, codecs, isLabel, isName, wireKey, type Rr } from './dns-wire.js';

export interface SrvPart {
  rr: Rr;
  /** Two endpoints giving a name the same rdata give it one record. */
  key: string;
  /** The target's own A/AAAA record, for the additional section. */
  targetRr: Rr | undefined;
}

/** What one endpoint gives one name. */
export interface NamePart {
  /** The address as registered (records are kept once per distinct string). */
  address: string | undefined;
  addressRr: Rr | undefined;
  srv: SrvPart[];
}

export interface Placement {
  name: string;
  /** Undefined: the endpoint only makes the name exist. */
  part: NamePart | undefined;
}

/** Lower-cased wire key (see wireKey) → the name and what the endpoint gives it. */
export function namesOf(endpoint: Endpoint, domain: string): Map<string, Placement> {
  const out = new Map<string, Placement>();
  const at = (name: string): Placement => {
    const key = wireKey(name);
    let placed = out.get(key);
    if (placed === undefined) out.set(key, (placed = { name, part: undefined }));
    return placed;
  };
  const partAt = (name: string): NamePart => (at(name).part ??= { address: undefined, addressRr: undefined, srv: [] });

  // The registry may hold anything a store was given: what is not even a string names nothing.
  if (![endpoint.entry, endpoint.app, endpoint.env, endpoint.id, endpoint.address].every((v) => typeof v === 'string')) return out;
  const entry = endpoint.entry.toLowerCase();
  const app = endpoint.app.toLowerCase();
  const env = endpoint.env.toLowerCase();
  const id = endpoint.id.toLowerCase();
  if (!isLabel(entry) || !isLabel(app) || !isLabel(env)) return out;
  const base = `${entry}.${app}.${env}.${domain}`;
  if (base.length > 253) return out;
  at(`${env}.${domain}`);
  at(`${app}.${env}.${domain}`);
  at(base);

  const address = endpoint.address;
  let family: 0 | 4 | 6 = net.isIPv4(address) ? 4 : net.isIPv6(address) && !address.includes('%') ? 6 : 0;
  const addressRr = (name: string): Rr => (family === 4 ? { name, type: T_A, rdata: codecs.a.encode(address) } : { name, type: T_AAAA, rdata: codecs.aaaa.encode(address) });
  if (family !== 0) {
    try {
      const rr = addressRr(base);
      Object.assign(partAt(base), { address, addressRr: rr });
    } catch {
      family = 0; // not encodable after all
    }
  }

  // SRV target: the instance's own name (answered with its address), or a host name address as is.
  const idName = `${id}.${base}`;
  let target: string | undefined;
  let targetRr: Rr | undefined;
  if (isLabel(id) && idName.length <= 253) {
    at(idName);
    if (family !== 0) {
      targetRr = addressRr(idName);
      Object.assign(partAt(idName), { address, addressRr: targetRr });
      target = idName;
    }
  }
  if (target === undefined && family === 0 && isName(address.replace(/\.$/, ''))) target = address.replace(/\.$/, '').toLowerCase();
  if (target === undefined) return out;

  for (const [portName, port] of Object.entries(endpoint.ports ?? {})) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) continue;
    const rdata = codecs.srv.encode({ priority: 0, weight: 10, port, target });
    const key = rdata.toString('latin1');
    partAt(base).srv.push({ rr: { name: base, type: T_SRV, rdata, target }, key, targetRr });
    const service = `_${portName.toLowerCase()}`;
    if (!isLabel(service) || base.length + service.length + 6 > 253) continue;
    at(`_tcp.${base}`);
    const serviceName = `${service}._tcp.${base}`;
    partAt(serviceName).srv.push({ rr: { name: serviceName, type: T_SRV, rdata, target }, key, targetRr });
  }
  return out;
}
