// Untrusted spec input, bounded before anyone spends time on it. An app spec is a few KiB of
// shallow YAML or JSON; the server parses whatever a client sends it on the event loop, so text
// or a decoded body that is too large, too deep, too many values or too many aliases is refused
// here, cheaply, and every failure of the YAML library becomes a problem with a position rather
// than an exception the server would answer with a 500.
//
// The YAML library's own safeguards are not enough on their own: it composes nested collections
// recursively (a few hundred thousand brackets take seconds and gigabytes before the stack
// overflows), resolves each alias by walking the whole document, finds duplicate keys by
// comparing every key of a map with every other, and spends microseconds on every token and
// every error. So the text is first run through the library's lexer and CST parser, which are
// iterative, to count tokens and aliases and measure depth; duplicate keys are found here with
// a set.
import { CST, Lexer, Parser, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { SpecProblem } from './spec.js';

/** Largest spec text or decoded spec (counted as compact JSON) accepted. */
export const MAX_SPEC_BYTES = 256 * 1024;
/** Deepest nesting of collections; a real spec needs fewer than ten levels. */
export const MAX_SPEC_DEPTH = 64;
/** Most YAML tokens (scalars, punctuation, line breaks, comments): about 80 KiB of plain YAML. */
export const MAX_SPEC_TOKENS = 30_000;
/** Most values (map values and list items) in a decoded spec: one with 500 env vars has about 550. */
export const MAX_SPEC_NODES = 20_000;
/** Most aliases (`*name`) in the text, and most alias expansions when it is decoded. */
export const MAX_SPEC_ALIASES = 50;
/** Keys that mean something to JavaScript objects: dropped or inherited instead of stored. */
export const RESERVED_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

const RESERVED = new Set(RESERVED_KEYS);

/** A problem about the decoded value, with its path still unformatted. */
export interface ValueProblem {
  path: PropertyKey[];
  message: string;
}

export type SpecText = { ok: true; value: unknown } | { ok: false; problems: SpecProblem[] };

/** Decodes spec text (YAML or JSON), refusing what is too large, too deep or malformed. */
export function decodeSpecText(text: string): SpecText {
  const fail = (message: string, offset?: number): SpecText => ({ ok: false, problems: [{ path: offset === undefined ? '' : position(text, offset), message }] });
  // text.length never exceeds the UTF-8 byte count, so a long string is refused before it is encoded.
  const bytes = text.length > MAX_SPEC_BYTES ? text.length : Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES) return fail(`the spec is too large: more than ${MAX_SPEC_BYTES} bytes (256 KiB); an app spec is a few KiB`);
  let scan: ReturnType<typeof scanText>;
  try {
    scan = scanText(text);
  } catch (err) {
    return fail(libraryFailure(err));
  }
  if (scan) return fail(scan.message, scan.offset);
  let doc: Document.Parsed;
  // Each YAML error is an Error, whose stack trace costs more than the parsing: a document of
  // nothing but stray brackets would take seconds. Nothing else runs while this is synchronous.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false });
  } catch (err) {
    return fail(libraryFailure(err));
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  const syntax = doc.errors[0];
  if (syntax) return fail(syntax.message.split('\n')[0]!, syntax.pos[0]);
  const badKey = keyProblem(doc);
  if (badKey) return fail(badKey.message, badKey.offset);
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: MAX_SPEC_ALIASES }) };
  } catch (err) {
    return fail(libraryFailure(err));
  }
}

/**
 * One pass of the iterative lexer and CST parser: the offset and reason of the first excess, or
 * of the first error outside a document (a stray bracket), which needs no further parsing.
 */
function scanText(text: string): { offset: number; message: string } | undefined {
  const parser = new Parser();
  let tokens = 0;
  let aliases = 0;
  let scalarNext = false;
  for (const lexeme of new Lexer().lex(text)) {
    const offset = parser.offset;
    for (const token of parser.next(lexeme)) if (token.type === 'error') return { offset: token.offset, message: token.message };
    if (++tokens > MAX_SPEC_TOKENS) return { offset, message: `the spec is too long: more than ${MAX_SPEC_TOKENS} YAML tokens (keys, values, punctuation, line breaks)` };
    // The lexeme after a scalar marker is the scalar's text, whatever character it starts with.
    if (scalarNext) {
      scalarNext = false;
      continue;
    }
    const type = CST.tokenType(lexeme);
    if (type === 'scalar') scalarNext = true;
    if (type === 'alias' && ++aliases > MAX_SPEC_ALIASES) return { offset, message: `too many aliases: more than ${MAX_SPEC_ALIASES}` };
    // The stack holds the document, the open collections and at most a scalar or two on top.
    if (parser.stack.length > MAX_SPEC_DEPTH + 1) {
      const depth = parser.stack.filter((token) => COLLECTIONS.has(token.type)).length;
      if (depth > MAX_SPEC_DEPTH || parser.stack.length > 2 * MAX_SPEC_DEPTH) return { offset, message: `nested too deeply: more than ${MAX_SPEC_DEPTH} levels` };
    }
  }
  return undefined;
}

