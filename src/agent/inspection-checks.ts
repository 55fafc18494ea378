// The checks of node inspection, each reading one fact of the host (kernel, cgroups, disk,
// memory, uptime, limits, sysctls, the Docker Engine) and judging it against the policy. A fact
// that cannot be read is an `error` result naming why, never an exception: one check's failure
// must not hide the others'.
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { release, uptime } from 'node:os';
import Docker from 'dockerode';
import type { CheckResult, CheckStatus, Comparison, InspectPolicy } from '../model/inspection.js';
import { formatDuration } from '../model/units.js';
import { fileLimit } from '../host/file-limit.js';

type Result = CheckResult;

/** Where the agent reads the host: the real /proc and /sys, or another root (never in production). */
export interface HostPaths {
  proc: string;
  sys: string;
}

const HOST: HostPaths = { proc: '/proc', sys: '/sys' };

function failed(check: string, threshold: string, err: unknown): Result {
  return { check, status: 'error', value: '-', threshold, message: err instanceof Error ? err.message.slice(0, 1000) : String(err).slice(0, 1000) };
}

/** Above warn / fail is worse (disk use, offset): the status of `value`. */
function above(value: number, warn: number | undefined, fail: number | undefined): CheckStatus {
  if (fail !== undefined && value >= fail) return 'fail';
  if (warn !== undefined && value >= warn) return 'warn';
  return 'pass';
}

/** Numeric parts of a version ("6.8.0-45-generic" → [6, 8, 0]). */
export function versionParts(text: string): number[] {
  return (/^\d+(\.\d+)*/.exec(text.trim())?.[0] ?? '').split('.').filter(Boolean).map(Number);
}

export function versionAtLeast(have: string, min: string): boolean {
  const a = versionParts(have);
  const b = versionParts(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const [x, y] = [a[i] ?? 0, b[i] ?? 0];
    if (x !== y) return x > y;
  }
  return true;
}

/** Disk space or inode use of the filesystem holding `path` (its nearest existing parent when it is not there yet). */
export function usageChecks(kind: 'disk' | 'inodes', entries: InspectPolicy['disk']): Result[] {
  return entries.map(({ path, warnPercent, failPercent }) => {
    const check = `${kind}:${path}`;
    const threshold = `warn ${warnPercent}%, fail ${failPercent}%`;
    try {
      let at = path;
      while (!existsSync(at) && at !== '/') at = dirname(at);
      const fs = statfsSync(at);
      const [total, free] = kind === 'disk' ? [fs.blocks, fs.bavail] : [fs.files, fs.ffree];
      if (total === 0) return { check, status: 'pass', value: 'n/a', threshold, message: `the filesystem of ${at} does not count ${kind === 'disk' ? 'blocks' : 'inodes'}` };
      const used = Math.round((1 - free / total) * 1000) / 10;
      const where = at === path ? path : `${at} (${path} does not exist yet)`;
      return { check, status: above(used, warnPercent, failPercent), value: `${used}%`, threshold, message: `${used}% of the ${kind === 'disk' ? 'space' : 'inodes'} of the filesystem of ${where} used` };
    } catch (err) {
      return failed(check, threshold, err);
    }
  });
}

/** MemAvailable against MemTotal, and PSI memory pressure (`some avg10`) where the kernel has it. */
export function memoryChecks(policy: NonNullable<InspectPolicy['memory']>, host = HOST): Result[] {
  const results: Result[] = [];
  const { availableWarnPercent: warn, availableFailPercent: fail, pressureWarn, pressureFail } = policy;
  if (warn !== undefined || fail !== undefined) {
    const threshold = [warn !== undefined && `warn below ${warn}%`, fail !== undefined && `fail below ${fail}%`].filter(Boolean).join(', ');
    try {
      const info = readFileSync(`${host.proc}/meminfo`, 'utf8');
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(info)?.[1]);
      const available = Math.round((kib('MemAvailable') / kib('MemTotal')) * 1000) / 10;
      if (!Number.isFinite(available)) throw new Error(`${host.proc}/meminfo has no MemAvailable or MemTotal`);
      const status: CheckStatus = fail !== undefined && available <= fail ? 'fail' : warn !== undefined && available <= warn ? 'warn' : 'pass';
      results.push({ check: 'memory', status, value: `${available}%`, threshold, message: `${available}% of the memory available` });
    } catch (err) {
      results.push(failed('memory', threshold, err));
    }
  }
  if ((pressureWarn !== undefined || pressureFail !== undefined) && existsSync(`${host.proc}/pressure/memory`)) {
    const threshold = [pressureWarn !== undefined && `warn ${pressureWarn}%`, pressureFail !== undefined && `fail ${pressureFail}%`].filter(Boolean).join(', ');
    try {
      const line = readFileSync(`${host.proc}/pressure/memory`, 'utf8');
      const avg10 = Number(/^some avg10=(\d+(?:\.\d+)?)/m.exec(line)?.[1]);
      if (!Number.isFinite(avg10)) throw new Error(`${host.proc}/pressure/memory has no "some avg10"`);
      results.push({ check: 'memory.pressure', status: above(avg10, pressureWarn, pressureFail), value: `${avg10}%`, threshold, message: `tasks stalled on memory ${avg10}% of the last 10 s` });
    } catch (err) {
      results.push(failed('memory.pressure', threshold, err));
    }
  }
  return results;
}

