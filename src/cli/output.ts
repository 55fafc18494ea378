// Output helpers: kubectl-like plain tables, JSON output, time and port formatting. Every command
// loads this module but many print no table (an empty `ps` prints none): the table library is
// loaded with the first table, not with the module.
import { createRequire } from 'node:module';
import type { AssignedPort } from '../model/types.js';
import { formatDuration } from '../model/units.js';

export type OutputFormat = 'table' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json'];

const NO_BORDERS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
};

export type CellValue = string | number | boolean | null | undefined;

let tableClass: typeof import('cli-table3') | undefined;

/** A borderless table: upper-case header, columns aligned and separated by three spaces. */
export function renderTable(head: string[], rows: CellValue[][]): string {
  tableClass ??= createRequire(import.meta.url)('cli-table3') as typeof import('cli-table3');
  const table = new tableClass({
    head: head.map((h) => h.toUpperCase()),
    chars: NO_BORDERS,
    style: { 'padding-left': 0, 'padding-right': 3, head: [], border: [], compact: true },
  });
  for (const row of rows) table.push(row.map((cell) => (cell === null || cell === undefined ? '' : oneLine(String(cell)))));
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** Pretty JSON, as printed by `-o json`. */
export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** Where the commands write; tests swap these for buffers. */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}
export const io: { out: Output; err: Output } = { out: process.stdout, err: process.stderr };

export function print(text: string): void {
  io.out.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printError(text: string): void {
  io.err.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Time since `time` (ms since epoch), e.g. "42s", "3m12s", "5h", "2d"; "-" when unknown. */
export function timeAgo(time: number | null | undefined, now = Date.now()): string {
  if (!time) return '-';
  const ms = Math.max(0, now - time);
  return ms < 1000 ? '0s' : formatDuration(ms);
}

/** A clock time for event lists: "14:03:27" today, "2024-05-01 14:03:27" another day (local time). */
export function formatTime(time: number, now = Date.now()): string {
  const d = new Date(time);
  const pad = (n: number) => String(n).padStart(2, '0');
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (new Date(now).toDateString() === d.toDateString()) return clock;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
}

/** "8080→80" (host→container), "8080" for a process port, with "/udp" for UDP. */
export function formatPorts(ports: readonly AssignedPort[]): string {
  if (ports.length === 0) return '-';
  return ports
    .map((p) => `${p.host}${p.container !== undefined ? `→${p.container}` : ''}${p.protocol === 'udp' ? '/udp' : ''}`)
    .join(',');
}

/** A CPU amount without needless decimals: 0.25, 1.5, 4. */
export function formatCpu(cpu: number): string {
  return String(Math.round(cpu * 100) / 100);
}

export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** A measured amount of bytes (memory in use, bytes sent): rounded for reading, Ki / Mi / Gi. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024 ** 2) return `${Math.round(bytes / 1024)}Ki`;
  if (bytes < 10 * 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)}Mi`;
  return `${(bytes / 1024 ** 3).toFixed(1)}Gi`;
}
