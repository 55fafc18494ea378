// Reads the node inspection policy (`gantry server --inspect-policy FILE`, the built-in default
// without one). A bad file stops the server: every problem names the field and its line, so the
// operator fixes the file instead of running with checks they did not mean.
import { readFileSync } from 'node:fs';
import { DEFAULT_INSPECT_POLICY_YAML, InspectPolicyFile, type InspectPolicy } from '../model/inspection.js';
import { SpecError } from '../model/spec.js';
import { parseYamlFile } from './yaml-file.js';

/** Largest policy file read: a policy is a few dozen lines. */
const MAX_POLICY_BYTES = 64 * 1024;

export function loadInspectPolicy(file?: string): InspectPolicy {
  if (file === undefined) return parseInspectPolicy(DEFAULT_INSPECT_POLICY_YAML, 'the default inspection policy');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecError([{ path: '', message: `cannot read the inspection policy: ${(err as Error).message}` }], file);
  }
  if (text.length > MAX_POLICY_BYTES) throw new SpecError([{ path: '', message: `larger than ${MAX_POLICY_BYTES / 1024} KiB` }], file);
  return parseInspectPolicy(text, file);
}

export function parseInspectPolicy(text: string, source: string): InspectPolicy {
  return parseYamlFile(text, source, InspectPolicyFile);
}
