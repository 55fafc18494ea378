// The team secret and config paths of the OpenAPI document (api/secrets.ts, api/configs.ts).
import { NAME } from '../../model/names.js';
import { MAX_SECRET_BYTES } from '../services/secrets.js';
import { body, conflict, list, matching, object, ok, op, pathParam, queryParam } from './openapi-helpers.js';

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
  const config = pathParam('name', matching(NAME), 'Config name');
  const configRecord = object({ team: { type: 'string' }, name: { type: 'string' }, version: { type: 'integer' }, text: { type: 'string' }, values: { type: 'object', additionalProperties: { type: 'string' } }, updatedAt: { type: 'integer' }, updatedBy: { type: 'string' }, note: { type: 'string' } });
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
        responses: { '200': ok('Stored', object({ secret: info, rolled: list(object({ app: { type: 'string' }, release: { type: 'integer' } })), waiting: list(object({ app: { type: 'string' }, message: { type: 'string' } })), failed: list(object({ app: { type: 'string' }, error: { type: 'string' } })) })), ...conflict(`The team has the most secrets it may have`) },
      }),
      delete: op({ summary: "Remove a secret no app uses (the team's owners and developers, admins)", parameters: [team, secret], responses: { '200': ok('Removed', object({ removed: { type: 'string' } })), ...conflict('Apps use it') } }),
    },
    '/v1/teams/{team}/configs': {
      get: op({ summary: "The team's configs: names, kinds (file or env), versions, which apps use them (the team's members, admins)", parameters: [team], responses: { '200': ok('Configs', object({ configs: list({ type: 'object' }) })) } }),
    },
    '/v1/teams/{team}/configs/{name}': {
      get: op({ summary: 'A config: its current version, or `version`', parameters: [team, config, queryParam('version', { type: 'integer', minimum: 1 })], responses: { '200': ok('The config', object({ config: configRecord })) } }),
      put: op({
        summary: "A new version of a config (the team's owners and developers, admins): `text` (a file) or `values` (key-values for env). Apps whose entries restart on a change get a release (a rollout); entries with onConfigChange signal/hook get the file rewritten in place",
        parameters: [team, config],
        requestBody: body({ text: { type: 'string' }, values: { type: 'object', additionalProperties: { type: 'string' } }, note: { type: 'string', maxLength: 256 } }),
        responses: { '200': ok('Stored', object({ config: { type: 'object' }, rolled: list(object({ app: { type: 'string' }, release: { type: 'integer' } })), waiting: list(object({ app: { type: 'string' }, message: { type: 'string' } })), failed: list(object({ app: { type: 'string' }, error: { type: 'string' } })) })), ...conflict('A different kind than the current version, or too many configs') },
      }),
      delete: op({ summary: "Remove a config no app uses, with its history (the team's owners, admins)", parameters: [team, config], responses: { '200': ok('Removed', object({ removed: { type: 'string' } })), ...conflict('Apps use it') } }),
    },
    '/v1/teams/{team}/configs/{name}/history': {
      get: op({ summary: 'Every kept version of a config (the newest 50), oldest first', parameters: [team, config], responses: { '200': ok('Versions', object({ versions: list(configRecord) })) } }),
    },
    '/v1/teams/{team}/configs/{name}/diff': {
      get: op({ summary: 'What changed between two versions: key-values by key, a text by line', parameters: [team, config, queryParam('from', { type: 'integer', minimum: 1 }, 'the older version', true), queryParam('to', { type: 'integer', minimum: 1 }, 'the newer one (default: current)')], responses: { '200': ok('Changes', object({ from: { type: 'integer' }, to: { type: 'integer' }, changes: list({ type: 'object' }) })) } }),
    },
    '/v1/teams/{team}/configs/{name}/rollback': {
      post: op({ summary: "Make an earlier version's content the newest version again (a new version, history only grows)", parameters: [team, config], requestBody: body({ version: { type: 'integer', minimum: 1 } }, ['version']), responses: { '200': ok('Stored', object({ config: { type: 'object' } })), ...conflict('That version is the current one') } }),
    },
    '/v1/secrets/rotate-key': {
      post: op({ summary: 'Seal every team secret and registry password sealed with a previous key again with the current one (admins); afterwards the previous keys can go', responses: { '200': ok('How many were sealed again', object({ key: { type: 'string' }, secrets: { type: 'integer' }, registryLogins: { type: 'integer' } })) } }),
    },
  };
}
