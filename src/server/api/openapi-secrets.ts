// The team secret paths of the OpenAPI document (api/secrets.ts).
import { NAME } from '../../model/names.js';
import { MAX_SECRET_BYTES } from '../services/secrets.js';
import { body, conflict, list, matching, object, ok, op, pathParam } from './openapi-helpers.js';

const info = object({
  team: { type: 'string' },
  name: { type: 'string' },
  version: { type: 'integer' },
  createdAt: { type: 'integer' },
  createdBy: { type: 'string' },
  updatedAt: { type: 'integer' },
  updatedBy: { type: 'string' },
  usedBy: list({ type: 'string' }),
});

export function secretPaths(): Record<string, object> {
  const team = pathParam('team', matching(NAME), 'Team name');
  const secret = pathParam('name', matching(NAME), 'Secret name');
  return {
    '/v1/teams/{team}/secrets': {
      get: op({ summary: "The team's secrets: names, versions, who changed them, which apps use them; never values (the team's members, admins)", parameters: [team], responses: { '200': ok('Secrets', object({ secrets: list(info) })) } }),
    },
    '/v1/teams/{team}/secrets/{name}': {
      get: op({ summary: "A secret's value (the team's owners, admins); every read is in the audit log", parameters: [team, secret], responses: { '200': ok('The secret and its value', object({ secret: info, value: { type: 'string' } })) } }),
      put: op({
        summary: "Set a secret (a new version; the team's owners and developers, admins). Answers which apps use it; running instances keep their value unless `roll` gives each of those apps a release that rolls its instances",
        parameters: [team, secret],
        requestBody: body({ value: { type: 'string', minLength: 1, description: `at most ${MAX_SECRET_BYTES} bytes of UTF-8, no NUL` }, roll: { type: 'boolean', default: false } }, ['value']),
        responses: { '200': ok('Stored', object({ secret: info, rolled: list(object({ app: { type: 'string' }, release: { type: 'integer' } })) })), ...conflict(`The team has the most secrets it may have`) },
      }),
      delete: op({ summary: "Remove a secret no app uses (the team's owners and developers, admins)", parameters: [team, secret], responses: { '200': ok('Removed', object({ removed: { type: 'string' } })), ...conflict('Apps use it') } }),
    },
    '/v1/secrets/rotate-key': {
      post: op({ summary: 'Seal every team secret and registry password sealed with a previous key again with the current one (admins); afterwards the previous keys can go', responses: { '200': ok('How many were sealed again', object({ key: { type: 'string' }, secrets: { type: 'integer' }, registryLogins: { type: 'integer' } })) } }),
    },
  };
}
