// The OpenAPI paths of what instances use (usage.ts): the JSON for gantry top, the Prometheus text.
import { NAME, NODE_NAME } from '../../model/names.js';
import { flag, list, matching, object, ok, op, queryParam } from './openapi-helpers.js';

const resources = object({ cpu: { type: 'number' }, memoryBytes: { type: 'integer' } });
const counter = { type: 'integer', minimum: 0 };
const sample = object({
  at: { type: 'integer', description: 'when the server got it, ms since the epoch' },
  cpuCores: { type: 'number', description: 'CPU over the last sample interval, in cores' },
  cpuSeconds: { type: 'number' },
  periods: counter,
  throttledPeriods: counter,
  throttledSeconds: { type: 'number' },
  memoryBytes: counter,
  memoryLimitBytes: { type: ['integer', 'null'] },
  oomKills: counter,
  netRxBytes: { type: ['integer', 'null'], description: 'null: no network of its own (process runtime)' },
  netTxBytes: { type: ['integer', 'null'] },
  blockReadBytes: counter,
  blockWriteBytes: counter,
});
const instance = object({
  id: { type: 'string' },
  app: { type: 'string' },
  env: { type: 'string' },
  entry: { type: 'string' },
  node: { type: 'string' },
  team: { type: 'string' },
  state: { type: ['string', 'null'] },
  restarts: counter,
  requests: resources,
  limits: resources,
  latest: { oneOf: [sample, { type: 'null' }] },
  history: object({ at: list({ type: 'integer' }), cpuCores: list({ type: 'number' }), memoryBytes: list({ type: 'integer' }) }),
});

export function usagePaths(): Record<string, object> {
  const filters = [
    queryParam('app', matching(NAME), 'Only this app’s instances'),
    queryParam('node', matching(NODE_NAME), 'Only this node’s instances'),
  ];
  return {
    '/v1/usage': {
      get: op({
        summary: 'What each instance uses (its newest sample and the last hour of CPU and memory) against its requests and limits, and per app totals; only the instances the caller may see',
        parameters: [...filters, queryParam('history', flag, 'false or 0: leave the history out; with it, at most 1000 instances may match (else a 400)')],
        responses: { '200': ok('Usage', object({ instances: list(instance), apps: list(object({ app: { type: 'string' }, instances: counter, cpuCores: { type: 'number' }, memoryBytes: counter, requests: resources })) })) },
      }),
    },
    '/v1/metrics/instances': {
      get: op({
        summary: "What each instance uses in Prometheus' text format (gantry_instance_*, labels app, env, entry, instance, node, team); only the instances the caller may see (docs/observability.md)",
        parameters: filters,
        responses: { '200': { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } },
      }),
    },
  };
}
