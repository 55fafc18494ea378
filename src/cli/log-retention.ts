// `gantry agent --log-max-size/--log-max-files/--log-max-age`: how much of each instance's output
// a node keeps (docs/observability.md#retention).
import { parseLongDuration, parseSize } from '../model/units.js';

export interface LogRetentionFlags {
  logMaxSize: string;
  logMaxFiles: string;
  logMaxAge?: string;
}

/** Below this a rotated file would hold only a few lines; above, one file could fill a disk. */
const MIN_LOG_SIZE = 64 * 1024;
const MAX_LOG_SIZE = 1024 ** 4;
const MAX_LOG_FILES = 100;

export function logRetentionOf(flags: LogRetentionFlags): { maxBytes: number; maxFiles: number; maxAgeMs?: number } {
  const maxBytes = parseSize(flags.logMaxSize);
  if (maxBytes === undefined || maxBytes < MIN_LOG_SIZE || maxBytes > MAX_LOG_SIZE) throw new Error(`--log-max-size ${flags.logMaxSize}: expected a size from 64Ki to 1Ti (10Mi, 500Ki)`);
  const maxFiles = Number(flags.logMaxFiles);
  if (!Number.isInteger(maxFiles) || maxFiles < 1 || maxFiles > MAX_LOG_FILES) throw new Error(`--log-max-files ${flags.logMaxFiles}: expected a whole number from 1 to ${MAX_LOG_FILES}`);
  if (flags.logMaxAge === undefined) return { maxBytes, maxFiles };
  const maxAgeMs = parseLongDuration(flags.logMaxAge);
  if (maxAgeMs === undefined || maxAgeMs < 60_000) throw new Error(`--log-max-age ${flags.logMaxAge}: expected a duration of at least 1m (12h, 7d)`);
  return { maxBytes, maxFiles, maxAgeMs };
}
