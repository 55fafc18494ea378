// What instances use: GET /v1/usage (JSON, for gantry top and the console) and
// GET /v1/metrics/instances (Prometheus text, for a Prometheus that scrapes or federates it).
// Both answer only the instances the caller may list (a member: their teams' apps'), from the
// samples the agents send (services/usage.ts); the series are bounded by the instances the
// caller sees, and every label value is a name the server validated (app, env, entry, instance,
// node, team).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Instance } from '../../model/types.js';
import type { AppUsage, InstanceUsage, UsageResponse } from '../../model/usage.js';
import { teamOfSpec } from '../../model/spec.js';
import { name, nodeName } from '../../model/names.js';
import { visibleTo, type ApiContext } from './context.js';

const UsageQuery = z.object({
  app: name('app').optional(),
  node: nodeName().optional(),
  history: z.enum(['1', 'true', '0', 'false']).optional().transform((v) => v !== '0' && v !== 'false'),
});

/** The instances of the query the caller may see, sorted by app, entry and id. */
function visibleInstances(ctx: ApiContext, request: FastifyRequest, app: string | undefined, node: string | undefined): Instance[] {
  const candidates = app ? ctx.state.instancesOf(app) : node ? ctx.state.instancesOnNode(node) : [...ctx.state.instances.values()];
  const visible = visibleTo(ctx, request, 'instance');
  return candidates
    .filter((i) => (!app || i.app === app) && (!node || i.node === node) && visible(i.id))
    .sort((a, b) => a.app.localeCompare(b.app) || a.entry.localeCompare(b.entry) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function teamOf(ctx: ApiContext, app: string): string {
  const record = ctx.state.apps.get(app);
  return record ? teamOfSpec(record.spec) : 'default';
}

function instanceUsage(ctx: ApiContext, instance: Instance, history: boolean): InstanceUsage {
  const status = ctx.state.statuses.get(instance.id);
  // Gantry reserves what it limits: an instance's request and limit are its spec's resources.
  const resources = { cpu: instance.spec.resources.cpu, memoryBytes: instance.spec.resources.memory };
  return {
    id: instance.id,
    app: instance.app,
    env: instance.env,
    entry: instance.entry,
    node: instance.node,
    team: teamOf(ctx, instance.app),
    state: status?.state ?? null,
    restarts: status?.restarts ?? 0,
    requests: resources,
    limits: resources,
    latest: ctx.usage.latest(instance.id) ?? null,
    ...(history ? { history: ctx.usage.history(instance.id) ?? { at: [], cpuCores: [], memoryBytes: [] } } : {}),
  };
}

function appTotals(instances: readonly InstanceUsage[]): AppUsage[] {
  const apps = new Map<string, AppUsage>();
  for (const i of instances) {
    const app = apps.get(i.app) ?? { app: i.app, instances: 0, cpuCores: 0, memoryBytes: 0, requests: { cpu: 0, memoryBytes: 0 } };
    app.instances++;
    app.cpuCores = Math.round((app.cpuCores + (i.latest?.cpuCores ?? 0)) * 1000) / 1000;
    app.memoryBytes += i.latest?.memoryBytes ?? 0;
    app.requests.cpu = Math.round((app.requests.cpu + i.requests.cpu) * 1000) / 1000;
    app.requests.memoryBytes += i.requests.memoryBytes;
    apps.set(i.app, app);
  }
  return [...apps.values()];
}

const LABELS = ['app', 'env', 'entry', 'instance', 'node', 'team'] as const;

/**
 * Most instances one answer carries the history of (360 samples each): an hour of a whole fleet
 * would be hundreds of megabytes of JSON built in one go.
 */
export const MAX_HISTORY_INSTANCES = 1000;

/** The instances' series in Prometheus' text format: gauges for rates and sizes, counters for totals. */
async function exposition(ctx: ApiContext, instances: readonly Instance[]): Promise<{ text: string; contentType: string }> {
  const registry = new Registry();
  const gauge = (metric: string, help: string) => new Gauge({ name: metric, help, labelNames: LABELS, registers: [registry] });
  const counter = (metric: string, help: string) => new Counter({ name: metric, help, labelNames: LABELS, registers: [registry] });
  const m = {
    cpu: gauge('gantry_instance_cpu_cores', 'CPU used over the last sample interval, in cores'),
    cpuLimit: gauge('gantry_instance_cpu_limit_cores', 'CPU the instance may use (its spec: Gantry reserves what it limits)'),
    cpuSeconds: counter('gantry_instance_cpu_seconds_total', 'CPU time used since the instance started'),
    periods: counter('gantry_instance_cpu_periods_total', 'CFS periods the instance ran in (with a CPU limit)'),
    throttled: counter('gantry_instance_cpu_throttled_periods_total', 'CFS periods in which the instance was throttled'),
    throttledSeconds: counter('gantry_instance_cpu_throttled_seconds_total', 'Time the instance was throttled'),
    memory: gauge('gantry_instance_memory_bytes', 'Memory in use, without inactive page cache'),
    memoryLimit: gauge('gantry_instance_memory_limit_bytes', 'Memory the instance may use (its spec)'),
    oom: counter('gantry_instance_oom_kills_total', 'Processes of the instance the kernel killed for its memory limit'),
    rx: counter('gantry_instance_network_receive_bytes_total', 'Bytes received (instances with a network of their own: docker)'),
    tx: counter('gantry_instance_network_transmit_bytes_total', 'Bytes sent (instances with a network of their own: docker)'),
    read: counter('gantry_instance_block_read_bytes_total', 'Bytes read from block devices'),
    write: counter('gantry_instance_block_write_bytes_total', 'Bytes written to block devices'),
    restarts: counter('gantry_instance_restarts_total', 'Restarts of the instance by its agent'),
  };
  for (const instance of instances) {
    const labels = { app: instance.app, env: instance.env, entry: instance.entry, instance: instance.id, node: instance.node, team: teamOf(ctx, instance.app) };
    m.cpuLimit.set(labels, instance.spec.resources.cpu);
    m.memoryLimit.set(labels, instance.spec.resources.memory);
    m.restarts.inc(labels, ctx.state.statuses.get(instance.id)?.restarts ?? 0);
    const s = ctx.usage.latest(instance.id);
    if (!s) continue;
    m.cpu.set(labels, s.cpuCores);
    m.cpuSeconds.inc(labels, s.cpuSeconds);
    m.periods.inc(labels, s.periods);
    m.throttled.inc(labels, s.throttledPeriods);
    m.throttledSeconds.inc(labels, s.throttledSeconds);
    m.memory.set(labels, s.memoryBytes);
    m.oom.inc(labels, s.oomKills);
    if (s.netRxBytes !== null) m.rx.inc(labels, s.netRxBytes);
    if (s.netTxBytes !== null) m.tx.inc(labels, s.netTxBytes);
    m.read.inc(labels, s.blockReadBytes);
    m.write.inc(labels, s.blockWriteBytes);
  }
  return { text: await registry.metrics(), contentType: registry.contentType };
}

export function usageRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/usage', async (request): Promise<UsageResponse> => {
    const { app, node, history } = UsageQuery.parse(request.query);
    const visible = visibleInstances(ctx, request, app, node);
    if (history && visible.length > MAX_HISTORY_INSTANCES) {
      throw Object.assign(new Error(`history: ${visible.length} instances match, and the history of at most ${MAX_HISTORY_INSTANCES} is answered at once: narrow with app= or node=, or ask with history=false`), { statusCode: 400 });
    }
    const instances = visible.map((i) => instanceUsage(ctx, i, history));
    return { instances, apps: appTotals(instances) };
  });

  server.get('/v1/metrics/instances', async (request, reply) => {
    const { app, node } = UsageQuery.parse(request.query);
    const { text, contentType } = await exposition(ctx, visibleInstances(ctx, request, app, node));
    return reply.type(contentType).send(text);
  });
}
