// The child process of fleet-process.ts: runs one hollow fleet and answers its parent's requests
// over the IPC channel. It lifts its open-file limit first (a socket per node), and goes away with
// its parent: a bench that dies must not leave 5,000 sockets knocking on a server.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { raiseFileLimit } from '../host/file-limit.js';
import { Fleet } from './fleet.js';
import type { FleetProcessStats, FleetReply, FleetRequest } from './fleet-process.js';

let fleet: Fleet | undefined;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

const reply = (message: FleetReply) => process.send?.(message);
const ms = (ns: number) => Math.round(ns / 1e5) / 10;

async function handle(request: FleetRequest): Promise<unknown> {
  if (request.type === 'start') {
    if (fleet) throw new Error('the fleet is started already');
    const { limit, note } = raiseFileLimit();
    const needed = request.options.count + 64;
    if (limit && limit.soft < needed) throw new Error(`this process may open ${limit.soft} files, and ${request.options.count} hollow nodes need about ${needed}${note ? ` (${note})` : ''}: raise the hard limit (ulimit -Hn)`);
    fleet = new Fleet(request.options);
    await fleet.start();
    return fleet.stats();
  }
  if (!fleet) throw new Error('the fleet is not started');
  switch (request.type) {
    case 'silence': {
      const names = request.names ?? fleet.pick(request.count ?? 0);
      fleet.silence(names, request.on);
      return names;
    }
    case 'crash':
      return fleet.crash(request.count, request.kind);
    case 'usage':
      fleet.reportUsageEvery(request.everyMs);
      return true;
    case 'stats': {
      const stats: FleetProcessStats = {
        ...fleet.stats(),
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
        cpuSeconds: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1e4) / 100,
        eventLoopDelayMaxMs: ms(loopDelay.max),
        eventLoopDelayP99Ms: ms(loopDelay.percentile(99)),
      };
      loopDelay.reset();
      return stats;
    }
    case 'close':
      fleet.close();
      setTimeout(() => process.exit(0), 200).unref();
      return true;
  }
}

process.on('message', (message: { id: number } & FleetRequest) => {
  handle(message).then(
    (result) => reply({ id: message.id, ok: true, result }),
    (err: unknown) => reply({ id: message.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => {
  fleet?.close();
  process.exit(0);
});
