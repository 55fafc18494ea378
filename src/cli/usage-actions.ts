// What gantry top does: the newest usage sample of each instance the caller may see against its
// requests and limits, then a total line per app. Loaded when it runs.
import type { Command } from 'commander';
import type { AppUsage, InstanceUsage } from '../model/usage.js';
import { formatSize } from '../model/units.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { formatBytes, formatCpu, print, renderJson, renderTable } from './output.js';

export async function top(app: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const { node, output } = options<{ node?: string }>(cmd);
  const usage = await clientFor(cmd).usage({ app, node });
  if (output === 'json') return print(renderJson(usage));
  if (usage.instances.length === 0) return print(app ? `app ${app} has no instances you may see` : 'no instances you may see');
  print(topTable(usage.instances, usage.apps));
}

const percent = (part: number, whole: number) => (whole > 0 ? `${Math.round((100 * part) / whole)}%` : '-');

/** The instances, then one total line per app. */
export function topTable(instances: readonly InstanceUsage[], apps: readonly AppUsage[]): string {
  const rows = instances.map((i) => {
    const s = i.latest;
    return [
      i.id,
      `${i.app}/${i.entry}`,
      i.node,
      i.state ?? '-',
      s ? `${formatCpu(s.cpuCores)}/${formatCpu(i.limits.cpu)}` : '-',
      s ? percent(s.cpuCores, i.limits.cpu) : '-',
      s ? percent(s.throttledPeriods, s.periods) : '-',
      s ? `${formatBytes(s.memoryBytes)}/${formatSize(i.limits.memoryBytes)}` : '-',
      s ? percent(s.memoryBytes, i.limits.memoryBytes) : '-',
      s?.oomKills ?? '-',
      i.restarts,
      s && s.netRxBytes !== null && s.netTxBytes !== null ? `${formatBytes(s.netRxBytes)}/${formatBytes(s.netTxBytes)}` : '-',
    ];
  });
  const table = renderTable(['INSTANCE', 'APP/ENTRY', 'NODE', 'STATE', 'CPU/LIMIT', 'CPU%', 'THROTTLED', 'MEMORY/LIMIT', 'MEM%', 'OOM', 'RESTARTS', 'NET RX/TX'], rows);
  const totals = apps.map((a) => `${a.app}: ${a.instances} instance(s) use ${formatCpu(a.cpuCores)} of ${formatCpu(a.requests.cpu)} CPU requested (${percent(a.cpuCores, a.requests.cpu)}), ${formatBytes(a.memoryBytes)} of ${formatSize(a.requests.memoryBytes)} memory (${percent(a.memoryBytes, a.requests.memoryBytes)})`);
  return `${table}\n\n${totals.join('\n')}`;
}
