// A new version of a config reaches the running instances whose entry asked not to be restarted
// for it (`onConfigChange: { signal }` or `{ hook }`): the agent writes their files again in
// place and then tells them, with the signal or an HTTP POST to the hook on one of their ports.
// Entries that restart on a change get a new release from the server instead (a rollout).
import type { GantryEvent } from '../model/types.js';
import { inPlace } from '../model/spec-configs.js';
import type { Runtime } from '../runtime/runtime.js';
import { resolveValues, type NodeValueLookup } from './instance-values.js';
import type { Supervisor } from './supervisor.js';

const HOOK_TIMEOUT_MS = 10_000;
const LIVE: ReadonlySet<string> = new Set(['starting', 'running', 'unhealthy']);

export interface ReloadContext {
  supervisors: Iterable<Supervisor>;
  runtimeOf(instanceId: string): Runtime | undefined;
  lookup: NodeValueLookup;
  event(event: Omit<GantryEvent, 'time'>): void;
}

/** For each live instance whose files use one of the `changed` configs and which reloads in place: rewrite, then tell it. */
export async function reloadConfigs(changed: readonly string[], ctx: ReloadContext): Promise<void> {
  if (changed.length === 0) return;
  const jobs: Promise<void>[] = [];
  for (const supervisor of ctx.supervisors) {
    const { instance } = supervisor;
    const uses = (instance.spec.files ?? []).filter((f) => f.config !== undefined && changed.includes(f.config));
    if (uses.length === 0 || !inPlace(instance.spec) || !LIVE.has(supervisor.status.state)) continue;
    const runtime = ctx.runtimeOf(instance.id);
    const about = { app: instance.app, entry: instance.entry, instance: instance.id };
    jobs.push(
      (async () => {
        if (!runtime?.rewriteFiles || !runtime.signal) throw new Error(`the ${instance.runtime} runtime cannot change files in place`);
        await runtime.rewriteFiles(instance.id, resolveValues(instance, ctx.lookup).files);
        const how = instance.spec.onConfigChange!;
        if (typeof how === 'object' && 'signal' in how) await runtime.signal(instance.id, how.signal);
        else if (typeof how === 'object' && 'hook' in how) await callHook(instance.ports, how.hook);
        const told = typeof how === 'object' && 'signal' in how ? `${how.signal} sent` : 'hook called';
        ctx.event({ level: 'info', type: 'instance.config_reloaded', ...about, message: `${instance.id}: ${[...new Set(uses.map((u) => u.config))].join(', ')} rewritten in place, ${told}` });
      })().catch((err: Error) => ctx.event({ level: 'warning', type: 'instance.config_reload_failed', ...about, message: `${instance.id}: the new config could not be applied in place: ${err.message}` })),
    );
  }
  await Promise.all(jobs);
}

async function callHook(ports: readonly { name: string; container?: number; host: number }[], hook: { port: string | number; path: string }): Promise<void> {
  const port = ports.find((p) => p.name === hook.port || p.container === hook.port || p.host === hook.port);
  if (!port) throw new Error(`the hook's port ${hook.port} is not one of the instance's ports`);
  const response = await fetch(`http://127.0.0.1:${port.host}${hook.path}`, { method: 'POST', signal: AbortSignal.timeout(HOOK_TIMEOUT_MS) });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`the hook answered ${response.status}`);
}
