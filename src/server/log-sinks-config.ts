// `gantry server --log-sinks <file.yaml>`: the cluster's default log sinks, for apps whose spec
// has no `logs:` (an app's own `logs.ship`, even empty, replaces them). The file holds what an
// app's `logs:` holds:
//
//   ship:
//     - syslog: { address: logs.example.com:514, protocol: tcp }
import { AppLogs, type LogSinkSpec } from '../model/log-shipping.js';
import { problemsFromZod, SpecError } from '../model/spec.js';
import { decodeSpecText } from '../model/spec-text.js';
import { readOperatorFile } from './yaml-file.js';

/** A sinks file is a few lines. */
const MAX_SINKS_BYTES = 64 * 1024;

export function loadLogSinks(file: string): LogSinkSpec[] {
  const decoded = decodeSpecText(readOperatorFile(file, 'log sinks', MAX_SINKS_BYTES));
  if (!decoded.ok) throw new SpecError(decoded.problems, file);
  const parsed = AppLogs.safeParse(decoded.value);
  if (!parsed.success) throw new SpecError(problemsFromZod(parsed.error), file);
  return parsed.data.ship;
}
