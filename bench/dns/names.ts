// The benchmark's registry: `entries` entrypoints with `perEntry` endpoints each, two ports
// apiece. Deterministic, so the Gantry child and the dnsmasq config describe the same names.
import type { Endpoint } from '../../src/model/registry.js';

export function benchEndpoints(entries: number, perEntry: number): Endpoint[] {
  const out: Endpoint[] = [];
  for (let e = 0; e < entries; e++) {
    for (let i = 0; i < perEntry; i++) {
      const n = e * perEntry + i;
      out.push({
        id: `i${n}`,
        app: `app${e % 50}`,
        env: 'prod',
        entry: `e${e}`,
        node: `node${n % 20}`,
        address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
        ports: { http: 8000 + i, metrics: 9100 },
        labels: {},
        registeredAt: 0,
        source: 'agent',
      });
    }
  }
  return out;
}

export const entryName = (ep: Pick<Endpoint, 'entry' | 'app' | 'env'>, domain: string) => `${ep.entry}.${ep.app}.${ep.env}.${domain}`;
