// Release history: list, compare, and roll back (which deploys an old release's spec as a new
// release, so history only ever grows). Rolling back by default goes to the newest earlier
// release that differs from what runs: a history may hold releases identical to their
// successor (an older version made one for every re-apply of an unchanged spec).
import type { Store } from '../../store/store.js';
import type { ReleaseRecord } from '../../model/types.js';
import { diff, type Change } from '../../model/diff.js';
import { sameSpec } from '../../model/spec.js';
import type { AppService } from './apps.js';
import { STORE } from '../keys.js';
import { ConflictError, NotFoundError } from '../errors.js';

export class ReleaseService {
  constructor(
    private readonly store: Store,
    private readonly apps: AppService,
  ) {}

  async history(app: string): Promise<ReleaseRecord[]> {
    this.apps.get(app);
    const { kvs } = await this.store.range(STORE.releases.key(app));
    return kvs.map((kv) => STORE.releases.decode(kv.value));
  }

  async get(app: string, release: number): Promise<ReleaseRecord> {
    const kv = await this.store.get(STORE.releases.key(app, release));
    if (!kv) throw new NotFoundError(`app ${app} has no release ${release}`);
    return STORE.releases.decode(kv.value);
  }

  async compare(app: string, from: number, to: number): Promise<Change[]> {
    const [a, b] = await Promise.all([this.get(app, from), this.get(app, to)]);
    return diff(a.spec, b.spec);
  }

  /** Deploys release `target` (default: the newest earlier one that differs from the current) again, as a new release. */
  async rollback(app: string, target: number | undefined, user: string, authorize?: (app: string, team: string, current: string | undefined) => void): Promise<{ from: number; to: number; release: number }> {
    const current = this.apps.get(app);
    const history = await this.history(app);
    const earlier = history.filter((r) => r.release < current.release);
    if (target === undefined && earlier.length === 0) throw new NotFoundError(`app ${app} has no release before ${current.release} to roll back to`);
    const wanted = target ?? earlier.filter((r) => !sameSpec(r.spec, current.spec, { ignoreReplicas: true })).at(-1)?.release;
    if (wanted === undefined) throw new NotFoundError(`app ${app} has no release before ${current.release} that differs from it: nothing to roll back to`);
    const old = await this.get(app, wanted);
    // Replica counts are operational, not part of what is rolled back.
    const spec = structuredClone(old.spec);
    for (const [name, entry] of Object.entries(spec.entrypoints)) {
      const now = current.spec.entrypoints[name];
      if (now) entry.replicas = now.replicas;
    }
    const result = await this.apps.apply(spec, user, { note: `rollback to release ${wanted}`, authorize });
    if (!result.changed) throw new ConflictError(`release ${wanted} is what app ${app} runs already`);
    return { from: current.release, to: wanted, release: result.app.release };
  }
}
