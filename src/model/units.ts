// Human units used in app specs: durations ("2s", "500ms", "1m") and sizes ("64Mi", "1G").
// The patterns take any number of digits, so a result beyond Number.MAX_SAFE_INTEGER (or
// Infinity) is no result: callers then refuse the value rather than compute with a rounded one.

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses "250ms", "2s", "1.5m" or a bare number of milliseconds, to whole milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return value >= 0 ? safe(Math.round(value)) : undefined;
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) return undefined;
  return safe(Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2]!]!));
}

/** Like parseDuration, and days too ("7d"): for log ages and `--since`. */
export function parseLongDuration(value: string): number | undefined {
  const days = /^(\d{1,6})d$/.exec(value.trim());
  return days ? safe(Number(days[1]) * 86_400_000) : parseDuration(value);
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12,
  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4,
};
export const SIZE_PATTERN = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/;

/** Parses "64Mi", "1G", "512" (bytes) or a number of bytes. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return value >= 0 ? safe(Math.floor(value)) : undefined;
  const match = SIZE_PATTERN.exec(value.trim());
  if (!match) return undefined;
  return safe(Math.floor(Number(match[1]) * SIZE_UNITS[match[2] ?? '']!));
}

function safe(n: number): number | undefined {
  return Number.isSafeInteger(n) ? n : undefined;
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)}Mi`;
  return `${bytes}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d`;
}
