// The tables of the list commands: apps, ps, nodes, events.
import type { AppSummary, InstanceView, NodeView } from '../model/api.js';
import type { GantryEvent } from '../model/types.js';
import type { CheckSummary } from '../model/inspection.js';
import { formatSize } from '../model/units.js';
import { formatBytes, formatCpu, formatPorts, formatTime, oneLine, renderTable, timeAgo, type CellValue } from './output.js';

export function appsTable(apps: readonly AppSummary[], now = Date.now()): string {
  const rows = apps.map((a) => [
    a.name,
    a.env,
    a.release,
    a.stopped ? 'stopped' : 'running',
    a.entries.map((e) => `${e.name} ${e.healthy}/${e.desired}`).join(', ') || '-',
    timeAgo(a.updatedAt, now),
  ]);
  return renderTable(['NAME', 'ENV', 'RELEASE', 'STATUS', 'HEALTHY', 'UPDATED'], rows);
}

/** What `ps` shows as an instance's state: the agent's report, or why it has none. */
export function instanceState(i: InstanceView): string {
  if (!i.node) return 'unplaced';
  return i.status?.state ?? 'pending';
}

export function instanceHealth(i: InstanceView): string {
  const healthy = i.status?.healthy;
  if (healthy === true) return 'healthy';
  if (healthy === false) return 'unhealthy';
  return '-';
}

/** Why an instance is not running as wanted, if there is something to say. */
export function instanceMessage(i: InstanceView): string | undefined {
  if (i.unplacedReason) return i.unplacedReason;
  return i.status?.message ? oneLine(i.status.message) : undefined;
}

/**
 * The table of `ps`; an IP column is added when some instance has an address on a managed
 * Docker network, a MESSAGE column when some instance has a message.
 */
export function instancesTable(instances: readonly InstanceView[], now = Date.now()): string {
  const withMessage = instances.some((i) => instanceMessage(i));
  const withIp = instances.some((i) => i.status?.ip);
  const head = ['INSTANCE', 'APP', 'ENTRY', 'NODE', 'STATE', 'HEALTH', 'RESTARTS', 'PORTS', 'AGE'];
  if (withIp) head.splice(8, 0, 'IP');
  if (withMessage) head.push('MESSAGE');
  const rows = instances.map((i) => {
    const row: CellValue[] = [
      i.id,
      i.app,
      i.entry,
      i.node || '-',
      instanceState(i),
      instanceHealth(i),
      i.status?.restarts ?? 0,
      formatPorts(i.ports),
      timeAgo(i.status?.startedAt ?? i.createdAt, now),
    ];
    if (withIp) row.splice(8, 0, i.status?.ip ?? '-');
    if (withMessage) row.push(instanceMessage(i) ?? '');
    return row;
  });
  return renderTable(head, rows);
}

/**
 * The table of `nodes`; an IMAGES column ("12 (340 MiB)") is added when some node reports its
 * images, a CHECKS column when the server sums up its nodes' inspections ("ok", "2 warn", "1 fail").
 */
export function nodesTable(nodes: readonly (NodeView & { checks?: CheckSummary })[], now = Date.now()): string {
  const withImages = nodes.some((n) => n.images);
  const withChecks = nodes.some((n) => n.checks);
  const withUsage = nodes.some((n) => n.usage);
  const head = [
    'NAME', 'STATE', 'ADDRESS', 'CPU', 'MEMORY',
    // Real use (the instances' newest samples) beside what is allocated.
    ...(withUsage ? ['CPU USED', 'MEMORY USED'] : []),
    'INSTANCES', 'RUNTIMES', ...(withImages ? ['IMAGES'] : []), ...(withChecks ? ['CHECKS'] : []), 'LAST SEEN',
  ];
  const rows = nodes.map((n): CellValue[] => [
    n.name,
    n.state,
    n.address,
    `${formatCpu(n.allocated.cpu)}/${formatCpu(n.cores)}`,
    `${formatSize(n.allocated.memoryBytes)}/${hostMemory(n.memoryBytes)}`,
    ...(withUsage ? [n.usage ? formatCpu(n.usage.cpuCores) : '-', n.usage ? formatBytes(n.usage.memoryBytes) : '-'] : []),
    n.allocated.instances,
    n.runtimes.join(',') || '-',
    ...(withImages ? [n.images ? `${n.images.count} (${imageBytes(n.images.bytes)})` : '-'] : []),
    ...(withChecks ? [!n.checks || n.checks.text === 'not inspected yet' ? '-' : n.checks.text] : []),
    n.lastHeartbeat ? `${timeAgo(n.lastHeartbeat, now)} ago` : '-',
  ]);
  let out = renderTable(head, rows);
  const notes = nodes.flatMap((n) => n.runtimeNotes.map((note) => `  ${n.name}: ${oneLine(note)}`));
  if (notes.length > 0) out += `\n\nRuntime notes:\n${notes.join('\n')}`;
  return out;
}

/** Image disk use as `nodes` shows it: MiB up to 10 GiB, GiB with one decimal above. */
function imageBytes(bytes: number): string {
  const mib = bytes / 1024 ** 2;
  return mib < 10 * 1024 ? `${Math.round(mib)} MiB` : `${(mib / 1024).toFixed(1)} GiB`;
}

/** The object an event is about, most specific first: instance/…, app/…, node/…. */
export function eventObject(e: GantryEvent): string {
  if (e.instance) return `instance/${e.instance}`;
  if (e.app) return e.entry ? `app/${e.app}/${e.entry}` : `app/${e.app}`;
  if (e.node) return `node/${e.node}`;
  return '-';
}

export function eventsTable(events: readonly GantryEvent[], now = Date.now()): string {
  const rows = events.map((e) => [formatTime(e.time, now), e.level, e.type, eventObject(e), e.message]);
  return renderTable(['TIME', 'LEVEL', 'TYPE', 'OBJECT', 'MESSAGE'], rows);
}

/** Column widths of the streamed event lines (`events -f`), which cannot be measured up front. */
const EVENT_WIDTHS = [8, 7, 22, 30] as const;

export function eventStreamHeader(): string {
  return formatEventColumns(['TIME', 'LEVEL', 'TYPE', 'OBJECT', 'MESSAGE']);
}

export function eventStreamLine(e: GantryEvent, now = Date.now()): string {
  return formatEventColumns([formatTime(e.time, now), e.level, e.type, eventObject(e), oneLine(e.message)]);
}

function formatEventColumns(cells: string[]): string {
  return cells
    .map((cell, i) => (i < EVENT_WIDTHS.length ? cell.padEnd(EVENT_WIDTHS[i]!) : cell))
    .join('   ')
    .trimEnd();
}

/** A host's memory is rarely a whole number of MiB (the kernel keeps some): 23.6Gi reads better than 24731708Ki. */
function hostMemory(bytes: number): string {
  return bytes % 1024 ** 2 === 0 ? formatSize(bytes) : formatBytes(bytes);
}
