// Reads an operator's YAML file (the inspection policy, the alert rules) against its schema. A
// bad file stops the server: every problem names the field and its line, so the operator fixes
// the file instead of running with settings they did not mean.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { SpecError, formatPath } from '../model/spec.js';

/** The text of an operator's file, at most `maxBytes`; a file that cannot be read or is too big stops the server, naming it. */
export function readOperatorFile(file: string, what: string, maxBytes: number): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecError([{ path: '', message: `cannot read the ${what}: ${(err as Error).message}` }], file);
  }
  if (text.length > maxBytes) throw new SpecError([{ path: '', message: `larger than ${maxBytes / 1024} KiB` }], file);
  return text;
}

export function parseYamlFile<S extends z.ZodType>(text: string, source: string, schema: S): z.output<S> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number) => `line ${lines.linePos(offset).line}`;
  if (doc.errors.length > 0) {
    throw new SpecError(doc.errors.slice(0, 5).map((e) => ({ path: lineOf(e.pos[0]), message: e.message.split('\n')[0]! })), source);
  }
  let decoded: unknown;
  try {
    decoded = doc.toJS({ maxAliasCount: 10 }) ?? {};
  } catch (err) {
    throw new SpecError([{ path: '', message: (err as Error).message.split('\n')[0]! }], source);
  }
  const parsed = schema.safeParse(decoded);
  if (parsed.success) return parsed.data;
  throw new SpecError(
    parsed.error.issues.map((issue) => {
      // The deepest node of the path that exists in the document says where the problem is.
      const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
      let node: unknown;
      for (let depth = path.length; depth >= 0 && !node; depth--) node = doc.getIn(path.slice(0, depth) as string[], true);
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      const where = range ? ` (${lineOf(range[0])})` : '';
      // zod says only "Invalid key in record"; the key's own issue says what a key must be.
      const message = issue.code === 'unrecognized_keys' ? 'unknown field' : issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
      return { path: `${formatPath(path as PropertyKey[]) || '(root)'}${where}`, message };
    }),
    source,
  );
}
