// Path parameters, checked against the name patterns before any route uses them: they become
// store keys and map keys, so `__proto__`, `..`, `a/b` (from `%2f`) or a megabyte of text must
// never get that far. A bad one is a 400 naming the parameter.
import { z } from 'zod';
import { instanceId, name, nodeName } from '../../model/names.js';
import { TOKEN_NAME, TOKEN_NAME_RULE } from '../../model/names.js';

export const AppParams = z.object({ app: name('app') });
export const EntryParams = z.object({ app: name('app'), entry: name('entrypoint') });
export const ReleaseParams = z.object({ app: name('app'), release: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });
export const InstanceParams = z.object({ id: instanceId() });
export const NodeParams = z.object({ name: nodeName() });
export const PoolParams = z.object({ name: name('pool') });
export const TokenParams = z.object({ name: z.string().regex(TOKEN_NAME, `token name: ${TOKEN_NAME_RULE}`) });
/** Registry leases are ids the store hands out: hex. */
export const LeaseParams = z.object({ lease: z.string().regex(/^[0-9a-f]{1,32}$/, 'lease: the hex id returned by POST /v1/registry') });
export const TeamParams = z.object({ team: name('team') });
