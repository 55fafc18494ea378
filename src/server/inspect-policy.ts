// Reads the node inspection policy (`gantry server --inspect-policy FILE`, the built-in default
// without one). A bad file stops the server: every problem names the field and its line, so the
// operator fixes the file instead of running with checks they did not mean.
import { DEFAULT_INSPECT_POLICY_YAML, InspectPolicyFile, type InspectPolicy } from '../model/inspection.js';
import { parseYamlFile, readOperatorFile } from './yaml-file.js';

/** Largest policy file read: a policy is a few dozen lines. */
const MAX_POLICY_BYTES = 64 * 1024;

export function loadInspectPolicy(file?: string): InspectPolicy {
  if (file === undefined) return parseInspectPolicy(DEFAULT_INSPECT_POLICY_YAML, 'the default inspection policy');
  return parseInspectPolicy(readOperatorFile(file, 'inspection policy', MAX_POLICY_BYTES), file);
}

export function parseInspectPolicy(text: string, source: string): InspectPolicy {
  return parseYamlFile(text, source, InspectPolicyFile);
}
