// What the image commands of image-commands.ts do. Loaded when one of them runs.
import type { Command } from 'commander';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, print, renderJson, renderTable } from './output.js';
import { readSecret } from './secret-input.js';

export async function registryLogin(host: string, _opts: unknown, cmd: Command): Promise<void> {
  const { username, passwordStdin } = options<{ username: string; passwordStdin?: boolean }>(cmd);
  const password = await readSecret(passwordStdin ? 'stdin' : `password for ${username}@${host}: `);
  if (password === '') fail(EXIT.usage, 'no password given');
  const { registry } = await clientFor(cmd).registryLogin(host, username, password);
  print(`credentials for ${registry.host} stored (user ${registry.username}); the server keeps the password encrypted and never shows it`);
}

export async function registryLogout(host: string, _opts: unknown, cmd: Command): Promise<void> {
  const { removed } = await clientFor(cmd).registryLogout(host);
  print(`credentials for ${removed} removed`);
}

export async function listRegistries(_opts: unknown, cmd: Command): Promise<void> {
  const { registries } = await clientFor(cmd).registries();
  if (options(cmd).output === 'json') return print(renderJson(registries));
  if (registries.length === 0) return print('no registry credentials stored (gantry registry login <host>)');
  const now = Date.now();
  print(renderTable(['HOST', 'USER', 'UPDATED', 'BY'], registries.map((r) => [r.host, r.username, formatTime(r.updatedAt, now), r.updatedBy])));
}

export async function prepullImages(app: string, _opts: unknown, cmd: Command): Promise<void> {
  const { timeout, output } = options<{ timeout: string; output?: string }>(cmd);
  const { nodes } = await clientFor(cmd).prepull(app, timeout);
  if (output === 'json') return print(renderJson(nodes));
  if (nodes.length === 0) return print(`no ready node may run app ${app}'s images (or it runs none)`);
  const failed = nodes.filter((n) => n.error || n.results?.some((r) => r.error));
  print(renderTable(['NODE', 'OUTCOME'], nodes.map((n) => [n.node, n.error ?? n.results!.map((r) => (r.error ? `${r.image}: ${r.error}` : `${r.image}: ready (${(r.ms / 1000).toFixed(1)}s)`)).join('; ')])));
  if (failed.length > 0) fail(EXIT.api, `${failed.length} of ${nodes.length} node(s) could not pull`);
}
