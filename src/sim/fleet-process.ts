// A hollow fleet in a child process of its own, driven over the IPC channel: a bench that probes
// the server's latency must not share its event loop with 5,000 sockets (its own delays would be
// counted as the server's), and the fleet's CPU and memory are then its own, apart from the
// bench's and the server's. The child is fleet-child.ts; this is the parent's handle on it.
import { fork, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FleetCounters } from './counters.js';
import type { FleetOptions } from './fleet.js';
import type { CrashKind } from './hollow-instances.js';

/** The fleet's counters, and what running it costs its process. */
export interface FleetProcessStats extends FleetCounters {
  rssMiB: number;
  cpuSeconds: number;
  /** The worst event-loop delay since the previous stats call: a fleet this late heartbeats late. */
  eventLoopDelayMaxMs: number;
  eventLoopDelayP99Ms: number;
}

export type FleetRequest =
  | { type: 'start'; options: FleetOptions }
  | { type: 'silence'; count?: number; names?: string[]; on: boolean }
  | { type: 'crash'; count: number; kind: CrashKind }
  | { type: 'usage'; everyMs?: number }
  | { type: 'stats' }
  | { type: 'close' };

export type FleetReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

// The child is this file's sibling, compiled or not (.js in dist/, .ts through tsx).
const CHILD = fileURLToPath(new URL(`./fleet-child${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export class FleetProcess {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: FleetReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.result);
      else waiter?.reject(new Error(reply.error));
    });
    this.exited = new Promise((resolve) => child.once('exit', () => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error('the hollow fleet process exited'));
      this.waiting.clear();
      resolve();
    }));
  }

  /** Forks the fleet and connects it; resolves once every node was welcomed or failed once. */
  static async start(options: FleetOptions): Promise<FleetProcess> {
    const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const fleet = new FleetProcess(child);
    await fleet.call({ type: 'start', options });
    return fleet;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Silences `count` nodes spread over the fleet (or the ones named); returns their names. */
  silence(selection: { count: number } | { names: string[] }, on = true): Promise<string[]> {
    return this.call({ type: 'silence', ...selection, on }) as Promise<string[]>;
  }

  crash(count: number, kind: CrashKind): Promise<string[]> {
    return this.call({ type: 'crash', count, kind }) as Promise<string[]>;
  }

  /** Every node reports usage this often from now on (undefined: stops). */
  reportUsageEvery(everyMs: number | undefined): Promise<unknown> {
    return this.call({ type: 'usage', everyMs });
  }

  stats(): Promise<FleetProcessStats> {
    return this.call({ type: 'stats' }) as Promise<FleetProcessStats>;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await this.call({ type: 'close' }).catch(() => {});
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(killer);
    }
  }

  private call(request: FleetRequest): Promise<unknown> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, ...request }, (err) => {
        if (!err) return;
        this.waiting.delete(id);
        reject(err);
      });
    });
  }
}
