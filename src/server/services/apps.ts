// What users do to apps: apply a spec, scale an entry, stop, start, remove. Each is one
// compare-and-swap write, so a concurrent change is refused instead of lost. A spec is stored in
// canonical form (its JSON round trip) and compared that way, so applying an unchanged spec is
// a no-op: no write, no release, no rollout, no event.
import type { Store, TxnOp } from '../../store/store.js';
import type { AppRecord, ReleaseRecord, RolloutRecord } from '../../model/types.js';
import { diff } from '../../model/diff.js';
import { canonicalSpec, parseAppSpec, parseAppSpecText, privilegedHostPorts, sameSpec, SpecError, teamOfSpec, type AppSpec } from '../../model/spec.js';
import type { ClusterState } from '../state.js';
import { STORE } from '../keys.js';
import type { EventLog } from './events.js';
import { NotFoundError } from '../errors.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import type { ImagePinner, Unpinned } from '../images/pinning.js';
import type { QuotaGate, QuotaService } from './quotas.js';
import { teamOf } from './quota-use.js';
import { checkApprovalBase, type Approval, type ApprovalService } from './approvals.js';

export class AppService {
  /** Holds changes in envs a team gates until an owner approves them (set by the server's main). */
  approvals?: ApprovalService;

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    /** Fixed host ports below 1024 an admin allowed (`--allow-host-port`); others are refused. */
    private readonly allowedPrivilegedPorts: ReadonlySet<number> = new Set(),
    /** Resolves image tags to digests (none: images stay as written). */
    private readonly pinner?: ImagePinner,
    /** Team quotas: every write of an app record is checked against its team's (none: unlimited). */
    private readonly quotas?: QuotaService,
    /** Checks the secrets the spec uses (its team's, existing) and pins their versions; throws SpecError. */
    private readonly pinSecrets: (spec: AppSpec) => AppSpec = (spec) => spec,
  ) {}

  /**
   * Validates (SpecError on a bad spec, nothing stored) and stores a new release when it changed.
   * `authorize` (app, its team in the spec, its team now or undefined when new) throws when the
   * caller may not write there: asked before anything else happens, and again on the stored
   * record, so an app given to another team meanwhile is not overwritten. `approval`: this
   * applies a request an owner approved (services/approvals.ts), on the release it was made on.
   */
  async apply(input: string | object, user: string, options: { note?: string; approval?: Approval; authorize?: (app: string, team: string, current: string | undefined) => void } = {}): Promise<{ app: AppRecord; created: boolean; changed: boolean; unpinned?: Unpinned[]; changes?: string[] }> {
    const { note, approval, authorize } = options;
    // What the store will give back, so that comparing it with the stored spec finds only real changes.
    const parsed = canonicalSpec(typeof input === 'string' ? parseAppSpecText(input) : parseAppSpec(input));
    if (parsed.team !== undefined && !this.state.teams.has(parsed.team)) throw new SpecError([{ path: 'team', message: `no team named "${parsed.team}" (an admin makes it: gantry team create ${parsed.team})` }]);
    const cached = this.state.apps.get(parsed.app);
    authorize?.(parsed.app, teamOfSpec(parsed), cached && teamOfSpec(cached.spec));
    const refused = privilegedHostPorts(parsed).filter(({ port }) => !this.allowedPrivilegedPorts.has(port));
    if (refused.length > 0) {
      throw new SpecError(refused.map(({ path, port }) => ({ path, message: `host port ${port} is privileged (below 1024): a Gantry admin must allow it (gantry server --allow-host-port ${port})` })));
    }
    const withSecrets = this.pinSecrets(parsed);
    // Tags become the digests they name now: the release runs the same bits everywhere, and a
    // tag that moves makes a new release only when the spec is applied again.
    const { spec, unpinned } = this.pinner ? await this.pinner.pin(withSecrets) : { spec: withSecrets, unpinned: [] };
    const pinnedOutcome = unpinned.length > 0 ? { unpinned } : {};
    await this.approvals?.holdIfRequired(spec, user, note, approval);
    // Each attempt builds the new record and its release from what is stored at that moment.
    let outcome: { previous?: AppRecord; release?: ReleaseRecord } = {};
    const written = await this.admit(teamOf({ spec }), (gate) => casUpdate(this.store, STORE.apps.key(spec.app), STORE.apps, (previous) => {
      outcome = { previous };
      authorize?.(spec.app, teamOfSpec(spec), previous && teamOfSpec(previous.spec));
      checkApprovalBase(previous, approval);
      if (previous && sameSpec(previous.spec, spec)) return UNCHANGED;
      const now = Date.now();
      const record: AppRecord = {
        name: spec.app,
        env: spec.env,
        spec,
        release: releaseFor(previous, spec),
        stopped: previous?.stopped ?? false,
        createdAt: previous?.createdAt ?? now,
        updatedAt: now,
        updatedBy: user,
      };
      if (record.release !== previous?.release) outcome.release = { app: spec.app, release: record.release, spec, createdAt: now, createdBy: user, note, changes: diff(previous?.spec ?? {}, spec), ...(approval ? { approvedBy: approval.by } : {}) };
      return gate.checked(previous, record);
    }, gate.guard({ also: (record, previous) => releaseWrites(record!, outcome.release, previous?.release), what: `app ${spec.app}` })));
    const { previous } = outcome;
    const record = written.value!;
    if (written.revision === undefined) return { app: record, created: false, changed: false, ...pinnedOutcome };
    await this.state.waitFor(written.revision);
    this.events.note({
      level: 'info',
      type: previous ? 'app.updated' : 'app.created',
      app: spec.app,
      message: `${previous ? 'updated' : 'created'} by ${user}, release ${record.release}${note ? ` (${note})` : ''}`,
      data: { release: record.release },
    });
    for (const { path, image, reason } of unpinned) {
      this.events.note({ level: 'warning', type: 'app.image_unpinned', app: spec.app, message: `${path}: ${image} is not pinned to a digest in release ${record.release} (${reason}); each node runs what the tag names when it pulls` });
    }
    const changes = outcome.release?.changes.map((c) => c.path);
    return { app: record, created: !previous, changed: true, ...pinnedOutcome, ...(changes ? { changes } : {}) };
  }

  async scale(app: string, entry: string, replicas: number, user: string): Promise<AppRecord> {
    return this.update(app, user, (record) => {
      const spec = Object.hasOwn(record.spec.entrypoints, entry) ? record.spec.entrypoints[entry] : undefined;
      if (!spec) throw new NotFoundError(`app ${app} has no entrypoint "${entry}" (it has: ${Object.keys(record.spec.entrypoints).join(', ')})`);
      const from = spec.replicas;
      spec.replicas = replicas;
      return `scaled ${entry} from ${from} to ${replicas} by ${user}`;
    }, 'app.scaled');
  }

  async setStopped(app: string, stopped: boolean, user: string): Promise<AppRecord> {
    return this.update(app, user, (record) => {
      record.stopped = stopped;
      return `${stopped ? 'stopped' : 'started'} by ${user}`;
    }, stopped ? 'app.stopped' : 'app.started');
  }

  async remove(app: string, user: string): Promise<void> {
    const result = await this.store.txn({
      compare: [{ key: STORE.apps.key(app), target: 'version', op: '>', value: 0 }],
      success: [{ type: 'delete', key: STORE.apps.key(app) }, { type: 'deletePrefix', prefix: STORE.releases.key(app) }, { type: 'delete', key: STORE.rollouts.key(app) }, { type: 'delete', key: STORE.approvals.key(app) }],
    });
    if (!result.succeeded) throw new NotFoundError(`no app named "${app}"`);
    await this.state.waitFor(result.revision);
    this.events.note({ level: 'info', type: 'app.removed', app, message: `removed by ${user}` });
  }

  get(app: string): AppRecord {
    const record = this.state.apps.get(app);
    if (!record) throw new NotFoundError(`no app named "${app}"`);
    return record;
  }

  private admit<T>(team: string, write: (gate: QuotaGate) => Promise<T>): Promise<T> {
    return this.quotas ? this.quotas.admit(team, write) : write(OPEN_GATE);
  }

  private async update(app: string, user: string, change: (record: AppRecord) => string, eventType: string): Promise<AppRecord> {
    let message = '';
    const known = this.state.apps.get(app);
    const written = await this.admit(known ? teamOf(known) : 'default', (gate) => casUpdate(this.store, STORE.apps.key(app), STORE.apps, (current) => {
      if (!current) throw new NotFoundError(`no app named "${app}"`);
      const record = structuredClone(current);
      message = change(record);
      return gate.checked(current, { ...record, updatedAt: Date.now(), updatedBy: user });
    }, gate.guard({ what: `app ${app}` })));
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: eventType, app, message });
    return written.value!;
  }
}

