// Where an entry takes values it must not hold itself: an env variable or a file whose content
// is a team's secret (`{ secret: shop/db-password }`). The spec, its releases and their diffs
// hold only the reference and the secret's version when the release was made; the value
// travels from the server to the node that runs the instance, at start.
import { z } from 'zod';
import { NAME } from './names.js';
import { LIMITS, text } from './spec-fields.js';

/** `team/name`: both parts are names (lower-case letters, digits, "-"). */
export const SECRET_REF = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const SECRET_REF_RULE = 'team/name: each a name of lower-case letters, digits and "-" (e.g. shop/db-password)';
/** Most files one entry mounts. */
export const MAX_ENTRY_FILES = 32;

export const secretRef = z.string().regex(SECRET_REF, `expected ${SECRET_REF_RULE}`);

/**
 * A use of a secret. `version`: the secret's version when the release was made, set by the
 * server at apply (a release whose only change is this number is a roll to a new value).
 */
export const SecretUse = z.strictObject({
  secret: secretRef,
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});
export type SecretUse = z.output<typeof SecretUse>;

/** An env value: text (numbers and booleans as text), or a secret's value. */
export const EnvValue = z.union([text(LIMITS.envValueLength), z.number(), z.boolean(), SecretUse], {
  error: (issue) => (issue.code === 'invalid_union' && issue.errors.every((e) => e.length === 1 && e[0]?.code === 'invalid_type') ? 'expected a string, a number, a boolean, or { secret: team/name }' : undefined),
}).transform((v) => (typeof v === 'object' ? v : String(v)));

const FILE_MODE = /^0?[0-7]{3}$/;

/**
 * A file put into each instance: at `path` in the container (docker), or under the instance's
 * `GANTRY_FILES` directory (process). Read-only, `mode` as an octal string (default "0400").
 * Its content is a team secret's value (`secret`) or a team config's text (`config`).
 */
export const FileSpec = z.strictObject({
  path: text(LIMITS.pathLength)
    .startsWith('/', 'expected an absolute path')
    .refine((p) => !p.split('/').includes('..') && !p.endsWith('/'), 'expected a file path without ".." segments or a trailing "/"'),
  secret: secretRef.optional(),
  config: secretRef.optional(),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  /** A string, never a number: YAML reads 0400 as four hundred. Kept as written ("0440"), read as octal by the agent. */
  mode: z.string().regex(FILE_MODE, 'expected an octal mode as a string, e.g. "0400" or "0444"').transform((m) => m.padStart(4, '0')).default('0400'),
});
export type FileSpec = z.output<typeof FileSpec>;

export const entryFiles = z
  .array(FileSpec)
  .max(MAX_ENTRY_FILES, `at most ${MAX_ENTRY_FILES} files`)
  .superRefine((files, ctx) => {
    const seen = new Map<string, number>();
    files.forEach((file, i) => {
      if ((file.secret === undefined) === (file.config === undefined)) ctx.addIssue({ code: 'custom', message: 'exactly one of secret or config (team/name) is required', path: [i] });
      const first = seen.get(file.path);
      if (first !== undefined) ctx.addIssue({ code: 'custom', message: `duplicate file path (also files[${first}])`, path: [i, 'path'] });
      else seen.set(file.path, i);
    });
  });

/** One place in a spec that uses a secret: its field path and the use itself (to pin its version). */
export interface SecretPlace {
  path: (string | number)[];
  use: { secret: string; version?: number };
}

interface EntryWithSecrets {
  env: Record<string, string | SecretUse>;
  files?: FileSpec[];
}

/** Every use of a secret in the app's entries: env values first, then files, in spec order. */
export function secretPlaces(spec: { entrypoints: Record<string, EntryWithSecrets> }): SecretPlace[] {
  const places: SecretPlace[] = [];
  for (const [entry, entrySpec] of Object.entries(spec.entrypoints)) {
    for (const [variable, value] of Object.entries(entrySpec.env)) {
      if (typeof value !== 'string') places.push({ path: ['entrypoints', entry, 'env', variable], use: value });
    }
    (entrySpec.files ?? []).forEach((file, i) => {
      if (file.secret !== undefined) places.push({ path: ['entrypoints', entry, 'files', i, 'secret'], use: file as { secret: string; version?: number } });
    });
  }
  return places;
}

/** The secrets (team/name) one entry uses. */
export function entrySecrets(entry: EntryWithSecrets): string[] {
  const refs = new Set<string>();
  for (const value of Object.values(entry.env)) if (typeof value !== 'string') refs.add(value.secret);
  for (const file of entry.files ?? []) if (file.secret !== undefined) refs.add(file.secret);
  return [...refs];
}

/** `team/name` of a secret. */
export function secretRefOf(team: string, name: string): string {
  return `${team}/${name}`;
}

/** Whether a string is a name (the second part of a reference checked on its own). */
export function isSecretName(value: string): boolean {
  return NAME.test(value);
}
