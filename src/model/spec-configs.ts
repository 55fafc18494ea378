// Where an entry takes its team's configs (versioned documents, services/configs.ts): as files
// (`files: [{ path, config: team/name }]`, the config's text) or as env variables
// (`envFrom: [{ config: team/name }]`, its key-values). `onConfigChange` says what a new version
// does to running instances: a rollout that replaces them (the default), or, for files, the
// file rewritten in place and the instance told: a signal, or an HTTP request to one of its ports.
import { z } from 'zod';
import { portRef, SIGNALS } from './spec-fields.js';
import { secretRef, type FileSpec } from './spec-secrets.js';

export const MAX_ENV_FROM = 16;

export const EnvFrom = z
  .array(z.strictObject({ config: secretRef, version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional() }))
  .max(MAX_ENV_FROM, `at most ${MAX_ENV_FROM} configs`);

export const OnConfigChange = z.union(
  [
    z.literal('restart'),
    z.strictObject({ signal: z.enum(SIGNALS) }),
    z.strictObject({
      hook: z.strictObject({
        port: portRef,
        path: z.string().max(2048).regex(/^\/[\x21-\x7e]*$/, 'expected a path starting with "/" of visible ASCII characters').default('/'),
      }),
    }),
  ],
  { error: 'expected restart, { signal: SIGHUP }, or { hook: { port, path } }' },
);
export type OnConfigChange = z.output<typeof OnConfigChange>;

interface EntryWithConfigs {
  files?: FileSpec[];
  envFrom?: { config: string; version?: number }[];
  onConfigChange?: OnConfigChange;
}

/** One use of a config: its field path, the use (to pin its version), and whether a change of it restarts the instance. */
export interface ConfigPlace {
  entry: string;
  path: (string | number)[];
  use: { config: string; version?: number };
  restarts: boolean;
}

/** Whether a change of a config used as a file is done in place (a signal or hook) rather than by a rollout. */
export function inPlace(entry: EntryWithConfigs): boolean {
  return entry.onConfigChange !== undefined && entry.onConfigChange !== 'restart';
}

/** Every use of a config in the app's entries. Env uses always restart (a process's env cannot change). */
export function configPlaces(spec: { entrypoints: Record<string, EntryWithConfigs> }): ConfigPlace[] {
  const places: ConfigPlace[] = [];
  for (const [entry, entrySpec] of Object.entries(spec.entrypoints)) {
    (entrySpec.envFrom ?? []).forEach((use, i) => places.push({ entry, path: ['entrypoints', entry, 'envFrom', i, 'config'], use, restarts: true }));
    (entrySpec.files ?? []).forEach((file, i) => {
      if (file.config !== undefined) places.push({ entry, path: ['entrypoints', entry, 'files', i, 'config'], use: file as { config: string; version?: number }, restarts: !inPlace(entrySpec) });
    });
  }
  return places;
}

/** The configs (team/name) one entry uses. */
export function entryConfigs(entry: EntryWithConfigs): string[] {
  return [...new Set([...(entry.envFrom ?? []).map((u) => u.config), ...(entry.files ?? []).flatMap((f) => (f.config !== undefined ? [f.config] : []))])];
}
