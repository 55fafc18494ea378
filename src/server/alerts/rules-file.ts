// Reads the operators' alert rules file (`gantry server --alert-rules FILE`): the webhook
// receivers, the cluster rules (the default set when the file names none) and the receivers app
// rules notify when they name none. Without a file: the default rules and no receivers, so
// alerts are listed and recorded as events but sent nowhere.
import { z } from 'zod';
import { AlertRulesFile, ClusterAlertRule, DEFAULT_CLUSTER_RULES_YAML } from '../../model/spec-alerts.js';
import { SpecError } from '../../model/spec.js';
import { parseYamlFile, readOperatorFile } from '../yaml-file.js';

const MAX_FILE_BYTES = 256 * 1024;

export function loadAlertRules(file?: string): AlertRulesFile & { rules: ClusterAlertRule[] } {
  if (file === undefined) return withDefaults(AlertRulesFile.parse({}));
  return parseAlertRules(readOperatorFile(file, 'alert rules', MAX_FILE_BYTES), file);
}

export function parseAlertRules(text: string, source: string): AlertRulesFile & { rules: ClusterAlertRule[] } {
  const parsed = parseYamlFile(text, source, AlertRulesFile);
  for (const [i, rule] of (parsed.rules ?? []).entries()) {
    for (const receiver of rule.notify) if (!Object.hasOwn(parsed.receivers, receiver)) throw new SpecError([{ path: `rules[${i}].notify`, message: `no receiver named "${receiver}" in receivers` }], source);
  }
  for (const receiver of parsed.defaultNotify) if (!Object.hasOwn(parsed.receivers, receiver)) throw new SpecError([{ path: 'defaultNotify', message: `no receiver named "${receiver}" in receivers` }], source);
  return withDefaults(parsed);
}

function withDefaults(file: AlertRulesFile): AlertRulesFile & { rules: ClusterAlertRule[] } {
  return { ...file, rules: file.rules ?? parseYamlFile(DEFAULT_CLUSTER_RULES_YAML, 'the default alert rules', z.array(ClusterAlertRule)) };
}
