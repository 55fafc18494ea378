// Health checks an agent runs against its instances: HTTP GET, TCP connect or a command.
// A check answers ok or not with a readable detail, and never rejects: the supervisor runs it
// from a timer, where a rejection would go unhandled.
import { connect } from 'node:net';
import type { HealthSpec } from '../model/spec.js';
import type { AssignedPort } from '../model/types.js';
import type { Runtime } from '../runtime/runtime.js';

export interface CheckResult {
  ok: boolean;
  detail: string;
}

/** The host port a check's port reference (a name, or a container / host port number) is reached on. */
export function resolvePort(ref: string | number, ports: AssignedPort[]): number | undefined {
  if (typeof ref === 'string') return ports.find((p) => p.name === ref)?.host;
  return ports.find((p) => p.container === ref || p.host === ref)?.host ?? ref;
}

export async function runCheck(health: HealthSpec, ports: AssignedPort[], host: string, runtime: Runtime, instanceId: string): Promise<CheckResult> {
  try {
    return await check(health, ports, host, runtime, instanceId);
  } catch (err) {
    // A check that cannot even be tried (a port reference that resolves to nothing, ...) fails.
    return { ok: false, detail: `health check could not run: ${describe(err)}` };
  }
}

async function check(health: HealthSpec, ports: AssignedPort[], host: string, runtime: Runtime, instanceId: string): Promise<CheckResult> {
  if (health.http) {
    const port = resolvePort(health.http.port, ports);
    const url = `http://${host}:${port}${health.http.path}`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(health.timeout), redirect: 'manual' });
      await response.body?.cancel();
      const ok = response.status >= 200 && response.status < 400;
      return { ok, detail: `GET ${url} → ${response.status}` };
    } catch (err) {
      return { ok: false, detail: `GET ${url} failed: ${describe(err)}` };
    }
  }
  if (health.tcp) {
    const port = resolvePort(health.tcp.port, ports);
    if (port === undefined) return { ok: false, detail: `tcp: no port named ${JSON.stringify(health.tcp.port)} is assigned` };
    return tcpCheck(host, port, health.timeout);
  }
  if (!health.exec) return { ok: false, detail: 'no http, tcp or exec check in the health spec' };
  const command = health.exec.command;
  try {
    const result = await runtime.exec(instanceId, command, health.timeout);
    return { ok: result.exitCode === 0, detail: `${command.join(' ')} exited ${result.exitCode}${result.output ? `: ${result.output.trim().slice(-200)}` : ''}` };
  } catch (err) {
    return { ok: false, detail: `${command.join(' ')} failed: ${describe(err)}` };
  }
}

function tcpCheck(host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean, detail: string) => {
      socket.destroy();
      resolve({ ok, detail });
    };
    socket.setTimeout(timeoutMs, () => done(false, `tcp ${host}:${port} timed out after ${timeoutMs}ms`));
    socket.once('connect', () => done(true, `tcp ${host}:${port} connected`));
    socket.once('error', (err) => done(false, `tcp ${host}:${port}: ${err.message}`));
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}
