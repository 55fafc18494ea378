// Engine calls on one container that treat "gone" or "not running" as outcomes, not errors.
import type Dockerode from 'dockerode';
import { engineMessage, sleep, statusOf } from './docker-common.js';

/** Resolves true once the container is not running (or gone), false after `ms`. */
export async function waitNotRunning(container: Dockerode.Container, ms: number): Promise<boolean> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      container.wait({ condition: 'not-running', abortSignal: abort.signal }).then(
        () => true,
        (err: unknown) => {
          if (statusOf(err) === 404) return true;
          if (abort.signal.aborted) return false;
          throw err;
        },
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** Sends `signal`; false when the container is gone or not running. */
export async function kill(container: Dockerode.Container, signal: string): Promise<boolean> {
  try {
    await container.kill({ signal });
    return true;
  } catch (err) {
    const status = statusOf(err);
    if (status === 404 || status === 409) return false; // gone or not running
    throw new Error(`cannot send ${signal} to ${container.id}: ${engineMessage(err)}`);
  }
}

/** Removes the container and its anonymous volumes, running or not; done if it is already gone. */
export async function forceRemove(container: Dockerode.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    const status = statusOf(err);
    if (status === 404) return;
    if (status === 409 && /already in progress/i.test(engineMessage(err))) {
      // Someone else is removing it: wait for that to finish.
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        try {
          await container.inspect();
        } catch (e) {
          if (statusOf(e) === 404) return;
        }
      }
    }
    throw new Error(`cannot remove container ${container.id}: ${engineMessage(err)}`);
  }
}
