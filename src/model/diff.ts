// A structural diff between two JSON-like values, for "what changed between two releases".

export interface Change {
  /** Dotted path with [i] for array items, e.g. "entrypoints.web.resources.cpu". */
  path: string;
  kind: 'added' | 'removed' | 'changed';
  from?: unknown;
  to?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function diff(from: unknown, to: unknown, path = ''): Change[] {
  if (isObject(from) && isObject(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    return keys.flatMap((key) => {
      const child = path ? `${path}.${key}` : key;
      if (!(key in from) || from[key] === undefined) return to[key] === undefined ? [] : [{ path: child, kind: 'added' as const, to: to[key] }];
      if (!(key in to) || to[key] === undefined) return [{ path: child, kind: 'removed' as const, from: from[key] }];
      return diff(from[key], to[key], child);
    });
  }
  // Lists are compared whole: a command line or a port list reads better as before → after.
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  return [{ path, kind: 'changed', from, to }];
}
