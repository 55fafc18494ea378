// An instance's env and files with the team secrets and configs its spec names filled in, from
// what the server sent this node. A value that has not come is an error that names it: the start
// fails (and is tried again, with backoff) rather than run without it.
import type { Instance } from '../model/types.js';
import type { RunFile } from '../runtime/instance-files.js';

export interface NodeValueLookup {
  secret?(ref: string): string | undefined;
  config?(ref: string): { text?: string; values?: Record<string, string> } | undefined;
}

export function resolveValues(instance: Instance, lookup: NodeValueLookup): { env: Record<string, string>; files: RunFile[] } {
  const missing = (what: string, ref: string): never => {
    throw new Error(`${what} ${ref} has not reached this node yet (the server sends it with the instance's assignment)`);
  };
  const secretOf = (ref: string) => lookup.secret?.(ref) ?? missing('the value of secret', ref);
  const configOf = (ref: string) => lookup.config?.(ref) ?? missing('config', ref);
  const env: Record<string, string> = {};
  // Configs' key-values first: the entry's own env wins over them.
  for (const { config } of instance.spec.envFrom ?? []) Object.assign(env, configOf(config).values ?? {});
  for (const [name, value] of Object.entries(instance.spec.env)) env[name] = typeof value === 'string' ? value : secretOf(value.secret);
  const files = (instance.spec.files ?? []).map((file) => ({
    path: file.path,
    content: file.secret !== undefined ? secretOf(file.secret) : (configOf(file.config!).text ?? ''),
    mode: parseInt(file.mode, 8),
  }));
  return { env, files };
}
