// Rolling the apps that use a team secret or config onto its new version: for each, its current
// spec with the use's version changed, applied as a user would (a release with a note saying why,
// so a rollout as the entries' update strategies say). One app that cannot take it (its spec no
// longer applies: an image gone from its registry, say) is reported and does not stop the others;
// the new version is stored either way.
import type { AppSpec } from '../../model/spec.js';
import type { ClusterState } from '../state.js';
import type { EventLog } from './events.js';
import type { ApplySpec } from './secrets.js';
import { ApprovalPending } from './approvals.js';

export interface RollOutcome {
  rolled: { app: string; release: number }[];
  /** Apps in an env gated by approvals: their roll is a request an owner approves (`gantry approve <app>`). */
  waiting: { app: string; message: string }[];
  failed: { app: string; error: string }[];
}

/** `pin` changes the spec's uses to the new version in place; false when the app has none to roll. */
export async function rollApps(state: ClusterState, events: EventLog, apps: string[], pin: (spec: AppSpec) => boolean, applySpec: ApplySpec, by: string, note: string): Promise<RollOutcome> {
  const outcome: RollOutcome = { rolled: [], waiting: [], failed: [] };
  for (const app of apps) {
    const record = state.apps.get(app);
    if (!record) continue;
    const spec = structuredClone(record.spec);
    if (!pin(spec)) continue;
    try {
      const result = await applySpec(spec, by, note);
      if (result.changed) outcome.rolled.push({ app, release: result.app.release });
    } catch (err) {
      if (err instanceof ApprovalPending) {
        outcome.waiting.push({ app, message: err.message });
        continue;
      }
      const error = err instanceof Error ? err.message : String(err);
      outcome.failed.push({ app, error });
      events.note({ level: 'warning', type: 'app.roll_failed', app, message: `${app} was not rolled (${note}): ${error}` });
    }
  }
  return outcome;
}