export function uptimeCheck(policy: NonNullable<InspectPolicy['uptime']>, seconds = uptime()): Result {
  const ms = Math.round(seconds * 1000);
  const threshold = `warn below ${formatDuration(policy.warnBelowMs)}`;
  const status: CheckStatus = ms < policy.warnBelowMs ? 'warn' : 'pass';
  return { check: 'uptime', status, value: formatDuration(ms), threshold, message: status === 'warn' ? `booted ${formatDuration(ms)} ago: it just rebooted` : `up ${formatDuration(ms)}` };
}

/** The open-file limit the agent (and the process instances it starts) run with. */
export function fileLimitCheck(policy: NonNullable<InspectPolicy['fileLimit']>): Result {
  const limit = fileLimit();
  const threshold = `>= ${policy.min}`;
  if (!limit) return failed('fileLimit', threshold, new Error('the open-file limit is unknown (no /proc/self/limits)'));
  const status: CheckStatus = limit.soft >= policy.min ? 'pass' : 'fail';
  return { check: 'fileLimit', status, value: String(limit.soft), threshold, message: `open files: soft limit ${limit.soft}, hard ${limit.hard === Infinity ? 'unlimited' : limit.hard}` };
}

export function kernelCheck(policy: NonNullable<InspectPolicy['kernel']>, version = release()): Result {
  const ok = versionAtLeast(version, policy.min);
  return { check: 'kernel', status: ok ? 'pass' : 'fail', value: version, threshold: `>= ${policy.min}`, message: ok ? `kernel ${version}` : `kernel ${version} is older than ${policy.min}` };
}

export function cgroupCheck(policy: NonNullable<InspectPolicy['cgroup']>, host = HOST): Result {
  const found = existsSync(`${host.sys}/fs/cgroup/cgroup.controllers`) ? 'v2' : existsSync(`${host.sys}/fs/cgroup`) ? 'v1' : 'none';
  const ok = found !== 'none' && (policy.version === 'any' || policy.version === found);
  return { check: 'cgroup', status: ok ? 'pass' : 'fail', value: found, threshold: policy.version, message: found === 'none' ? 'no cgroup filesystem at /sys/fs/cgroup' : `cgroup ${found}` };
}

export async function dockerCheck(policy: NonNullable<InspectPolicy['docker']>, socketPath: string | undefined): Promise<Result> {
  const threshold = `>= ${policy.min}`;
  try {
    const engine = new Docker(socketPath ? { socketPath } : {});
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 5s')), 5000)));
    const { Version } = await Promise.race([engine.version(), late]).finally(() => clearTimeout(timer));
    const ok = versionAtLeast(Version, policy.min);
    return { check: 'docker', status: ok ? 'pass' : 'fail', value: Version, threshold, message: ok ? `Docker Engine ${Version}` : `Docker Engine ${Version} is older than ${policy.min}` };
  } catch (err) {
    return failed('docker', threshold, new Error(`the Docker Engine did not say its version: ${(err as Error).message}`));
  }
}

export function compare(observed: string, op: Comparison, wanted: string): boolean {
  const [a, b] = [Number(observed), Number(wanted)];
  const numeric = observed.trim() !== '' && Number.isFinite(a) && Number.isFinite(b);
  switch (op) {
    case '==':
      return numeric ? a === b : observed.trim() === wanted;
    case '!=':
      return numeric ? a !== b : observed.trim() !== wanted;
    case '>=':
      return numeric && a >= b;
    case '<=':
      return numeric && a <= b;
    case '>':
      return numeric && a > b;
    case '<':
      return numeric && a < b;
  }
}

export function sysctlChecks(sysctls: InspectPolicy['sysctls'], host = HOST): Result[] {
  return Object.entries(sysctls).map(([name, { op, value }]) => {
    const check = `sysctl:${name}`;
    const threshold = `${op} ${value}`;
    try {
      // The name was checked against SYSCTL_NAME by the server: dots and word characters only.
      const observed = readFileSync(`${host.proc}/sys/${name.replaceAll('.', '/')}`, 'utf8').trim().replace(/\s+/g, ' ').slice(0, 200);
      const numeric = ['>=', '<=', '>', '<'].includes(op);
      if (numeric && !Number.isFinite(Number(observed))) return { check, status: 'error', value: observed, threshold, message: `${name} is "${observed}", not a number` };
      const ok = compare(observed, op, value);
      return { check, status: ok ? 'pass' : 'fail', value: observed, threshold, message: `${name} = ${observed}${ok ? '' : `, the policy wants ${threshold}`}` };
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      return failed(check, threshold, missing ? new Error(`this kernel has no sysctl ${name}`) : err);
    }
  });
}

/** The clock offset against the server (measured by the caller), judged. */
export function clockCheck(policy: NonNullable<InspectPolicy['clockOffset']>, offsetMs: number | Error): Result {
  const threshold = `warn ${formatDuration(policy.warnMs)}, fail ${formatDuration(policy.failMs)}`;
  if (offsetMs instanceof Error) return failed('clockOffset', threshold, offsetMs);
  const size = Math.abs(offsetMs);
  const value = `${offsetMs >= 0 ? '+' : '-'}${formatDuration(size)}`;
  return { check: 'clockOffset', status: above(size, policy.warnMs, policy.failMs), value, threshold, message: `this node's clock is ${formatDuration(size)} ${offsetMs >= 0 ? 'ahead of' : 'behind'} the server's` };
}
