// Small helpers shared by the Docker runtime's files: engine errors, engine times, container state.
import type Dockerode from 'dockerode';

interface DockerError extends Error {
  statusCode?: number;
  json?: { message?: string } | null;
}

export function statusOf(err: unknown): number | undefined {
  return (err as DockerError | undefined)?.statusCode;
}

/** The engine's own message ("No such image: x") rather than dockerode's "(HTTP code 404) ..." wrapper. */
export function engineMessage(err: unknown): string {
  const e = err as DockerError;
  const fromJson = e?.json && typeof e.json === 'object' ? e.json.message : undefined;
  return (fromJson ?? e?.message ?? String(err)).trim();
}

/** Docker reports "never" as 0001-01-01T00:00:00Z. */
export function parseDockerTime(value: string | undefined): number | null {
  if (!value || value.startsWith('0001-01-01')) return null;
  const ms = Date.parse(trimFraction(value));
  return Number.isNaN(ms) ? null : ms;
}

/** RFC3339 with nanoseconds → milliseconds precision, which Date.parse reliably understands. */
export function trimFraction(value: string): string {
  return value.replace(/(\.\d{3})\d+/, '$1');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function isRunning(info: Dockerode.ContainerInspectInfo): boolean {
  return info.State.Running || info.State.Restarting || info.State.Paused;
}
