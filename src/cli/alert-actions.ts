// What gantry alerts and gantry alert … do. Loaded when they run.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { Alert, Silence } from '../server/alerts/evaluate.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { formatTime, print, renderJson, renderTable, timeAgo } from './output.js';

const MATCHER_LABELS = ['rule', 'app', 'entry', 'node', 'severity'];

export async function listAlerts(_opts: unknown, cmd: Command): Promise<void> {
  const { app, node, output } = options<{ app?: string; node?: string }>(cmd);
  const { alerts } = await clientFor(cmd).alerts({ app, node });
  if (output === 'json') return print(renderJson(alerts));
  if (alerts.length === 0) return print(app ? `no alerts for app ${app}` : 'no alerts');
  print(alertsTable(alerts));
}

export function alertsTable(alerts: readonly Alert[], now = Date.now()): string {
  const order = { firing: 0, pending: 1, resolved: 2 };
  const rows = [...alerts]
    .sort((a, b) => order[a.state] - order[b.state] || a.key.localeCompare(b.key))
    .map((a) => [a.state + (a.silencedBy ? ' (silenced)' : ''), a.rule, a.severity, subject(a), a.value, timeAgo(a.since, now), a.notify.join(',') || '-']);
  return renderTable(['STATE', 'RULE', 'SEVERITY', 'SUBJECT', 'VALUE', 'SINCE', 'NOTIFY'], rows);
}

function subject(alert: Alert): string {
  const { app, entry, node } = alert.labels;
  return app ? `app/${app}${entry ? `/${entry}` : ''}` : node ? `node/${node}` : '-';
}

export function parseMatchers(words: readonly string[]): Record<string, string> {
  const matchers: Record<string, string> = {};
  for (const word of words) {
    const at = word.indexOf('=');
    const label = word.slice(0, at);
    if (at <= 0 || !MATCHER_LABELS.includes(label)) throw new InvalidArgumentError(`matcher "${word}": expected label=value, label one of ${MATCHER_LABELS.join(', ')}`);
    matchers[label] = word.slice(at + 1);
  }
  return matchers;
}

export async function silenceAlerts(words: string[], _opts: unknown, cmd: Command): Promise<void> {
  const { for: duration, comment, output } = options<{ for: string; comment?: string }>(cmd);
  const { silence } = await clientFor(cmd).silence(parseMatchers(words), duration, comment);
  if (output === 'json') return print(renderJson(silence));
  print(`silence ${silence.id}: ${describe(silence)} until ${formatTime(silence.endsAt)}`);
}

export async function listSilences(_opts: unknown, cmd: Command): Promise<void> {
  const { output } = options<object>(cmd);
  const { silences } = await clientFor(cmd).silences();
  if (output === 'json') return print(renderJson(silences));
  if (silences.length === 0) return print('no silences');
  print(renderTable(['ID', 'MATCHERS', 'UNTIL', 'BY', 'COMMENT'], silences.map((s) => [s.id, describe(s), formatTime(s.endsAt), s.createdBy, s.comment ?? ''])));
}

export async function unsilence(id: string, _opts: unknown, cmd: Command): Promise<void> {
  const { removed } = await clientFor(cmd).unsilence(id);
  print(`silence ${removed} removed`);
}

const describe = (silence: Silence) => Object.entries(silence.matchers).map(([k, v]) => `${k}=${v}`).join(' ');
