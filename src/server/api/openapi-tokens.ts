// The personal and robot token paths of the OpenAPI document (scoped-tokens.ts).
import { NAME, TOKEN_NAME } from '../../model/names.js';
import { DURATION_PATTERN } from '../../model/units.js';
import { body, conflict, list, matching, object, ok, op, pathParam } from './openapi-helpers.js';

const scoped = object({
  name: { type: 'string' },
  scope: list({ type: 'string' }),
  createdAt: { type: 'integer' },
  expiresAt: { type: 'integer' },
  teamRole: { type: 'string', enum: ['developer', 'viewer'] },
});
const scopeField = {
  type: 'array',
  maxItems: 32,
  items: { type: 'string', maxLength: 64 },
  default: ['read'],
  description: 'What the token may do at most: "read", "write" (and read), "all", or `<kind>:<verb>` items such as "app:write" (kind or verb may be "*")',
};
const expiresIn = { type: 'string', pattern: DURATION_PATTERN.source, description: 'How long it works, 1m to 8784h (366 days); absent: until revoked' };
const created = ok('The new token: the answer holds it, the only time it is shown', { ...scoped, properties: { ...scoped.properties, token: { type: 'string' } } });
const tokenParam = pathParam('name', matching(TOKEN_NAME), 'Token name');
const teamParam = pathParam('team', matching(NAME), 'Team name');
const fromSession = 'Made and revoked from a sign-in session only: a token cannot make another token.';

export function scopedTokenPaths(): Record<string, object> {
  return {
    '/v1/me/tokens': {
      get: op({ summary: "The caller's personal tokens (never the tokens themselves)", responses: { '200': ok('Tokens', object({ tokens: list(scoped) })) } }),
      post: op({
        summary: 'Make a personal token: it acts as its user, with the role they have now, narrowed by its scope',
        description: fromSession,
        requestBody: body({ name: matching(TOKEN_NAME), scope: scopeField, expiresIn }, ['name']),
        responses: { '201': created, ...conflict('The user has a token by this name') },
      }),
    },
    '/v1/me/tokens/{name}': {
      delete: op({ summary: 'Revoke one of your personal tokens: it stops working at once', description: fromSession, parameters: [tokenParam], responses: { '200': ok('Revoked', object({ revoked: scoped })) } }),
    },
    '/v1/teams/{team}/tokens': {
      get: op({ summary: "A team's robot tokens (its members)", parameters: [teamParam], responses: { '200': ok('Tokens', object({ tokens: list(scoped) })) } }),
      post: op({
        summary: "Make a robot token of a team (its owners), for CI: it acts in that team only, as developer or viewer, narrowed by its scope",
        description: fromSession,
        parameters: [teamParam],
        requestBody: body({ name: matching(TOKEN_NAME), role: { type: 'string', enum: ['developer', 'viewer'], default: 'viewer' }, scope: scopeField, expiresIn }, ['name']),
        responses: { '201': created, ...conflict('The team has a token by this name') },
      }),
    },
    '/v1/teams/{team}/tokens/{name}': {
      delete: op({ summary: "Revoke a team's robot token (its owners): it stops working at once", parameters: [teamParam, tokenParam], responses: { '200': ok('Revoked', object({ revoked: scoped })) } }),
    },
  };
}
