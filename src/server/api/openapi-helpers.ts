// The building blocks of the OpenAPI document (openapi.ts, openapi-paths.ts): schemas by
// reference, responses, parameters, and the errors every route behind a token may answer.
export const json = (schema: object) => ({ content: { 'application/json': { schema } } });
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const ok = (description: string, schema: object = { type: 'object' }) => ({ description, ...json(schema) });
export const object = (properties: Record<string, object>, required: string[] = []) => ({ type: 'object', ...(required.length > 0 ? { required } : {}), properties });
export const list = (items: object) => ({ type: 'array', items });
/** A string checked against one of the name patterns of model/names.ts. */
export const matching = (pattern: RegExp) => ({ type: 'string', pattern: pattern.source });
/** A strict JSON body (unknown fields are a 400); `required: false` where no body means the defaults. */
export const body = (properties: Record<string, object>, required: string[] = [], bodyRequired = true) => ({
  required: bodyRequired,
  ...json({ ...object(properties, required), additionalProperties: false }),
});

/** Refusals at the door (access.ts) and bodies refused unread (http.ts) close the connection. */
export const closes = { headers: { Connection: { schema: { type: 'string', const: 'close' } } } };
export const error = (description: string, extra: object = {}) => ({ description, ...extra, ...json(ref('Error')) });
/** What every route behind a token may answer besides its own responses. */
export const errors = {
  '400': error('Invalid request; `problems` names each bad field (a bad path parameter by its name)'),
  '401': error('Missing or unknown token', closes),
  '403': error("The token's role may not use this route", closes),
  '404': error('No such object'),
};
/** Request bodies are limited to 1 MiB (BODY_LIMIT in http.ts). */
const tooLarge = { '413': error('Body larger than 1 MiB, refused unread', closes) };
export const conflict = (description: string) => ({ '409': error(description) });

export interface Operation {
  summary: string;
  description?: string;
  parameters?: object[];
  requestBody?: object;
  responses: Record<string, object>;
}
/** An operation behind a token: its own responses over `errors`, and a 413 when it takes a body. */
export const op = ({ responses, ...operation }: Operation) => ({ ...operation, responses: { ...errors, ...(operation.requestBody ? tooLarge : {}), ...responses } });

/** A path parameter, checked before any handler uses it (params.ts): a mismatch is a 400 naming it. */
export const pathParam = (name: string, schema: object, description: string) => ({ name, in: 'path', required: true, description, schema });
export const queryParam = (name: string, schema: object, description?: string, required = false) => ({ name, in: 'query', ...(required ? { required } : {}), ...(description ? { description } : {}), schema });
/** `follow` and the like: 1 or true switch it on. */
export const flag = { type: 'string', enum: ['1', 'true', '0', 'false'] };
export const eventStream = (description: string) => ({ description, content: { 'text/event-stream': { schema: { type: 'string' } } } });
