// Approvals: a team may require that new releases of its apps in some envs (prod, say) wait for
// an owner's approval. Such a change is not applied: the proposed spec is kept under
// /approvals/{app} (one per app, a newer proposal replaces it), and applied through the normal
// apply path once an owner approves it, if the app is still what the proposal was made on.
// Four eyes: whoever asked may not approve, unless an admin.
import { createHash } from 'node:crypto';
import type { Store } from '../../store/store.js';
import type { AppRecord, ApprovalRequest } from '../../model/types.js';
import type { Caller } from '../auth.js';
import type { ClusterState } from '../state.js';
import type { EventLog } from './events.js';
import type { AppService } from './apps.js';
import { diff } from '../../model/diff.js';
import { canonicalSpec, sameSpec, teamOfSpec, type AppSpec } from '../../model/spec.js';
import { STORE } from '../keys.js';
import { UNCHANGED, casUpdate } from '../cas.js';
import { ConflictError, NotFoundError } from '../errors.js';

/** Most envs one team may gate: the list is read on every apply of its apps. */
export const MAX_GATED_ENVS = 32;

/** Not an error: the change was kept for approval. The HTTP layer answers 202 with the request. */
export class ApprovalPending extends Error {
  readonly statusCode = 202;
  constructor(readonly request: ApprovalRequest) {
    super(`waiting for approval by an owner of team ${request.teams.join(' and ')}: gantry approve ${request.app}`);
  }

  body(): { approval: Omit<ApprovalRequest, 'spec'>; message: string } {
    return { approval: summary(this.request), message: this.message };
  }
}

/** A caller refused by the rules of approval (owners only, four eyes). */
export class ApprovalRefused extends Error {
  readonly statusCode = 403;
}

/** What an approved proposal brings to apply: who approved, and the app it must still apply to. */
export interface Approval {
  by: string;
  base: ApprovalRequest['base'];
}

const teamOf = teamOfSpec;

/** A digest of what an app is now, to tell later whether it changed since. */
export function specDigest(spec: AppSpec | undefined): string {
  return spec === undefined ? 'none' : createHash('sha256').update(JSON.stringify(canonicalSpec(spec))).digest('hex');
}

/** Throws a 409 when the app is no longer what an approved proposal was made on (inside apply's write, so no change slips in between). */
export function checkApprovalBase(current: AppRecord | undefined, approval: Approval | undefined): void {
  if (approval && specDigest(current?.spec) !== approval.base.digest) throw staleProposal(current?.name ?? 'the app', approval.base.release, current?.release);
}

function staleProposal(app: string, base: number, now: number | undefined): ConflictError {
  const was = base === 0 ? 'before the app existed' : `on release ${base}`;
  return new ConflictError(`the proposal for ${app} was made ${was}, and the app has changed since (${now === undefined ? 'it was removed' : `release ${now}`}): apply the change again for a new request`);
}

