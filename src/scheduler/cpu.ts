// The CPU model. Each core is shareBase (S) shares. The lowest `reserved.cores` cores belong to the
// host and are never handed out. Of the other ("allocatable") cores:
//   - a bound instance asking D shares takes X = floor(D/S) whole cores exclusively plus, when
//     f = D mod S > 0, f shares of ONE fragment core it shares with other fragments;
//   - the shared pool is every allocatable core no bound instance holds exclusively; unbound
//     instances run there with a CFS quota, and fragments live there too.
// One invariant ties them: on a node, every share handed out (exclusive cores * S + fragments +
// unbound quota) <= allocatable cores * S. So taking an exclusive core shrinks the pool and needs
// pool capacity left for the unbound instances already there; a fragment uses pool capacity too.
// Fragment core choice: the fullest core with fragments that still fits (best fit, keeps whole
// cores whole), else a fresh empty core taken from the top; exclusive cores come from the bottom.
import type { BoundCpu, CpuPlan, SharedCpu } from './types.js';
import type { NodeEntry, NodeUsage } from './state.js';

export const PERIOD_MICROS = 100_000;

/** Shares for a CPU amount on a node of shareBase S (rounded up; at least 1). */
export function sharesFor(cpu: number, S: number): number {
  return Math.max(1, Math.ceil(cpu * S - 1e-6));
}

/** Recomputes the derived empties / maxPartialFree of a node. */
export function refreshCpu(e: NodeEntry, u: NodeUsage): void {
  const S = e.S;
  let empties = 0;
  let maxPartialFree = 0;
  for (let c = e.first; c < e.cores; c++) {
    if (u.excl[c]! !== 0) continue;
    const f = u.frag[c]!;
    if (f === 0) empties++;
    else if (f < S && S - f > maxPartialFree) maxPartialFree = S - f;
  }
  u.empties = empties;
  u.maxPartialFree = maxPartialFree;
}

export const totalFree = (e: NodeEntry, u: NodeUsage): number => e.allocShares - u.usedShares;

/** Largest request (shares) that fits now: bound needs whole empty cores plus one fragment core. */
export function cpuFree(e: NodeEntry, u: NodeUsage, bound: boolean): number {
  const free = e.allocShares - u.usedShares;
  if (!bound) return free;
  const bindable = u.empties * e.S + u.maxPartialFree;
  return bindable < free ? bindable : free;
}

/** Picks cores for D shares (the caller checked cpuFree >= D). Does not change u. */
export function allocateCpu(e: NodeEntry, u: NodeUsage, D: number, bound: boolean): CpuPlan {
  const S = e.S;
  if (!bound) return sharedPlan(S, D);
  const whole = Math.floor(D / S);
  const f = D - whole * S;
  let fragCore = -1;
  if (f > 0) {
    let bestUsed = 0;
    for (let c = e.first; c < e.cores; c++) {
      const used = u.frag[c]!;
      if (u.excl[c]! === 0 && used > 0 && used + f <= S && used >= bestUsed) {
        bestUsed = used;
        fragCore = c;
      }
    }
    if (fragCore < 0) {
      for (let c = e.cores - 1; c >= e.first; c--) {
        if (u.excl[c]! === 0 && u.frag[c]! === 0) {
          fragCore = c;
          break;
        }
      }
    }
  }
  const exclusive: number[] = [];
  for (let c = e.first; c < e.cores && exclusive.length < whole; c++) {
    if (c !== fragCore && u.excl[c]! === 0 && u.frag[c]! === 0) exclusive.push(c);
  }
  const plan: BoundCpu = { mode: 'bound', shareBase: S, shares: D, exclusive };
  if (fragCore >= 0) plan.fragment = { core: fragCore, shares: f };
  return plan;
}

export function sharedPlan(S: number, D: number): SharedCpu {
  return { mode: 'shared', shareBase: S, shares: D, quotaMicros: Math.round((D / S) * PERIOD_MICROS), periodMicros: PERIOD_MICROS };
}

