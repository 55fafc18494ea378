// Where the CLI finds the server, its token and the CA that verifies an https:// server, first
// found wins, field by field: flags (--server, --token, --ca) > environment (GANTRY_SERVER,
// GANTRY_TOKEN, GANTRY_CA) > config file ($GANTRY_CONFIG or ~/.config/gantry/config.json:
// { "server": ..., "token": ..., "ca": "<PEM file>" }) > default server (and Node's CAs).
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const DEFAULT_SERVER = 'http://127.0.0.1:7070';

export interface ClientConfig {
  server: string;
  token?: string;
  /** A PEM file of the CA certificate(s) that verify the server (https://); a relative path in the config file is relative to it. */
  ca?: string;
}

export interface ConfigFlags {
  server?: string;
  token?: string;
  ca?: string;
}

/** A config file that cannot be read or has the wrong shape (a usage problem: exit 2). */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.GANTRY_CONFIG || join(env.HOME || homedir(), '.config', 'gantry', 'config.json');
}

/** The config file's content, {} when there is none. */
export function readConfigFile(path: string): Partial<ClientConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`the config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`the config file ${path} must hold an object like {"server": "...", "token": "..."}`);
  }
  const { server, token, ca } = parsed as Record<string, unknown>;
  for (const [key, value] of Object.entries({ server, token, ca })) {
    if (value !== undefined && typeof value !== 'string') throw new ConfigError(`the config file ${path}: "${key}" must be a string`);
  }
  const out: Partial<ClientConfig> = {};
  if (server) out.server = server as string;
  if (token) out.token = token as string;
  if (ca) out.ca = resolve(dirname(path), ca as string);
  return out;
}

/** "host:7070" → "http://host:7070"; no trailing slash; rejects what is not an http(s) URL. */
export function normalizeServerUrl(server: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `http://${server}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConfigError(`invalid server URL "${server}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`invalid server URL "${server}": expected http:// or https://`);
  return withScheme.replace(/\/+$/, '');
}

export function loadClientConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  // Read the file only when a flag or the environment leaves something to find.
  const needFile = !(flags.server || env.GANTRY_SERVER) || !(flags.token || env.GANTRY_TOKEN) || !(flags.ca || env.GANTRY_CA);
  const file = needFile ? readConfigFile(configPath(env)) : {};
  const server = flags.server || env.GANTRY_SERVER || file.server || DEFAULT_SERVER;
  const token = flags.token || env.GANTRY_TOKEN || file.token;
  const ca = flags.ca || env.GANTRY_CA || file.ca;
  const config: ClientConfig = { server: normalizeServerUrl(server) };
  if (token) config.token = token;
  if (ca) config.ca = ca;
  return config;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${what} ${path}: cannot read it: ${(err as Error).message}`);
  }
}

/**
 * The PEM certificate(s) of a file (a CA bundle, a server certificate and its chain), each
 * checked; `what` names where the path came from in errors ("--ca", "--tls-cert"...).
 */
export function readCertificateFile(path: string, what: string): { pem: string; certificates: X509Certificate[] } {
  const pem = readPem(path, what);
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${what} ${path}: not a PEM certificate file (no "-----BEGIN CERTIFICATE-----" block)`);
  const certificates = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(`${what} ${path}: certificate ${i + 1} cannot be read: ${(err as Error).message}`);
    }
  });
  return { pem, certificates };
}

/** A PEM private key file (unencrypted), checked. */
export function readPrivateKeyFile(path: string, what: string): { pem: string; key: KeyObject } {
  const pem = readPem(path, what);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new ConfigError(`${what} ${path}: the private key is encrypted; give it unencrypted, in a file readable only by the server's user`);
  }
  if (!/-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(pem)) throw new ConfigError(`${what} ${path}: not a PEM private key file (no "-----BEGIN ... PRIVATE KEY-----" block)`);
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch (err) {
    throw new ConfigError(`${what} ${path}: the private key cannot be read: ${(err as Error).message}`);
  }
}

/**
 * Why saving `config` would lose what the config file holds now, worded to follow "the config
 * file <path>": it points at another server, holds another token, or cannot be read. Undefined
 * when saving loses nothing (no file, or the same server with the same token or none).
 */
export function configSaveConflict(config: ClientConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let current: Partial<ClientConfig>;
  try {
    current = readConfigFile(configPath(env));
  } catch (err) {
    return `cannot be read as a config (${(err as Error).message})`;
  }
  const sameServer = (server: string) => {
    try {
      return normalizeServerUrl(server) === normalizeServerUrl(config.server);
    } catch {
      return false;
    }
  };
  if (current.server !== undefined && !sameServer(current.server)) return `points at another server (${current.server})`;
  if (current.token !== undefined && current.token !== config.token) return 'holds another token';
  return undefined;
}

/** Writes the config file (mode 0600, directories created); returns its path. */
export function saveClientConfig(config: ClientConfig, env: NodeJS.ProcessEnv = process.env): string {
  const path = configPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const content: ClientConfig = { server: config.server };
  if (config.token) content.token = config.token;
  if (config.ca) content.ca = resolve(config.ca);
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
  return path;
}
