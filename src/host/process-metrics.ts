// The Node process's metrics (CPU, memory, GC, event loop), made once per process: each
// collectDefaultMetrics call starts a GC observer and an event loop monitor that nothing stops,
// so servers and agents started and stopped in one process (the tests, `gantry up`) would pile
// them up. Its own registry, not prom-client's global one; every /metrics merges it with its own.
import { collectDefaultMetrics, Registry } from 'prom-client';

let processRegistry: Registry | undefined;

export function processMetrics(): Registry {
  if (!processRegistry) collectDefaultMetrics({ register: (processRegistry = new Registry()) });
  return processRegistry;
}