const COLLECTIONS = new Set<string>(['block-map', 'block-seq', 'flow-collection']);

/** The offset of the first key that repeats an earlier key of its map, as YAML's uniqueKeys would find it. */
/**
 * The first duplicate key, or key that is a collection (`? [a, b]: x`): a spec's keys are names,
 * and the library would turn a collection key into a string with a process warning per key (a
 * client could fill the server's log with them).
 */
function keyProblem(doc: Document.Parsed): { offset: number; message: string } | undefined {
  const pending: unknown[] = [doc.contents];
  while (pending.length > 0) {
    const node = pending.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        if (isScalar(pair.key)) {
          if (seen.has(pair.key.value)) return { offset: pair.key.range?.[0] ?? 0, message: 'Map keys must be unique' };
          seen.add(pair.key.value);
        } else if (pair.key !== null && pair.key !== undefined) {
          const range = (pair.key as { range?: [number, number, number] }).range;
          return { offset: range?.[0] ?? 0, message: 'keys must be plain names, not lists or maps' };
        }
        pending.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) pending.push(isPair(item) ? item.value : item);
    }
  }
  return undefined;
}

function libraryFailure(err: unknown): string {
  if (err instanceof RangeError) return `nested too deeply for the YAML parser (${err.message})`;
  if (err instanceof Error && /alias count/i.test(err.message)) return `aliases expand to too much data: more than ${MAX_SPEC_ALIASES} alias expansions`;
  return `cannot read the YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
}

/** "line L, column C" of an offset, both counted from 1 as YAML's own errors count them. */
function position(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) {
    line += 1;
    start = at + 1;
  }
  return `line ${line}, column ${offset - start + 1}`;
}

/**
 * Bounds an already-decoded spec (a JSON body, or what the YAML decoded to) the same way as
 * its text, and refuses reserved keys anywhere in it. Iterative: a body nested a million levels
 * deep must not overflow the stack. Problems come in document order.
 */
export function valueProblems(input: unknown): ValueProblem[] {
  interface Frame {
    value: unknown;
    depth: number;
    key?: string | number;
    parent?: Frame;
  }
  const pathOf = (frame: Frame | undefined): PropertyKey[] => {
    const path: PropertyKey[] = [];
    for (let at = frame; at?.key !== undefined; at = at.parent) path.push(at.key);
    return path.reverse();
  };
  const tooLarge = (): ValueProblem[] => [{ path: [], message: `the spec is too large: more than ${MAX_SPEC_BYTES} bytes (256 KiB) as JSON; an app spec is a few KiB` }];
  const problems: ValueProblem[] = [];
  const pending: Frame[] = [{ value: input, depth: 0 }];
  let size = 0;
  let nodes = 0;
  while (pending.length > 0) {
    const frame = pending.pop()!;
    const { value } = frame;
    nodes += 1;
    if (typeof value === 'string') size += value.length + 3;
    else if (Array.isArray(value) || isPlainObject(value)) {
      const depth = frame.depth + 1;
      if (depth > MAX_SPEC_DEPTH) return [{ path: pathOf(frame), message: `nested too deeply: more than ${MAX_SPEC_DEPTH} levels` }];
      const keys = Array.isArray(value) ? undefined : Object.keys(value);
      const count = keys ? keys.length : (value as unknown[]).length;
      if (nodes + pending.length + count > MAX_SPEC_NODES) return [{ path: [], message: `the spec is too long: more than ${MAX_SPEC_NODES} values` }];
      size += 2;
      for (let i = count - 1; i >= 0; i -= 1) {
        const key = keys ? keys[i]! : i;
        if (typeof key === 'string') size += key.length + 3;
        pending.push({ value: (value as Record<string | number, unknown>)[key], depth, key, parent: frame });
      }
      if (keys) for (const key of keys) if (RESERVED.has(key)) problems.push({ path: [...pathOf(frame), key], message: `"${key}" is a reserved name: use another key` });
    } else size += String(value).length + 1;
    if (size > MAX_SPEC_BYTES) return tooLarge();
  }
  return problems;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}
