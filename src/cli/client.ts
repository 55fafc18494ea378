// The REST client of the Gantry API (src/model/api.ts), used by the CLI. Callers hold one
// GantryClient and call `client.listNodes()`; each part of the API has its calls in a file of its
// own, layered class on class over the transport (client/transport.ts), so that one object keeps
// every call typed without a facade repeating them. The order of the layers means nothing.
import { AlertCalls } from './client/alerts.js';

export { ApiRequestError, NotAnEventStreamError, ServerUnreachableError, TlsVerificationError, unreachableError } from './client/errors.js';
export type { RolloutStatus, WatchMessage } from './client/apps.js';

/** Every call of the API: apps, nodes, access, teams, secrets, configs and alerts (client/*.ts). */
export class GantryClient extends AlertCalls {}
