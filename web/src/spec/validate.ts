// Checks a spec in the browser before it is sent: YAML syntax (with line and column), then the
// app spec's JSON Schema (docs/gantry.schema.json, generated from the server's own zod schema),
// with field paths written as the CLI writes them (entrypoints.web.ports[0].host). The server
// still decides: a rule the schema cannot say comes back from the apply with the same paths.
import type { ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
// Compiled from docs/gantry.schema.json at build time (web/spec-validator-plugin.ts): no eval under the CSP.
import validate from 'virtual:spec-validator';
import type { SpecProblem } from '../lib/model';

export interface Checked {
  value?: unknown;
  problems: SpecProblem[];
}

export function checkSpecText(text: string): Checked {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((e) => ({ path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '', message: e.message.split('\n')[0]! })) };
  }
  const value: unknown = doc.toJS();
  if (validate(value)) return { value, problems: [] };
  return { value, problems: problemsOf(validate.errors ?? [], value) };
}

/** Ajv's JSON Pointers as the CLI's paths: a.b[0].c (an index only where the value is an array). */
function formatPointer(pointer: string, root: unknown, extra?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  let node: unknown = root;
  for (const part of parts) {
    if (Array.isArray(node)) out += `[${part}]`;
    else out += out ? `.${part}` : part;
    node = node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined;
  }
  return out;
}

/** The value a JSON Pointer names in `root`. */
function valueAt(pointer: string, root: unknown): unknown {
  let node = root;
  for (const part of pointer.split('/').slice(1)) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return node;
}

/** A value's type as zod names it in "received …". */
function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** Ajv's errors in the words zod gives the CLI where they have the same meaning. */
function messageOf(error: ErrorObject, root: unknown): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return 'unknown field';
    case 'required':
      return 'Invalid input: required, received undefined';
    case 'type':
      return `Invalid input: expected ${String(params.type).replace('integer', 'number')}, received ${typeName(valueAt(error.instancePath, root))}`;
    case 'enum':
      return `Invalid option: expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join('|')}`;
    case 'pattern':
      return `Invalid string: must match pattern ${String(params.pattern)}`;
    case 'minimum':
    case 'exclusiveMinimum':
      return `Too small: expected ${error.keyword === 'minimum' ? '>=' : '>'}${String(params.limit)}`;
    case 'maximum':
    case 'exclusiveMaximum':
      return `Too big: expected ${error.keyword === 'maximum' ? '<=' : '<'}${String(params.limit)}`;
    default:
      return error.message ?? error.keyword;
  }
}

function problemsOf(errors: ErrorObject[], value: unknown): SpecProblem[] {
  // An anyOf failing says only "must match a schema in anyOf": keep it only where nothing more precise was said.
  const precise = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && e.keyword !== 'if');
  const chosen = precise.length > 0 ? precise : errors;
  const seen = new Set<string>();
  const problems: SpecProblem[] = [];
  for (const error of chosen) {
    const params = error.params as Record<string, unknown>;
    const extra = error.keyword === 'additionalProperties' ? String(params.additionalProperty) : error.keyword === 'required' ? String(params.missingProperty) : undefined;
    const problem = { path: formatPointer(error.instancePath, value, extra), message: messageOf(error, value) };
    const key = `${problem.path}: ${problem.message}`;
    if (!seen.has(key)) problems.push(problem), seen.add(key);
  }
  return problems;
}
