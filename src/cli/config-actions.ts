// What the commands of config-commands.ts do. Loaded when one of them runs.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { SECRET_REF } from '../model/spec-secrets.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, print, renderJson, renderTable } from './output.js';
import { readStdin } from './secret-input.js';
import { reportRolls } from './secret-actions.js';

const MAX_BYTES = 256 * 1024;

function parseRef(ref: string): { team: string; name: string } {
  if (!SECRET_REF.test(ref)) fail(EXIT.usage, `"${ref.slice(0, 200)}" is not a config: expected team/name, each lower-case letters, digits and "-" (e.g. shop/nginx-conf)`);
  const [team, name] = ref.split('/') as [string, string];
  return { team, name };
}

/** KEY=VALUE pairs, each checked; `where` names their source in errors. */
function keyValues(lines: string[], where: string): Record<string, string> {
  const values: Record<string, string> = {};
  lines.forEach((line, i) => {
    const at = line.indexOf('=');
    const key = at > 0 ? line.slice(0, at) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) fail(EXIT.usage, `${where}${lines.length > 1 ? ` line ${i + 1}` : ''}: expected KEY=VALUE with KEY letters, digits and "_"`);
    values[key] = line.slice(at + 1);
  });
  return values;
}

async function contentOf(opts: { fromFile?: string; set?: string[]; envFile?: string }): Promise<{ text: string } | { values: Record<string, string> }> {
  const given = [opts.fromFile, opts.set, opts.envFile].filter((o) => o !== undefined).length;
  if (given > 1 && !(opts.set && opts.envFile && !opts.fromFile)) fail(EXIT.usage, '--from-file is a file config; --set and --env-file are key-values: give one kind');
  const read = (file: string) => readFile(file, 'utf8').catch((err: Error) => fail(EXIT.usage, `${file}: ${err.message}`));
  if (opts.fromFile !== undefined) return { text: await read(opts.fromFile) };
  if (opts.set || opts.envFile) {
    const fromFile = opts.envFile === undefined ? {} : keyValues((await read(opts.envFile)).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')), opts.envFile);
    return { values: { ...fromFile, ...Object.assign({}, ...(opts.set ?? []).map((pair) => keyValues([pair], `--set ${pair.slice(0, 100)}`))) } };
  }
  if (process.stdin.isTTY) fail(EXIT.usage, 'give the content: --from-file, --set K=V, --env-file, or pipe it to stdin');
  return { text: await readStdin(MAX_BYTES) };
}

export async function setConfig(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const opts = options<{ fromFile?: string; set?: string[]; envFile?: string; note?: string; app?: string; env?: string }>(cmd);
  const { team, name } = parseRef(ref);
  const scope = { ...(opts.app !== undefined ? { app: opts.app || null } : {}), ...(opts.env !== undefined ? { env: opts.env || null } : {}) };
  const { config, rolled, waiting = [], failed } = await clientFor(cmd).setConfig(team, name, await contentOf(opts), opts.note, scope);
  const only = [config.app && `app ${config.app}`, config.env && `env ${config.env}`].filter(Boolean).join(' in ');
  print(`config ${ref} version ${config.version} stored${only ? ` (for ${only} only)` : ''}`);
  reportRolls(rolled, failed, waiting);
  const inPlace = config.usedBy.filter((app) => ![...rolled, ...waiting, ...failed].some((r) => r.app === app));
  if (inPlace.length > 0) print(`reloaded in place or at next start: ${inPlace.join(', ')}`);
}

export async function getConfig(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const { at: version, output } = options<{ at?: number }>(cmd);
  const { team, name } = parseRef(ref);
  const { config } = await clientFor(cmd).config(team, name, version);
  if (output === 'json') return print(renderJson(config));
  if (config.text !== undefined) return void process.stdout.write(config.text);
  print(Object.entries(config.values ?? {}).map(([k, v]) => `${k}=${v}`).join('\n'));
}

export async function listConfigs(team: string, _opts: unknown, cmd: Command): Promise<void> {
  const { configs } = await clientFor(cmd).configs(team);
  if (options(cmd).output === 'json') return print(renderJson(configs));
  if (configs.length === 0) return print(`team ${team} has no configs (gantry config set ${team}/<name>)`);
  const now = Date.now();
  print(renderTable(['NAME', 'KIND', 'VERSION', 'UPDATED', 'BY', 'USED BY'], configs.map((c) => [`${c.team}/${c.name}`, c.kind, c.version, formatTime(c.updatedAt, now), c.updatedBy, c.usedBy.join(', ') || '-'])));
}

export async function configHistory(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const { team, name } = parseRef(ref);
  const { versions } = await clientFor(cmd).configHistory(team, name);
  if (options(cmd).output === 'json') return print(renderJson(versions));
  const now = Date.now();
  print(renderTable(['VERSION', 'WHEN', 'BY', 'NOTE'], versions.map((v) => [v.version, formatTime(v.updatedAt, now), v.updatedBy, v.note ?? ''])));
}

export async function diffConfig(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const { from, to } = options<{ from: number; to?: number }>(cmd);
  const { team, name } = parseRef(ref);
  const answer = await clientFor(cmd).configDiff(team, name, from, to);
  if (answer.changes.length === 0) return print(`versions ${answer.from} and ${answer.to} are the same`);
  const show = (v: unknown) => (v === undefined ? '' : JSON.stringify(v));
  print(answer.changes.map((c) => (c.kind === 'added' ? `+ ${c.path}: ${show(c.to)}` : c.kind === 'removed' ? `- ${c.path}: ${show(c.from)}` : `~ ${c.path}: ${show(c.from)} → ${show(c.to)}`)).join('\n'));
}

export async function rollbackConfig(ref: string, version: number, _opts: unknown, cmd: Command): Promise<void> {
  const { team, name } = parseRef(ref);
  const { config, rolled, waiting, failed } = await clientFor(cmd).rollbackConfig(team, name, version);
  print(`config ${ref} is back to version ${version}'s content as version ${config.version}`);
  reportRolls(rolled, failed, waiting);
}

export async function removeConfig(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const { team, name } = parseRef(ref);
  const { removed } = await clientFor(cmd).removeConfig(team, name);
  print(`config ${removed} removed`);
}
