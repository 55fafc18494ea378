// A person's view of a running server in tests: a JSON request with a bearer token (or none),
// and the gantry CLI run as a child process against it.
import { spawn } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { GANTRY } from './cluster.js';

export interface Answer {
  status: number;
  body: Record<string, any>;
}

/** A JSON call to the server at `url()` (read at each call: a test may restart its server). */
export function jsonCaller(url: () => string) {
  return async (method: string, path: string, token: string | undefined, body?: unknown): Promise<Answer> => {
    const response = await fetch(`${url()}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    // Some answers have no body (a 204, a DELETE that says nothing): an empty object then.
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
  };
}

/** Makes these users (as the admin; members unless `roles` says otherwise) and signs each in: their session tokens by name. */
export async function signedInUsers(call: ReturnType<typeof jsonCaller>, admin: string, users: string[], password: string, roles: Record<string, string> = {}): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const name of users) {
    const made = await call('POST', '/v1/users', admin, { name, password, ...(roles[name] ? { role: roles[name] } : {}) });
    if (made.status !== 201) throw new Error(`user ${name} not made: ${JSON.stringify(made.body)}`);
    tokens[name] = (await call('POST', '/v1/login', undefined, { user: name, password })).body.token as string;
  }
  return tokens;
}

/** Runs `gantry args…` with this environment (over the test's own, less GANTRY_TOKEN unless given) and stdin. */
export function runCli(args: string[], env: Record<string, string>, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const { GANTRY_TOKEN: _token, ...inherited } = process.env;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...GANTRY, ...args], { env: { ...inherited, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** A raw request to 127.0.0.1:`port`: the path goes out as written (fetch would normalise it first). */
export function rawRequest(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, headers: { ...headers, connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}
