// The company directory's configuration (`gantry server --directory FILE`), read once at start:
// where the LDAP server is, the service account that looks people up, how a person and their
// groups are found, and which groups give which team role or platform role. Every problem names
// the file and the field; the service account's password comes from a 0600 file or an
// environment variable, never from argv or the file itself, and is never shown.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { FilterParser } from 'ldapts';
import { name } from '../../model/names.js';
import { DURATION_PATTERN, parseDuration } from '../../model/units.js';
import { SpecError, problemsFromZod } from '../../model/spec.js';

const duration = (max: number) =>
  z
    .union([z.number().positive(), z.string().regex(DURATION_PATTERN, 'expected a duration such as "5s"')])
    .transform((v) => parseDuration(v)!)
    .refine((ms) => ms >= 100 && ms <= max, `between 100ms and ${max / 1000}s`);

/** A filter with one placeholder: the placeholder's value is escaped (RFC 4515) before it goes in. */
const filterTemplate = (placeholder: string) =>
  z
    .string()
    .min(3)
    .max(1024)
    .refine((f) => f.startsWith('(') && f.endsWith(')'), 'an LDAP filter in parentheses')
    // Literal parentheses inside values are written \28 and \29, so every one here is structure.
    .refine((f) => f.split('(').length === f.split(')').length, 'unbalanced parentheses')
    .refine((f) => f.includes(placeholder), `must contain ${placeholder}`);

const dn = z.string().min(3).max(1024).refine((v) => v.includes('='), 'a distinguished name such as ou=people,dc=example,dc=org');

const Mapping = z
  .strictObject({
    /** The group's DN, or its cn (matched against the first RDN of each of the user's groups). */
    group: z.string().min(1).max(1024),
    team: name('team').optional(),
    role: z.enum(['owner', 'developer', 'viewer']).optional(),
    platformRole: z.enum(['admin', 'operator']).optional(),
  })
  .refine((m) => m.team !== undefined || m.platformRole !== undefined, 'give a team (with a role) or a platformRole')
  .refine((m) => (m.team === undefined) === (m.role === undefined), 'team and role go together');

const DirectoryFile = z.strictObject({
  url: z.string().regex(/^ldaps?:\/\/[^\s/]+\/?$/, 'ldap://host[:port] or ldaps://host[:port]'),
  startTls: z.boolean().default(false),
  /** PEM CA certificate(s) that verify the directory's certificate (ldaps:// or startTls); default: the system's. */
  caFile: z.string().min(1).optional(),
  /** Connecting, and each operation after it. */
  timeout: duration(60_000).default(5000),
  bind: z
    .strictObject({
      dn,
      passwordFile: z.string().min(1).optional(),
      passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').optional(),
    })
    .refine((b) => (b.passwordFile === undefined) !== (b.passwordEnv === undefined), 'give passwordFile or passwordEnv (one of them)'),
  users: z.strictObject({
    base: dn,
    filter: filterTemplate('{user}'),
  }),
  groups: z
    .strictObject({
      /** An attribute of the user's entry that lists their groups' DNs (memberOf). */
      attribute: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, 'an attribute name such as memberOf').optional(),
      search: z.strictObject({ base: dn, filter: filterTemplate('{dn}') }).optional(),
      /** Most groups read for one user. */
      limit: z.number().int().min(1).max(10_000).default(1000),
    })
    .refine((g) => (g.attribute === undefined) !== (g.search === undefined), 'give attribute (e.g. memberOf) or search (one of them)'),
  mapping: z.array(Mapping).max(1000).default([]),
  /** Whether someone the directory knows but who is in no mapped group may sign in (as a member of nothing). */
  allowUnmapped: z.boolean().default(false),
});

export type GroupMapping = z.output<typeof Mapping>;

export interface DirectoryConfig extends Omit<z.output<typeof DirectoryFile>, 'bind' | 'caFile'> {
  bind: { dn: string; password: string };
  /** The CA file's PEM text. */
  ca?: string;
}

/** Reads and checks the file; throws a SpecError naming the file and every bad field. */
export function loadDirectoryConfig(file: string, env: NodeJS.ProcessEnv = process.env): DirectoryConfig {
  let decoded: unknown;
  try {
    decoded = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SpecError([{ path: '', message: (err as Error).message.split('\n')[0]! }], file);
  }
  const parsed = DirectoryFile.safeParse(decoded);
  if (!parsed.success) throw new SpecError(problemsFromZod(parsed.error), file);
  const { bind, caFile, ...rest } = parsed.data;
  const fail = (path: string, message: string) => new SpecError([{ path, message }], file);
  if (rest.startTls && rest.url.startsWith('ldaps:')) throw fail('startTls', 'ldaps:// is TLS from the start: startTls is for ldap://');
  const templates: Array<[string, string | undefined, string]> = [['users.filter', rest.users.filter, '{user}'], ['groups.search.filter', rest.groups.search?.filter, '{dn}']];
  for (const [path, template, placeholder] of templates) {
    if (template === undefined) continue;
    try {
      FilterParser.parseString(template.replaceAll(placeholder, 'x'));
    } catch (err) {
      throw fail(path, `not an LDAP filter: ${(err as Error).message}`);
    }
  }
  let password: string;
  if (bind.passwordEnv !== undefined) {
    const value = env[bind.passwordEnv];
    if (value === undefined || value === '') throw fail('bind.passwordEnv', `the environment variable ${bind.passwordEnv} is not set`);
    password = value;
  } else {
    const path = resolve(dirname(file), bind.passwordFile!);
    try {
      // A password file others can read is a leaked password: refused, not silently used.
      if ((statSync(path).mode & 0o077) !== 0) throw fail('bind.passwordFile', `${path} may be read by others: chmod 600 it`);
      password = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      if (err instanceof SpecError) throw err;
      throw fail('bind.passwordFile', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (password === '') throw fail('bind.passwordFile', `${path} is empty`);
  }
  let ca: string | undefined;
  if (caFile !== undefined) {
    const path = resolve(dirname(file), caFile);
    try {
      ca = readFileSync(path, 'utf8');
    } catch (err) {
      throw fail('caFile', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw fail('caFile', `${path} holds no PEM certificate`);
  }
  return { ...rest, bind: { dn: bind.dn, password }, ...(ca !== undefined ? { ca } : {}) };
}
