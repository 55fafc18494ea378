// Seeded tie-breaking: the only randomness of the scheduler. A node's rank for a request is a hash
// of (node name, entry, seed), so equal nodes are ordered the same way for the same seed.

/** FNV-1a, 32 bits. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < s.length; k++) {
    h ^= s.charCodeAt(k);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3 finaliser: a well-mixed 32-bit value. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

export function salt(seed: number, key: string): number {
  return mix32((hashString(key) ^ mix32((seed + 0x9e3779b9) >>> 0)) >>> 0);
}

export const rank = (nameHash: number, saltValue: number): number => mix32((nameHash ^ saltValue) >>> 0);