export class ApprovalService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly apps: AppService,
  ) {}

  /**
   * Called by apply with the pinned spec: when the change makes a new release in an env its
   * team gates, stores the proposal and throws ApprovalPending; else returns. Replica counts
   * alone make no release and pass (scaling is operational, like `gantry scale`).
   */
  async holdIfRequired(spec: AppSpec, user: string, note: string | undefined, approval: Approval | undefined): Promise<void> {
    if (approval) return;
    const kv = await this.store.get(STORE.apps.key(spec.app));
    const current = kv ? STORE.apps.decode(kv.value) : undefined;
    const teams = this.gatingTeams(current, spec);
    if (teams.length === 0 || (current && sameSpec(current.spec, spec, { ignoreReplicas: true }))) return;
    const request: ApprovalRequest = {
      app: spec.app,
      env: spec.env,
      teams,
      kind: kindOf(current, note),
      spec,
      base: { release: current?.release ?? 0, digest: specDigest(current?.spec) },
      changes: diff(current?.spec ?? {}, spec),
      requestedBy: user,
      requestedAt: Date.now(),
      ...(note ? { note } : {}),
    };
    let replaced: ApprovalRequest | undefined;
    await casUpdate(this.store, STORE.approvals.key(spec.app), STORE.approvals, (pending) => {
      replaced = pending;
      return request;
    }, { what: `the approval request of ${spec.app}` });
    const instead = replaced ? `; it replaces the request of ${replaced.requestedBy} from ${new Date(replaced.requestedAt).toISOString()}` : '';
    this.events.note({
      level: 'info',
      type: 'approval.requested',
      app: spec.app,
      message: `${request.kind} of ${spec.app} (${spec.env}, on release ${request.base.release}) by ${user} waits for approval by an owner of team ${teams.join(' and ')}${instead}`,
    });
    throw new ApprovalPending(request);
  }

  /** Pending requests the caller may see (admins: all; members: their teams'), without specs. */
  async list(caller: Pick<Caller, 'role' | 'user'>, team?: string): Promise<Omit<ApprovalRequest, 'spec'>[]> {
    const { kvs } = await this.store.range(STORE.approvals.prefix);
    return kvs
      .map((kv) => STORE.approvals.decode(kv.value))
      .filter((r) => (team === undefined || r.teams.includes(team)) && (caller.role === 'admin' || r.teams.some((t) => this.roleIn(t, caller.user) !== undefined)))
      .map(summary);
  }

  async get(app: string): Promise<ApprovalRequest> {
    const kv = await this.store.get(STORE.approvals.key(app));
    if (!kv) throw new NotFoundError(`no change of app ${app} waits for approval`);
    return STORE.approvals.decode(kv.value);
  }

  /** Applies the proposal through apply (validation, pinning, rollout as for any apply), if it still applies. */
  async approve(app: string, caller: Caller): Promise<{ app: AppRecord; approval: Omit<ApprovalRequest, 'spec'> }> {
    const request = await this.get(app);
    this.mayDecide(caller, request, 'approve');
    if (request.requestedBy === caller.name && caller.role !== 'admin') throw new ApprovalRefused(`four eyes: ${caller.name} asked for this change and may not approve it too; another owner of team ${request.teams.join(' and ')} (or an admin) approves`);
    const current = this.state.apps.get(app);
    if (specDigest(current?.spec) !== request.base.digest) throw staleProposal(app, request.base.release, current?.release);
    const result = await this.apps.apply(request.spec, request.requestedBy, { note: request.note, approval: { by: caller.name, base: request.base } });
    await this.drop(request);
    this.events.note({ level: 'info', type: 'approval.approved', app, message: `${request.kind} of ${app} asked by ${request.requestedBy} approved by ${caller.name}: release ${result.app.release}` });
    return { app: result.app, approval: summary(request) };
  }

  /** Drops the request: its team's owners and admins reject it; whoever asked may withdraw it. */
  async reject(app: string, caller: Caller, reason: string | undefined): Promise<Omit<ApprovalRequest, 'spec'>> {
    const request = await this.get(app);
    if (request.requestedBy !== caller.name) this.mayDecide(caller, request, 'reject');
    await this.drop(request);
    const verb = request.requestedBy === caller.name ? 'withdrawn' : 'rejected';
    this.events.note({ level: 'info', type: `approval.${verb}`, app, message: `${request.kind} of ${app} asked by ${request.requestedBy} ${verb} by ${caller.name}${reason ? `: ${reason}` : ''}` });
    return summary(request);
  }

  /** Sets which envs of a team need approval (none: the team behaves as without the rule). */
  async setRequired(team: string, envs: string[], by: string): Promise<string[]> {
    const wanted = [...new Set(envs)].sort();
    const written = await casUpdate(this.store, STORE.teams.key(team), STORE.teams, (current) => {
      if (!current) throw new NotFoundError(`no team named "${team}"`);
      if (JSON.stringify(current.requireApproval ?? []) === JSON.stringify(wanted)) return UNCHANGED;
      const { requireApproval: _old, ...rest } = current;
      return { ...rest, ...(wanted.length > 0 ? { requireApproval: wanted } : {}), updatedAt: Date.now() };
    }, { what: `team ${team}` });
    if (written.revision !== undefined) {
      await this.state.waitFor(written.revision);
      this.events.note({ level: 'info', type: 'team.approvals', message: `team ${team}: ${wanted.length > 0 ? `new releases in ${wanted.join(', ')} need an owner's approval` : 'no env needs approval'} (by ${by})` });
    }
    return wanted;
  }

  private gatingTeams(current: AppRecord | undefined, spec: AppSpec): string[] {
    const wants: Array<[string, string]> = [[teamOf(spec), spec.env]];
    if (current) wants.unshift([teamOf(current.spec), current.env]);
    return [...new Set(wants.filter(([team, env]) => this.state.teams.get(team)?.requireApproval?.includes(env)).map(([team]) => team))];
  }

  private roleIn(team: string, user: string | undefined) {
    const record = this.state.teams.get(team);
    return user !== undefined && record && Object.hasOwn(record.members, user) ? record.members[user] : undefined;
  }

  private mayDecide(caller: Caller, request: ApprovalRequest, what: 'approve' | 'reject'): void {
    if (caller.role === 'admin') return;
    const notOwner = request.teams.find((team) => this.roleIn(team, caller.user) !== 'owner');
    if (notOwner !== undefined) throw new ApprovalRefused(`${caller.name} (${caller.role}) may not ${what} changes of ${request.app}: only an owner of team ${notOwner} (or an admin) may`);
  }

  /** Deletes the request if it is still this one (a newer proposal stays). */
  private async drop(request: ApprovalRequest): Promise<void> {
    await casUpdate(this.store, STORE.approvals.key(request.app), STORE.approvals, (pending) => (pending && pending.requestedAt === request.requestedAt && pending.requestedBy === request.requestedBy ? null : UNCHANGED), { what: `the approval request of ${request.app}` });
  }
}

/** What kind of change a proposal is: rollbacks are the applies that come with a note (releases.ts: "rollback to release n"). */
function kindOf(current: AppRecord | undefined, note: string | undefined): ApprovalRequest['kind'] {
  if (!current) return 'create';
  return note?.startsWith('rollback') ? 'rollback' : 'update';
}

function summary(request: ApprovalRequest): Omit<ApprovalRequest, 'spec'> {
  const { spec: _spec, ...rest } = request;
  return rest;
}
