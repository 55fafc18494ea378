// The token this agent connects with. A node started with a join token is given an agent token
// of its own on its first connection; it is kept in the agent's data directory (0600) and used
// from then on, so the join token can expire, and a stolen join token cannot speak for this node.
// To join again (e.g. after the node's token was revoked), remove the file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir, makePrivate, writePrivateFileAtomic } from '../host/private-files.js';

export const SAVED_TOKEN_FILE = 'agent-token';

export class AgentCredentials {
  private token: string;
  readonly source: 'given' | 'saved';

  constructor(private readonly dir: string, given: string) {
    const saved = readSaved(join(dir, SAVED_TOKEN_FILE));
    this.token = saved ?? given;
    this.source = saved ? 'saved' : 'given';
  }

  get current(): string {
    return this.token;
  }

  /** Keeps the token the server gave this node; false (and the old token kept in memory too) when it cannot be written. */
  save(token: string): boolean {
    this.token = token;
    try {
      ensurePrivateDir(this.dir);
      writePrivateFileAtomic(join(this.dir, SAVED_TOKEN_FILE), `${token}\n`);
      return true;
    } catch {
      return false;
    }
  }
}

function readSaved(path: string): string | undefined {
  try {
    makePrivate(path);
    const token = readFileSync(path, 'utf8').trim();
    return token || undefined;
  } catch {
    return undefined;
  }
}

/** Reads a token from a file given on the command line (so it never shows in `ps`). */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`--token-file ${path}: ${(err as Error).message}`);
  }
  const token = text.trim();
  if (!token || /\s/.test(token)) throw new Error(`--token-file ${path}: expected one token on one line`);
  return token;
}