/** What a server without quotas (a test's AppService) writes through: every record passes. */
const OPEN_GATE: QuotaGate = { checked: (_previous, next) => next, guard: (options) => options };

/** A new release's record, and the rollout from the one before (moving between releases is a rollout, driven by the replica controller). */
function releaseWrites(record: AppRecord, release: ReleaseRecord | undefined, previousRelease: number | undefined): TxnOp[] {
  if (!release) return [];
  const ops: TxnOp[] = [{ type: 'put', key: STORE.releases.key(release.app, release.release), value: STORE.releases.encode(release) }];
  if (previousRelease !== undefined) ops.push({ type: 'put', key: STORE.rollouts.key(record.name), value: STORE.rollouts.encode(newRollout(record, previousRelease)) });
  return ops;
}

function newRollout(record: AppRecord, from: number): RolloutRecord {
  const now = Date.now();
  return {
    app: record.name,
    from,
    to: record.release,
    phase: 'progressing',
    by: record.updatedBy,
    startedAt: now,
    updatedAt: now,
    lastProgressAt: now,
    progressMark: '',
    entries: {},
    steps: [{ time: now, message: `release ${from} → ${record.release} by ${record.updatedBy}` }],
  };
}


/** A new release when anything but replica counts changed; scaling alone is not a release. */
function releaseFor(previous: AppRecord | undefined, spec: AppSpec): number {
  if (!previous) return 1;
  return sameSpec(previous.spec, spec, { ignoreReplicas: true }) ? previous.release : previous.release + 1;
}
