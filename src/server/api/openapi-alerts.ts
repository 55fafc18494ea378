// The OpenAPI paths of alerts and silences (alerts.ts).
import { NAME, NODE_NAME } from '../../model/names.js';
import { SEVERITIES } from '../../model/spec-alerts.js';
import { body, conflict, list, matching, object, ok, op, pathParam, queryParam } from './openapi-helpers.js';

const labels = { type: 'object', additionalProperties: { type: 'string' }, description: 'what the alert is about: app, env, entry, team, or node' };
const alert = object({
  key: { type: 'string', description: 'rule × subject: one alert per key' },
  rule: { type: 'string' },
  severity: { type: 'string', enum: [...SEVERITIES] },
  labels,
  state: { type: 'string', enum: ['pending', 'firing', 'resolved'] },
  since: { type: 'integer', description: 'since when the condition holds (pending, firing) or when it stopped (resolved), ms since the epoch' },
  firingSince: { type: 'integer' },
  value: { type: 'string' },
  summary: { type: 'string' },
  notify: list({ type: 'string' }),
  notified: { type: 'boolean' },
  silencedBy: { type: 'string' },
});
const matchers = object({ rule: matching(NAME), app: matching(NAME), entry: matching(NAME), node: matching(NODE_NAME), severity: { type: 'string', enum: [...SEVERITIES] } });
const silence = object({ id: { type: 'string' }, matchers, endsAt: { type: 'integer' }, comment: { type: 'string' }, createdBy: { type: 'string' }, team: { type: 'string' } });

export function alertPaths(): Record<string, object> {
  return {
    '/v1/alerts': {
      get: op({
        summary: 'Pending, firing and lately resolved alerts the caller may see (a member: their teams’ apps’; cluster alerts: operators and admins)',
        parameters: [queryParam('app', matching(NAME), 'Only this app’s alerts'), queryParam('node', matching(NODE_NAME), 'Only this node’s alerts')],
        responses: { '200': ok('Alerts', object({ alerts: list(alert) })) },
      }),
    },
    '/v1/alert-silences': {
      get: op({ summary: 'Silences in force that the caller may see', responses: { '200': ok('Silences', object({ silences: list(silence) })) } }),
      post: op({
        summary: 'Silence the alerts every matcher matches for a while: they change state and send nothing. Naming an app needs write on it; naming none, write on nodes (operators, admins)',
        requestBody: body({ matchers, for: { type: 'string', description: 'how long, e.g. "2h" or "1d" (at most 30d)' }, comment: { type: 'string', maxLength: 500 } }, ['matchers', 'for']),
        responses: { '201': ok('The silence', object({ silence })), ...conflict('Too many silences') },
      }),
    },
    '/v1/alert-silences/{id}': {
      delete: op({
        summary: 'End a silence',
        parameters: [pathParam('id', { type: 'string', pattern: '^[0-9a-f]{8}$' }, 'The silence')],
        responses: { '200': ok('Removed', object({ removed: { type: 'string' } })) },
      }),
    },
  };
}
