// Values the server must keep but never show (registry passwords; team secrets later) are
// sealed with AES-256-GCM before they reach the store: a copy of the store, a backup or a
// store admin sees only ciphertext. The key lives outside the store: in GANTRY_SECRET_KEY
// (base64 of 32 bytes) or a 0600 file (default <data dir>/secret.key, made on first start).
// Every server of one cluster needs the same key. A sealed value names the key it was sealed
// with (an id derived from the key, not the key), so a server with another key says so instead
// of failing obscurely; and it is bound to where it is stored (the additional data), so a
// ciphertext copied into another record does not open there.
//
// Key rotation: the previous keys (GANTRY_SECRET_KEY_PREVIOUS, or the file beside the key named
// `<key file>.previous`, one base64 key per line) still open what they sealed; new values are
// always sealed with the current key, and `gantry secret rotate-key` re-seals the old ones, after
// which the previous keys can go.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { makePrivate, writePrivateFileAtomic } from '../host/private-files.js';
import type { Sealed } from '../model/types.js';

export type { Sealed };

const KEY_BYTES = 32;

export class SecretBox {
  readonly keyId: string;
  /** Keys that only open, by id. */
  private readonly previous = new Map<string, Buffer>();

  constructor(private readonly key: Buffer, previous: Buffer[] = []) {
    if (key.length !== KEY_BYTES) throw new Error(`the secret key must be ${KEY_BYTES} bytes (it has ${key.length})`);
    this.keyId = keyIdOf(key);
    for (const old of previous) {
      if (old.length !== KEY_BYTES) throw new Error(`a previous secret key must be ${KEY_BYTES} bytes (one has ${old.length})`);
      if (keyIdOf(old) !== this.keyId) this.previous.set(keyIdOf(old), old);
    }
  }

  /** Whether `sealed` was sealed with the current key (else rotate-key re-seals it). */
  isCurrent(sealed: Sealed): boolean {
    return sealed.key === this.keyId;
  }

  /** The ids of the keys this box opens with besides the current one. */
  previousKeyIds(): string[] {
    return [...this.previous.keys()];
  }

  /**
   * The key from GANTRY_SECRET_KEY when set, else from `file`, which is made (32 random bytes,
   * base64, 0600) when it does not exist yet.
   */
  static load(file: string, env: NodeJS.ProcessEnv = process.env): SecretBox {
    const previous = previousKeys(`${file}.previous`, env);
    const fromEnv = env.GANTRY_SECRET_KEY;
    if (fromEnv !== undefined && fromEnv !== '') return new SecretBox(decodeKey(fromEnv, 'GANTRY_SECRET_KEY'), previous);
    if (!existsSync(file)) writePrivateFileAtomic(file, `${randomBytes(KEY_BYTES).toString('base64')}\n`);
    makePrivate(file);
    return new SecretBox(decodeKey(readFileSync(file, 'utf8'), file), previous);
  }

  /**
   * A key for another purpose (the CSRF values of browser sessions), derived from the current
   * key so that every server of the cluster derives the same one without another file.
   */
  derivedKey(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`gantry derived key: ${purpose}`).digest();
  }

  /** `context`: where the value is stored (e.g. its store key); opening needs the same. */
  seal(plaintext: string, context: string): Sealed {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { key: this.keyId, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
  }

  /** Throws when it was sealed with another key, for another place, or was changed. */
  open(sealed: Sealed, context: string): string {
    const key = sealed.key === this.keyId ? this.key : this.previous.get(sealed.key);
    if (!key) {
      throw new Error(`sealed with key ${sealed.key}, but this server has key ${this.keyId}${this.previous.size > 0 ? ` (and previous keys ${this.previousKeyIds().join(', ')})` : ''}: every server of a cluster needs the same secret key (docs/operations.md)`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(`a sealed value stored at ${context} does not open: it was changed or belongs elsewhere`);
    }
  }
}

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** From GANTRY_SECRET_KEY_PREVIOUS (keys separated by commas or spaces) and the `.previous` file (0600, one key per line). */
function previousKeys(file: string, env: NodeJS.ProcessEnv): Buffer[] {
  const keys: Buffer[] = [];
  const fromEnv = env.GANTRY_SECRET_KEY_PREVIOUS;
  if (fromEnv) for (const text of fromEnv.split(/[\s,]+/).filter(Boolean)) keys.push(decodeKey(text, 'GANTRY_SECRET_KEY_PREVIOUS'));
  if (existsSync(file)) {
    makePrivate(file);
    for (const line of readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) keys.push(decodeKey(line, file));
  }
  return keys;
}

function decodeKey(text: string, where: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${where}: expected the base64 of ${KEY_BYTES} random bytes (e.g. openssl rand -base64 32)`);
  return key;
}
