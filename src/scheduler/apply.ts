// Recording placements in usage: the checks that keep anything from being handed out twice, and
// the bookkeeping shared by the snapshot (commit / release / load) and a plan's draft.
import type { Placement } from './types.js';
import { applyCpu, checkCpu, releaseCpu } from './cpu.js';
import { applyPorts, checkPorts, releasePorts } from './ports.js';
import { entryKey, type View } from './state.js';

export class PlacementConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlacementConflict';
  }
}

/** A view that can find nodes by name (the snapshot). */
export type NamedView = View & { index(name: string): number | undefined };

export function checkPlacement(view: NamedView, p: Placement): string | null {
  const i = view.index(p.node);
  if (i === undefined) return 'unknown node';
  const e = view.entries[i]!;
  const u = view.usage(i);
  if (u.memUsed + p.memoryBytes > e.allocMem) return `memory: ${p.memoryBytes} bytes wanted, ${e.allocMem - u.memUsed} free`;
  if (u.dedicatedApp !== null && u.dedicatedApp !== p.app) return `node is dedicated to app ${u.dedicatedApp} for now`;
  if (p.dedicated && u.instances - (view.appCounts(p.app)?.get(i) ?? 0) > 0) return 'node runs other apps (dedicated placement)';
  return checkCpu(e, u, p.cpu) ?? checkPorts(e, u, p.ports);
}

/** Records a placement without checks (the caller checked, or loads reality as it is). */
export function applyTo(view: NamedView, p: Placement): number {
  const i = view.index(p.node);
  if (i === undefined) throw new PlacementConflict(`unknown node ${p.node}`);
  applyAt(view, i, p, entryKey(p.app, p.env, p.entry));
  return i;
}

export function applyAt(view: View, i: number, p: Placement, key: string): void {
  const e = view.entries[i]!;
  const u = view.writable(i);
  applyCpu(e, u, p.cpu);
  u.memUsed += p.memoryBytes;
  applyPorts(e, u, p.ports);
  u.instances++;
  if (p.dedicated) {
    u.dedicatedApp = p.app;
    u.dedicatedCount++;
  }
  view.bump('entry', key, i, 1);
  view.bump('app', p.app, i, 1);
}

export function releaseFrom(snap: NamedView, p: Placement): void {
  const i = snap.index(p.node);
  if (i === undefined) return;
  const e = snap.entries[i]!;
  const u = e.u;
  releaseCpu(e, u, p.cpu);
  u.memUsed -= p.memoryBytes;
  releasePorts(e, u, p.ports);
  u.instances--;
  if (p.dedicated && --u.dedicatedCount <= 0) {
    u.dedicatedCount = 0;
    u.dedicatedApp = null;
  }
  snap.bump('entry', entryKey(p.app, p.env, p.entry), i, -1);
  snap.bump('app', p.app, i, -1);
}
