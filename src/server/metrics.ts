// The server's own metrics, in Prometheus' text format at GET /metrics (api/cluster.ts). One
// registry per server, never prom-client's global one, so several servers in one process (the
// tests) each export their own. Every label value comes from a closed set — the route pattern the
// router matched, a known method, a status class, a store call, an instance state — so nothing a
// client sends can grow the number of series. What the cluster holds (instances by state,
// connected agents, passes run) is read from the cache at scrape time, not counted from events,
// so it cannot drift from what the server knows.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processMetrics } from '../host/process-metrics.js';
import type { FastifyInstance } from 'fastify';
import { InstanceStatusSchema } from '../model/agent-protocol.js';
import type { StoreOperation } from '../store/timed-store.js';
import type { ClusterState } from './state.js';
import { matchesNoRoute } from './access.js';
import type { PassFigures } from './controllers/replicas.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const INSTANCE_STATES = InstanceStatusSchema.shape.state.options;
/** Store calls take well under a millisecond to tens of milliseconds (a fsync, a big range). */
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** What the scrape-time gauges read: the cluster cache, who is connected, the passes' figures. */
export interface MetricSources {
  state: Pick<ClusterState, 'instances' | 'statuses' | 'nodes'>;
  isConnected(node: string): boolean;
  passFigures(): PassFigures;
}

export class ServerMetrics {
  private readonly registry = new Registry();
  private readonly requests: Histogram<'route' | 'method' | 'status'>;
  private readonly storeCalls: Histogram<'operation'>;
  private readonly passes: Histogram;
  private readonly placements: Counter;

  constructor() {
    const registers = [this.registry];
    this.requests = new Histogram({ name: 'gantry_http_request_duration_seconds', help: 'API requests by matched route pattern, method and status class', labelNames: ['route', 'method', 'status'], registers });
    this.storeCalls = new Histogram({ name: 'gantry_store_operation_duration_seconds', help: 'Calls the server made to its store, by operation', labelNames: ['operation'], buckets: STORE_BUCKETS, registers });
    this.passes = new Histogram({ name: 'gantry_reconcile_pass_duration_seconds', help: 'Reconcile passes that looked at something: planning and writing', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.placements = new Counter({ name: 'gantry_placements_total', help: 'Instances placed on a node by reconcile passes (written)', registers });
  }

  readonly contentType = this.registry.contentType;

  /** The text Prometheus scrapes: this server's metrics and the process's. */
  async text(): Promise<string> {
    return Registry.merge([processMetrics(), this.registry]).metrics();
  }

  /** Times every request, labelled by the route the router matched (`unmatched` when none did). */
  instrument(server: FastifyInstance): void {
    server.addHook('onResponse', async (request, reply) => {
      const route = matchesNoRoute(request) ? 'unmatched' : (request.routeOptions.url ?? 'unmatched');
      const method = METHODS.has(request.method) ? request.method : 'other';
      this.requests.observe({ route, method, status: `${Math.floor(reply.statusCode / 100)}xx` }, reply.elapsedTime / 1000);
    });
  }

  readonly storeCall = (operation: StoreOperation, seconds: number): void => this.storeCalls.observe({ operation }, seconds);

  readonly reconcilePass = (ms: number, placed: number): void => {
    this.passes.observe(ms / 1000);
    if (placed > 0) this.placements.inc(placed);
  };

  /** The gauges and counters read at scrape time from what the server holds. */
  follow(sources: MetricSources): void {
    const registers = [this.registry];
    new Gauge({
      name: 'gantry_instances',
      help: 'Instances by the state their agent last reported (pending: none reported yet)',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<string, number>(INSTANCE_STATES.map((state) => [state, 0]));
        for (const id of sources.state.instances.keys()) {
          const state = sources.state.statuses.get(id)?.state ?? 'pending';
          counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'gantry_agents_connected',
      help: 'Nodes whose agent holds a connection to this server',
      registers,
      collect() {
        let n = 0;
        for (const node of sources.state.nodes.keys()) if (sources.isConnected(node)) n++;
        this.set(n);
      },
    });
    new Counter({
      name: 'gantry_reconcile_passes_total',
      help: 'Reconcile passes by kind: full (every app), scoped (the apps something happened to), idle (nothing to look at)',
      labelNames: ['kind'],
      registers,
      collect() {
        const figures = sources.passFigures();
        // The controller keeps the totals; a counter set from them at scrape time stays exact.
        this.reset();
        this.inc({ kind: 'full' }, figures.fullPasses);
        this.inc({ kind: 'scoped' }, figures.passes - figures.fullPasses - figures.idlePasses);
        this.inc({ kind: 'idle' }, figures.idlePasses);
      },
    });
  }
}