/** Why a CPU plan cannot be applied to the node as it is (null when it can). */
export function checkCpu(e: NodeEntry, u: NodeUsage, plan: CpuPlan): string | null {
  if (plan.shareBase !== e.S) return `cpu plan shareBase ${plan.shareBase} != node shareBase ${e.S}`;
  if (!(plan.shares > 0) || !Number.isInteger(plan.shares)) return `cpu plan shares ${plan.shares} is not a positive integer`;
  if (u.usedShares + plan.shares > e.allocShares) return `cpu: ${plan.shares} shares wanted, ${e.allocShares - u.usedShares} free`;
  if (plan.mode === 'shared') return null;
  const seen = new Set<number>();
  const own = (c: number) => Number.isInteger(c) && c >= e.first && c < e.cores && !seen.has(c);
  for (const c of plan.exclusive) {
    if (!own(c)) return `cpu: core ${c} is reserved, out of range or listed twice`;
    if (u.excl[c]! !== 0 || u.frag[c]! !== 0) return `cpu: core ${c} is not free for exclusive use`;
    seen.add(c);
  }
  let sum = plan.exclusive.length * e.S;
  if (plan.fragment) {
    const { core: c, shares } = plan.fragment;
    if (!own(c)) return `cpu: core ${c} is reserved, out of range or listed twice`;
    if (!(shares > 0 && shares < e.S) || !Number.isInteger(shares)) return `cpu: fragment of ${shares} shares is not between 1 and ${e.S - 1}`;
    if (u.excl[c]! !== 0 || u.frag[c]! + shares > e.S) return `cpu: core ${c} has ${u.excl[c] ? 0 : e.S - u.frag[c]!} shares free, ${shares} wanted`;
    sum += shares;
  }
  if (sum !== plan.shares) return `cpu plan shares ${plan.shares} != cores listed (${sum})`;
  return null;
}

export function applyCpu(e: NodeEntry, u: NodeUsage, plan: CpuPlan): void {
  u.usedShares += plan.shares;
  if (plan.mode === 'shared') {
    u.unboundShares += plan.shares;
    return;
  }
  for (const c of plan.exclusive) u.excl[c]!++;
  if (plan.fragment) u.frag[plan.fragment.core]! += plan.fragment.shares;
  refreshCpu(e, u);
}

export function releaseCpu(e: NodeEntry, u: NodeUsage, plan: CpuPlan): void {
  u.usedShares -= plan.shares;
  if (plan.mode === 'shared') {
    u.unboundShares -= plan.shares;
    return;
  }
  for (const c of plan.exclusive) if (u.excl[c]! > 0) u.excl[c]!--;
  if (plan.fragment) u.frag[plan.fragment.core] = Math.max(0, u.frag[plan.fragment.core]! - plan.fragment.shares);
  refreshCpu(e, u);
}

/** How many more instances of D shares fit on the node by CPU alone (same answer as placing them one by one). */
export function cpuCount(e: NodeEntry, u: NodeUsage, D: number, bound: boolean): number {
  const S = e.S;
  const byTotal = Math.max(0, Math.floor((e.allocShares - u.usedShares) / D));
  if (!bound) return byTotal;
  const whole = Math.floor(D / S);
  const f = D - whole * S;
  if (f === 0) return Math.min(byTotal, Math.floor(u.empties / whole));
  if (whole === 0) {
    // Equal fragments: every core ends up with floor(free / f) of them, whatever the order.
    let n = 0;
    for (let c = e.first; c < e.cores; c++) if (u.excl[c]! === 0) n += Math.floor((S - u.frag[c]!) / f);
    return Math.min(byTotal, n);
  }
  // Mixed shape: at most cores / whole instances, so simulate on a copy.
  const sim = u.clone();
  let n = 0;
  while (n < byTotal && cpuFree(e, sim, true) >= D) {
    applyCpu(e, sim, allocateCpu(e, sim, D, true));
    n++;
  }
  return n;
}

/** The shared pool's cores: allocatable cores no bound instance holds exclusively. */
export function poolCores(e: NodeEntry, u: NodeUsage): number[] {
  const out: number[] = [];
  for (let c = e.first; c < e.cores; c++) if (u.excl[c]! === 0) out.push(c);
  return out;
}
