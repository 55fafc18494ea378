// `gantry server --log-sinks <file.yaml>`: the cluster's default log sinks, for apps whose spec
// has no `logs:` (an app's own `logs.ship`, even empty, replaces them). The file holds what an
// app's `logs:` holds:
//
//   ship:
//     - syslog: { address: logs.example.com:514, protocol: tcp }
import { readFileSync } from 'node:fs';
import { AppLogs, type LogSinkSpec } from '../model/log-shipping.js';
import { problemsFromZod, SpecError } from '../model/spec.js';
import { decodeSpecText } from '../model/spec-text.js';

export function loadLogSinks(file: string): LogSinkSpec[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecError([{ path: '', message: (err as Error).message }], file);
  }
  const decoded = decodeSpecText(text);
  if (!decoded.ok) throw new SpecError(decoded.problems, file);
  const parsed = AppLogs.safeParse(decoded.value);
  if (!parsed.success) throw new SpecError(problemsFromZod(parsed.error), file);
  return parsed.data.ship;
}
