// Label selector terms as a person writes them in a spec or on the command line.

export type LabelTerm =
  | { key: string; op: 'eq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

/**
 * Parses one selector term as a person writes it: "zone=b", "zone!=b" (not-in with one value),
 * "zone in (a,b)", "zone notin (a,b)", "gpu" (exists), "!gpu" (not exists).
 */
export function parseTerm(text: string): LabelTerm {
  const s = text.trim();
  let m = /^([^\s=!()]+)\s*(=|==|!=)\s*([^\s()]*)$/.exec(s);
  if (m) return m[2] === '!=' ? { key: m[1]!, op: 'notin', values: [m[3]!] } : { key: m[1]!, op: 'eq', value: m[3]! };
  m = /^([^\s=!()]+)\s+(in|notin|not in)\s*\(([^)]*)\)$/i.exec(s);
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '');
    return { key: m[1]!, op: m[2]!.toLowerCase() === 'in' ? 'in' : 'notin', values };
  }
  m = /^(!?)([^\s=!()]+)$/.exec(s);
  if (m) return m[1] ? { key: m[2]!, op: 'notexists' } : { key: m[2]!, op: 'exists' };
  throw new Error(`cannot read label selector "${text}": expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key`);
}

/** Parses a comma-separated selector, commas inside parentheses included: "zone in (a,b), gpu". */
export function parseSelector(text: string): LabelTerm[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.filter((p) => p.trim() !== '').map(parseTerm);
}
