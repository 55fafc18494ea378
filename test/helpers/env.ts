// What the tests can reach on this machine. Under CI every real component must be there:
// a missing one fails the test instead of skipping it.
import { accessSync, constants } from 'node:fs';
import Docker from 'dockerode';

export const TEST_IMAGE = process.env.GANTRY_TEST_IMAGE ?? 'gantry/busybox:test';
const inCI = process.env.CI === 'true';

let dockerProbe: Promise<string | undefined> | undefined;

/** undefined when a Docker Engine answers, else the reason it does not. */
export function dockerMissing(): Promise<string | undefined> {
  dockerProbe ??= new Docker()
    .ping()
    .then(() => undefined)
    .catch((err: Error) => `no Docker Engine: ${err.message}`);
  return dockerProbe;
}

/** For `test(name, { skip: await skipWithoutDocker() }, ...)`: skips locally, never in CI. */
export async function skipWithoutDocker(): Promise<string | false> {
  const missing = await dockerMissing();
  if (!missing) return false;
  if (inCI) throw new Error(`CI requires a Docker Engine: ${missing}`);
  return missing;
}

/** Skips when a Debian package's program is missing, except under CI where it must be there. */
export function skipWithoutProgram(program: string, pkg: string): string | false {
  const found = (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(`${dir}/${program}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (found) return false;
  if (inCI) throw new Error(`CI requires ${program} (Debian package ${pkg})`);
  return `${program} not installed (apt-get install ${pkg})`;
}
