// Label selectors: equals, in, not-in, exists (and not-exists). Each failing term names itself in
// the words the reasons use: "label zone!=b", "label zone not in (a,b)", "label zone in (a,b)",
// "no label gpu", "label gpu present".
import type { LabelSelector, LabelTerm } from './types.js';

export function selectorTerms(selector: LabelSelector | undefined): LabelTerm[] {
  if (!selector) return [];
  if (Array.isArray(selector)) return selector;
  return Object.entries(selector).map(([key, value]) => ({ key, op: 'eq' as const, value }));
}

export function termHolds(term: LabelTerm, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, term.key);
  switch (term.op) {
    case 'eq':
      return has && labels[term.key] === term.value;
    case 'in':
      return has && term.values.includes(labels[term.key]!);
    case 'notin':
      return !has || !term.values.includes(labels[term.key]!);
    case 'exists':
      return has;
    case 'notexists':
      return !has;
  }
}

/** The cause text for a term a node fails. */
export function termCause(term: LabelTerm): string {
  switch (term.op) {
    case 'eq':
      return `label ${term.key}!=${term.value}`;
    case 'in':
      return `label ${term.key} not in (${term.values.join(',')})`;
    case 'notin':
      return `label ${term.key} in (${term.values.join(',')})`;
    case 'exists':
      return `no label ${term.key}`;
    case 'notexists':
      return `label ${term.key} present`;
  }
}

/** The first term a node's labels fail, or undefined when all hold. */
export function failingTerm(terms: readonly LabelTerm[], labels: Record<string, string>): LabelTerm | undefined {
  for (const t of terms) if (!termHolds(t, labels)) return t;
  return undefined;
}

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
