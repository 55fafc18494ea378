// How a request of the CLI's client (../client.ts) fails: the API answered with an error, or nothing
// answered (no server, a certificate not trusted, a scheme that does not match the server).
import type { ApiError } from '../../model/api.js';
import type { HttpAnswer } from '../http.js';

/** A non-2xx answer of the API. */
export class ApiRequestError extends Error {
  readonly problems: NonNullable<ApiError['problems']>;
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(body.error);
    this.name = 'ApiRequestError';
    this.problems = body.problems ?? [];
  }
}

/** The server did not answer at all (connection refused, unknown host, reset...). */
export class ServerUnreachableError extends Error {
  constructor(
    readonly server: string,
    readonly code: string,
    hint = 'Is it running? (gantry up)',
  ) {
    super(`cannot reach the Gantry server at ${server}: ${code}. ${hint}`);
    this.name = 'ServerUnreachableError';
  }
}

/** The TLS handshake failed on this side: the server's certificate could not be verified. */
export class TlsVerificationError extends ServerUnreachableError {
  constructor(server: string, code: string, reason: string) {
    super(server, code, '');
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? 'The certificate does not name the host of the server URL: use a --server URL with a name (or IP) the certificate lists, or --ca if it is signed by another CA'
      : 'If the server\'s certificate is self-signed or signed by a private CA, pass that CA\'s certificate with --ca FILE (or GANTRY_CA, or "ca" in the config file)';
    this.message = `cannot verify the TLS certificate of the Gantry server at ${server}: ${reason} (${code}). ${hint}`;
    this.name = 'TlsVerificationError';
  }
}

/** A stream was asked for and something else came back: waiting for it to change is pointless. */
export class NotAnEventStreamError extends Error {
  override name = 'NotAnEventStreamError';
}

type NetworkError = { code?: unknown; errors?: { code?: unknown }[]; message?: unknown; cause?: unknown };

/**
 * Where a failed request says why: node:http's error itself (or the first of an AggregateError
 * when every address failed); an error of fetch carries it on `cause`.
 */
function networkError(err: unknown): NetworkError {
  const e = (err ?? {}) as NetworkError;
  return e.code === undefined && e.errors === undefined && e.cause !== undefined ? (e.cause as NetworkError) : e;
}

/** The error code of a failed request. */
function networkCode(err: unknown): string {
  const cause = networkError(err);
  const code = cause.code ?? cause.errors?.find((e) => e.code)?.code;
  if (typeof code === 'string') return code;
  if (typeof cause.message === 'string' && cause.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** OpenSSL's certificate verification codes (and Node's host name check), as Node reports them. */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/;

/** What a failed request means: a certificate not trusted, a scheme that does not match the server, or no server. */
export function unreachableError(server: string, err: unknown): ServerUnreachableError {
  const code = networkCode(err);
  const { message } = networkError(err);
  const reason = typeof message === 'string' && message ? message : code;
  if (CERT_ERROR.test(code)) return new TlsVerificationError(server, code, reason);
  const https = server.startsWith('https:');
  if (https && code === 'EPROTO' && /wrong version number|packet length too long/i.test(reason)) return new ServerUnreachableError(server, `TLS handshake failed (${reason})`, 'Does the server use TLS? If not, use an http:// URL');
  if (!https && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET')) return new ServerUnreachableError(server, code, 'Is it running? If it uses TLS (--tls-cert), use an https:// URL');
  return new ServerUnreachableError(server, code);
}

export async function apiErrorFrom(res: HttpAnswer): Promise<ApiRequestError> {
  const text = await res.text().catch(() => '');
  let body: ApiError | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<ApiError>;
    if (parsed && typeof parsed.error === 'string') body = parsed as ApiError;
  } catch {
    // not JSON: use the text itself
  }
  body ??= { error: text.trim() || `${res.status} ${res.statusText}`.trim() };
  return new ApiRequestError(res.status, body);
}
