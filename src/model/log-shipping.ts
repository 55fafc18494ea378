// `logs: { ship: [...] }` in an app spec: the sinks every line of the app's instances is sent to
// by their agents, as RFC 5424 syslog (TCP with octet counting, or UDP) or as JSON lines POSTed to
// an HTTP endpoint. Specs are readable by the app's team and kept in releases, so they carry no
// credentials: URLs with a user or password and credential headers are refused.
import { isIP } from 'node:net';
import { z } from 'zod';
import { isHostAddress } from './names.js';

export const MAX_SINKS = 8;
const MAX_HEADERS = 16;

/** Syslog facilities by name (RFC 5424 §6.2.1): the ones an application would log under. */
export const FACILITIES: Readonly<Record<string, number>> = {
  user: 1, daemon: 3, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** "host:port" or "[v6]:port". */
export function parseAddress(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const host = match[1] ?? match[2]!;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return undefined;
  if (match[1] !== undefined ? isIP(host) !== 6 : !isHostAddress(host)) return undefined;
  return { host, port };
}

const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key']);

const SyslogSink = z.strictObject({
  address: z.string().max(300).refine((a) => parseAddress(a) !== undefined, 'expected host:port (a host name or IP address, [v6]:port)'),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  facility: z.enum(Object.keys(FACILITIES) as [string, ...string[]]).default('user'),
  /** RFC 5424 APP-NAME; default the app's name. */
  appName: z.string().regex(/^[!-~]{1,48}$/, 'appName: 1 to 48 printable ASCII characters, no spaces').optional(),
});

const HttpSink = z.strictObject({
  url: z
    .string()
    .max(2048)
    .refine((text) => {
      try {
        const url = new URL(text);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '';
      } catch {
        return false;
      }
    }, 'expected an http:// or https:// URL without a user or password (specs are readable by the team: no credentials)'),
  headers: z
    .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, 'header names are HTTP tokens of at most 64 characters'), z.string().regex(/^[\t -~]{0,1024}$/, 'header values: at most 1024 printable ASCII characters'))
    .refine((h) => Object.keys(h).length <= MAX_HEADERS, `at most ${MAX_HEADERS} headers`)
    .refine((h) => !Object.keys(h).some((name) => CREDENTIAL_HEADERS.has(name.toLowerCase())), 'no credential headers (authorization, cookie, api keys): specs are readable by the team')
    .default({}),
});

export const LogSink = z.union([z.strictObject({ syslog: SyslogSink }), z.strictObject({ http: HttpSink })]);
export const AppLogs = z.strictObject({
  ship: z.array(LogSink).max(MAX_SINKS).default([]),
});

export type LogSinkSpec = z.output<typeof LogSink>;
export type AppLogsSpec = z.output<typeof AppLogs>;

/** What an instance's agent needs to ship its lines: the sinks and the fields they carry. */
export interface InstanceLogShipping {
  ship: LogSinkSpec[];
  team: string;
}
