// What the commands of secret-commands.ts do. Loaded when one of them runs.
import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { SECRET_REF, SECRET_REF_RULE } from '../model/spec-secrets.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, print, printError, renderJson, renderTable } from './output.js';
import { readSecret } from './secret-input.js';

const MAX_VALUE_BYTES = 64 * 1024;

function parseRef(ref: string): { team: string; name: string } {
  if (!SECRET_REF.test(ref)) fail(EXIT.usage, `"${ref.slice(0, 200)}" is not a secret: expected ${SECRET_REF_RULE}`);
  const [team, name] = ref.split('/') as [string, string];
  return { team, name };
}

async function readValue(fromFile: string | undefined, ref: string): Promise<string> {
  if (fromFile !== undefined) {
    const size = (await stat(fromFile).catch((err: Error) => fail(EXIT.usage, `--from-file ${fromFile}: ${err.message}`))).size;
    if (size > MAX_VALUE_BYTES) fail(EXIT.usage, `--from-file ${fromFile}: ${size} bytes; a secret holds at most 64 KiB`);
    return readFile(fromFile, 'utf8');
  }
  return readSecret(process.stdin.isTTY ? `value of ${ref}: ` : 'stdin', MAX_VALUE_BYTES);
}

export async function setSecret(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const { fromFile, roll } = options<{ fromFile?: string; roll?: boolean }>(cmd);
  const { team, name } = parseRef(ref);
  const value = await readValue(fromFile, ref);
  if (value === '') fail(EXIT.usage, 'no value given (an empty secret is refused)');
  const { secret, rolled, waiting, failed } = await clientFor(cmd).setSecret(team, name, value, roll === true);
  print(`secret ${ref} set (version ${secret.version})`);
  if (secret.usedBy.length === 0) return;
  if (rolled) {
    if (rolled.length === 0 && (failed ?? []).length === 0 && (waiting ?? []).length === 0) print(`used by ${secret.usedBy.join(', ')}: nothing to roll`);
    return reportRolls(rolled, failed, waiting);
  }
  print(`used by ${secret.usedBy.join(', ')}: running instances keep the value they started with; gantry secret set ${ref} --roll restarts them with the new one`);
}

export async function getSecret(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const { team, name } = parseRef(ref);
  const { value } = await clientFor(cmd).secret(team, name);
  process.stdout.write(process.stdout.isTTY && !value.endsWith('\n') ? `${value}\n` : value);
}

export async function listSecrets(team: string, _opts: unknown, cmd: Command): Promise<void> {
  const { secrets } = await clientFor(cmd).secrets(team);
  if (options(cmd).output === 'json') return print(renderJson(secrets));
  if (secrets.length === 0) return print(`team ${team} has no secrets (gantry secret set ${team}/<name>)`);
  const now = Date.now();
  print(renderTable(['NAME', 'VERSION', 'UPDATED', 'BY', 'USED BY'], secrets.map((s) => [`${s.team}/${s.name}`, s.version, formatTime(s.updatedAt, now), s.updatedBy, s.usedBy.join(', ') || '-'])));
}

export async function removeSecret(ref: string, _opts: unknown, cmd: Command): Promise<void> {
  const { team, name } = parseRef(ref);
  const { removed } = await clientFor(cmd).removeSecret(team, name);
  print(`secret ${removed} removed`);
}

export async function rotateKey(_opts: unknown, cmd: Command): Promise<void> {
  const { key, secrets, registryLogins } = await clientFor(cmd).rotateSecretKey();
  print(`${secrets} secret(s) and ${registryLogins} registry password(s) sealed again with key ${key}; once every server runs with this key, the previous keys can go`);
}

/** What a roll did: the apps now rolling, those waiting for an approval, and those that could not be (the command then exits 1). */
export function reportRolls(rolled: { app: string; release: number }[], failed: { app: string; error: string }[] = [], waiting: { app: string; message: string }[] = []): void {
  if (rolled.length > 0) print(`rolling: ${rolled.map((r) => `${r.app} (release ${r.release})`).join(', ')}`);
  for (const { app, message } of waiting) print(`${app}: ${message}`);
  for (const { app, error } of failed) printError(`not rolled: ${app}: ${error}`);
  if (failed.length > 0) process.exitCode = EXIT.api;
}
