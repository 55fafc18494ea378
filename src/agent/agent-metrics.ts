// The agent's own metrics: an optional listener (`gantry agent --metrics-address 127.0.0.1:9101`,
// off by default) answering GET /metrics in Prometheus' text format with the agent process's
// metrics, its usage samples (how many, how long) and its instances by state. It listens on the
// address given and nothing else: bind it to loopback or a monitoring network, it has no auth.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processMetrics } from '../host/process-metrics.js';
import type { InstanceStatus } from '../model/types.js';

const STATES = ['pending', 'pulling', 'starting', 'running', 'unhealthy', 'backoff', 'stopping', 'exited', 'failed', 'lost', 'removed'] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly samples: Counter;
  private readonly sampleSeconds: Histogram;
  private readonly sampledInstances: Gauge;
  private server: Server | undefined;

  constructor(statuses: () => InstanceStatus[]) {
    this.samples = new Counter({ name: 'gantry_agent_usage_samples_total', help: 'Usage sampling rounds', registers: [this.registry] });
    this.sampleSeconds = new Histogram({ name: 'gantry_agent_usage_sample_duration_seconds', help: 'Time one usage sampling round took', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
    this.sampledInstances = new Gauge({ name: 'gantry_agent_sampled_instances', help: 'Instances the last usage sample read', registers: [this.registry] });
    new Gauge({
      name: 'gantry_agent_instances',
      help: 'Instances assigned to this node by the state its supervisor reports',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
        for (const status of statuses()) counts.set(status.state, (counts.get(status.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
  }

  sampled(seconds: number, instances: number): void {
    this.samples.inc();
    this.sampleSeconds.observe(seconds);
    this.sampledInstances.set(instances);
  }

  /** Listens on host:port; resolves with the port (0 picks one). */
  async listen(address: string): Promise<number> {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(colon + 1));
    if (colon < 0 || !host || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--metrics-address ${address}: expected host:port (127.0.0.1:9101)`);
    this.server = createServer((request, response) => {
      if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
        return;
      }
      Registry.merge([processMetrics(), this.registry]).metrics().then(
        (text) => response.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }).end(text),
        (err: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    });
    this.server.requestTimeout = 10_000;
    this.server.headersTimeout = 5_000;
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const bound = server.address();
    return typeof bound === 'object' && bound ? bound.port : port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.registry.clear();
  }
}
