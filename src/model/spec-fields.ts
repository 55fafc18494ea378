// The building blocks of the app spec (spec.ts): bounded strings, names, durations, sizes,
// commands and labels, and the upper bound of every value. A spec comes from clients the server
// does not trust, so none of these accepts a value without a maximum.
import { z } from 'zod';
import { parseDuration, parseSize, formatDuration, DURATION_PATTERN, SIZE_PATTERN } from './units.js';
import { LABEL_KEY, LABEL_VALUE, NAME } from './names.js';

/** Upper bounds of spec values, for the docs and the tests as much as for the schema. */
export const LIMITS = {
  replicas: 10_000,
  perNode: 1000,
  maxRetries: 10_000,
  entrypoints: 100,
  envVars: 500,
  /** Linux refuses to exec with an argument or env string over 128 KiB (MAX_ARG_STRLEN); half that in characters leaves room. */
  envValueLength: 64 * 1024,
  argLength: 64 * 1024,
  args: 1000,
  labels: 64,
  ports: 64,
  volumes: 32,
  /** PATH_MAX. */
  pathLength: 4096,
  healthPathLength: 2048,
  imageLength: 1024,
  textLength: 1024,
  /**
   * 64 TiB (2^46 bytes): more than any single host has (the largest servers hold tens of TiB),
   * so a larger limit is a typo; and far below 2^53, where sums of byte counts stop being exact.
   */
  memory: 64 * 1024 ** 4,
} as const;

/** Fixed host ports below this one need privileges; see privilegedHostPorts. */
export const FIRST_UNPRIVILEGED_PORT = 1024;

export const name = (what: string) =>
  z.string().regex(NAME, `${what} must be lower-case letters, digits and '-', starting and ending with a letter or digit (at most 63)`);

/** A string that reaches an exec argument, an env value or a file path, where a NUL would cut it short. */
export const text = (max: number) =>
  z.string().max(max, `at most ${max} characters`).regex(/^[^\0]*$/, 'must not contain NUL (\\0) characters');
/** Image names: Docker references are visible ASCII. */
export const imageName = z.string().min(1).max(LIMITS.imageLength, `at most ${LIMITS.imageLength} characters`).regex(/^[\x21-\x7e]+$/, 'image names are visible ASCII characters: no spaces or control characters');

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/**
 * A duration in ms, at most `max`. Every maximum stays below the 24.8 days a Node timer can wait:
 * setTimeout fires at once beyond 2^31 - 1 ms, and a wait without end (grace: 1e300) hangs
 * whoever waits for it. Issues `continue` so that a union around them (restart) still reports
 * this field rather than its own catch-all message.
 */
export const duration = (max: number) => {
  const message = `must be at most ${formatDuration(max)}`;
  return z
    .union([z.number().nonnegative().max(max, message), z.string().regex(DURATION_PATTERN, 'expected a duration such as "500ms", "2s", "1m"')])
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined || ms > max) {
        ctx.addIssue({ code: 'custom', message, continue: true });
        return z.NEVER;
      }
      return ms;
    });
};

export const size = (max: number, maxText: string) =>
  z
    .union([z.number().int(`expected a whole number of bytes, at most ${maxText}`).positive(), z.string().regex(SIZE_PATTERN, 'expected a size such as "64Mi", "1Gi", "512M"')])
    .transform((v, ctx) => {
      const bytes = parseSize(v);
      if (bytes === undefined || bytes > max) {
        ctx.addIssue({ code: 'custom', message: `must be at most ${maxText}`, continue: true });
        return z.NEVER;
      }
      if (bytes <= 0) {
        ctx.addIssue({ code: 'custom', message: 'size must be greater than zero', continue: true });
        return z.NEVER;
      }
      return bytes;
    });

export const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGKILL', 'SIGUSR1', 'SIGUSR2'] as const;
export const arg = text(LIMITS.argLength);
// The list's maximum is a refinement: a failed .max() on an array hides the reason behind the union's message.
export const commandLine = z
  .union([arg.min(1), z.array(arg).min(1).refine((list) => list.length <= LIMITS.args, `at most ${LIMITS.args} arguments`)], {
    error: 'expected a command: a string (run by /bin/sh -c) or a non-empty list of strings',
  })
  .transform((v) => (typeof v === 'string' ? ['/bin/sh', '-c', v] : v));
export const portRef = z.union([z.string().regex(NAME), z.number().int().min(1).max(65535)], { error: 'expected a port name from ports[] or a port number' });
// Entry labels travel with the instance's endpoints into rendered config files and DNS; node
// labels, which placement labels match, follow the same rule.
export const labels = z
  .record(z.string().regex(LABEL_KEY, 'label keys are letters, digits, ".", "_", "/", "-"'), z.string().regex(LABEL_VALUE, 'label values are letters, digits and " ._:/@=+-" (at most 256)'))
  .refine((map) => Object.keys(map).length <= LIMITS.labels, `at most ${LIMITS.labels} labels`);
