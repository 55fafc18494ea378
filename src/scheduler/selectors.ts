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

export { parseSelector, parseTerm } from '../model/selector.js';
