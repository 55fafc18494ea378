// Turns the scheduler's CPU plan into what a runtime applies: a bound instance runs on its own
// cores (exclusive ones plus its fragment) with a matching weight; an unbound one runs on the
// node's shared pool, the cores that are neither reserved for the host nor held exclusively.
import type { Instance } from '../model/types.js';

export function sharedPool(cores: number, reservedCores: number, instances: Iterable<Instance>): number[] {
  const taken = new Set<number>();
  for (let core = 0; core < Math.min(reservedCores, cores); core++) taken.add(core);
  for (const instance of instances) {
    if (instance.cpu?.mode === 'bound' && instance.desired !== 'removed') for (const core of instance.cpu.exclusive) taken.add(core);
  }
  const pool = [];
  for (let core = 0; core < cores; core++) if (!taken.has(core)) pool.push(core);
  return pool;
}

export function cpuFor(instance: Instance, shared: number[]): { cpuset?: number[]; cpuShares?: number } {
  const plan = instance.cpu;
  if (plan?.mode === 'bound') {
    const cpuset = [...plan.exclusive, ...(plan.fragment ? [plan.fragment.core] : [])].sort((a, b) => a - b);
    return { cpuset, cpuShares: Math.max(2, Math.round((1024 * plan.shares) / plan.shareBase)) };
  }
  // An empty pool (everything reserved or bound) would make the instance unstartable: no cpuset then.
  return shared.length > 0 ? { cpuset: shared } : {};
}
