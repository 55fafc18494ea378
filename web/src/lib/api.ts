// Calls to the Gantry API with the cookie session: the browser sends the HttpOnly cookie by
// itself; unsafe methods add the session's CSRF value, which lives only in this module's memory.
import type { ApiError, SpecProblem } from './model';

let csrf: string | undefined;
let onSignedOut: (() => void) | undefined;

export function setCsrf(value: string | undefined): void {
  csrf = value;
}

/** Called when the server answers 401: the session expired or was ended elsewhere. */
export function whenSignedOut(callback: () => void): void {
  onSignedOut = callback;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems?: SpecProblem[],
  ) {
    super(message);
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function headersFor(method: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, ...(UNSAFE.has(method) && csrf ? { 'x-gantry-csrf': csrf } : {}) };
}

/** JSON in and out; a 4xx/5xx throws HttpError with the server's own words. */
export async function api<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: headersFor(method, body === undefined ? {} : { 'content-type': contentType }) };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { error: text };
  }
  if (!response.ok) {
    const error = parsed as Partial<ApiError>;
    if (response.status === 401 && path !== '/v1/login') onSignedOut?.();
    throw new HttpError(response.status, error.error ?? `${response.status} ${response.statusText}`, error.problems);
  }
  return parsed as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body ?? {});

/** Query string from the defined values only. */
export function query(values: Record<string, string | number | boolean | undefined>): string {
  const entries = Object.entries(values).filter((e): e is [string, string | number | boolean] => e[1] !== undefined && e[1] !== '');
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString()}`;
}
