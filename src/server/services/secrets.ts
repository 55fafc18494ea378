// Team secrets: values sealed with the secret key before they reach the store, referenced from
// specs (`{ secret: team/name }`), opened for three uses only: a team owner's (or admin's) read,
// which the route records in the audit log; the nodes whose instances use them (sent with their
// assignments); and rotate-key, which seals them again with the current key. Names, versions and
// who changed them are for every member of the team; the value never appears in an answer to
// anyone else, an event, a log line, a release or a diff.
import type { Store } from '../../store/store.js';
import type { AppRecord, SecretRecord } from '../../model/types.js';
import type { SecretValueMap } from '../../model/agent-protocol.js';
import type { SecretInfo } from '../../model/api.js';
import { SpecError, formatPath, teamOfSpec, type AppSpec, type SpecProblem } from '../../model/spec.js';
import { secretPlaces, secretRefOf } from '../../model/spec-secrets.js';
import type { ClusterState } from '../state.js';
import type { SecretBox } from '../secret-box.js';
import type { EventLog } from './events.js';
import { STORE } from '../keys.js';
import { casUpdate } from '../cas.js';
import { resealAll } from '../reseal.js';
import { rollApps, type RollOutcome } from './rolls.js';
import { ConflictError, NotFoundError } from '../errors.js';

/** Most secrets one team keeps: every apply and every node's assignments look through them. */
export const MAX_SECRETS_PER_TEAM = 500;
/** Longest value, in bytes of UTF-8: a certificate chain or a small key file fits. */
export const MAX_SECRET_BYTES = 64 * 1024;

export interface SetOutcome extends Partial<RollOutcome> {
  /** With roll: `rolled`, the apps given a new release (and so a rollout) for the new value; `waiting`, those whose new release waits for an approval; `failed`, those that could not be. */
  secret: SecretInfo;
}

/** Applies a spec as a user would (AppService.apply), with a note saying why. */
export type ApplySpec = (spec: AppSpec, user: string, note: string) => Promise<{ app: AppRecord; changed: boolean }>;

/** The team an app belongs to; apps that name none belong to team "default". */
export function appTeam(spec: { team?: string }): string {
  return teamOfSpec(spec);
}

export class SecretService {
  /** Secrets found not to open (another key), said once each as an event. */
  private readonly unopened = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly box: SecretBox,
    private readonly events: EventLog,
    private readonly applySpec: ApplySpec,
  ) {}

  list(team: string): SecretInfo[] {
    this.requireTeam(team);
    return [...this.state.secrets.values()].filter((s) => s.team === team).sort((a, b) => a.name.localeCompare(b.name)).map((s) => this.info(s));
  }

  get(team: string, name: string): SecretInfo {
    return this.info(this.record(team, name));
  }

  /** The value, for a team owner or an admin (the route records the read in the audit log). */
  reveal(team: string, name: string): { secret: SecretInfo; value: string } {
    const record = this.record(team, name);
    return { secret: this.info(record), value: this.box.open(record.value, STORE.secrets.key(team, name)) };
  }

  /** Stores a new value (a new version); with `roll`, every app using it gets a release that restarts its instances with it. */
  async set(team: string, name: string, value: string, by: string, roll: boolean): Promise<SetOutcome> {
    this.requireTeam(team);
    const key = STORE.secrets.key(team, name);
    const count = [...this.state.secrets.values()].filter((s) => s.team === team).length;
    const written = await casUpdate(this.store, key, STORE.secrets, (current) => {
      if (!current && count >= MAX_SECRETS_PER_TEAM) throw new ConflictError(`team ${team} has ${MAX_SECRETS_PER_TEAM} secrets already: remove some first`);
      const now = Date.now();
      return {
        team,
        name,
        value: this.box.seal(value, key),
        version: (current?.version ?? 0) + 1,
        createdAt: current?.createdAt ?? now,
        createdBy: current?.createdBy ?? by,
        updatedAt: now,
        updatedBy: by,
      };
    }, { what: `secret ${team}/${name}` });
    await this.state.waitFor(written.revision!);
    const record = written.value!;
    const ref = secretRefOf(team, name);
    this.unopened.delete(ref);
    const usedBy = this.usedBy(ref);
    this.events.note({ level: 'info', type: 'secret.set', message: `secret ${ref} set to version ${record.version} by ${by}${usedBy.length > 0 ? ` (used by ${usedBy.join(', ')}${roll ? ': rolling them' : ': running instances keep the value they started with until rolled'})` : ''}` });
    if (!roll) return { secret: this.info(record) };
    return { secret: this.info(record), ...(await this.roll(ref, record.version, by)) };
  }

  async remove(team: string, name: string, by: string): Promise<void> {
    const ref = secretRefOf(team, name);
    const usedBy = this.usedBy(ref);
    if (usedBy.length > 0) throw new ConflictError(`secret ${ref} is used by ${usedBy.join(', ')}: take it out of their specs first`);
    const written = await casUpdate(this.store, STORE.secrets.key(team, name), STORE.secrets, (current) => {
      if (!current) throw new NotFoundError(`team ${team} has no secret named "${name}"`);
      return null;
    }, { what: `secret ${ref}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'secret.removed', message: `secret ${ref} removed by ${by}` });
  }

  /** The apps whose current spec uses `ref`. */
  usedBy(ref: string): string[] {
    return [...this.state.apps.values()].filter((app) => secretPlaces(app.spec).some((p) => p.use.secret === ref)).map((app) => app.name).sort();
  }

  /**
   * The spec an apply stores: every secret it uses must exist and belong to the app's team;
   * each use without a version gets the secret's current one. Throws SpecError naming each bad
   * field (nothing is stored).
   */
  pin(spec: AppSpec): AppSpec {
    const places = secretPlaces(spec);
    if (places.length === 0) return spec;
    const pinned = structuredClone(spec);
    const team = appTeam(spec);
    const problems: SpecProblem[] = [];
    for (const { path, use } of secretPlaces(pinned)) {
      const where = formatPath(path);
      const owner = use.secret.slice(0, use.secret.indexOf('/'));
      const record = this.state.secrets.get(use.secret);
      if (owner !== team) problems.push({ path: where, message: `secret ${use.secret} belongs to team ${owner}, not to this app's team ${team}: an app uses only its own team's secrets` });
      else if (!record) problems.push({ path: where, message: `team ${team} has no secret named "${use.secret.slice(owner.length + 1)}" (gantry secret set ${use.secret})` });
      else if (use.version !== undefined && use.version > record.version) problems.push({ path: where, message: `secret ${use.secret} has no version ${use.version} (it is at version ${record.version})` });
      else use.version ??= record.version;
    }
    if (problems.length > 0) throw new SpecError(problems);
    return pinned;
  }

  /**
   * The opened values of `refs`, for a node whose instances use them. One that does not open
   * (sealed with a key this server lacks) is left out, said once as an event; the instance's
   * start then fails, saying the value did not come.
   */
  valuesFor(refs: Iterable<string>): SecretValueMap {
    const out: SecretValueMap = {};
    for (const ref of refs) {
      const record = this.state.secrets.get(ref);
      if (!record || Object.hasOwn(out, ref)) continue;
      try {
        out[ref] = { version: record.version, value: this.box.open(record.value, STORE.secrets.key(record.team, record.name)) };
      } catch (err) {
        if (this.unopened.has(ref)) continue;
        this.unopened.add(ref);
        this.events.note({ level: 'error', type: 'secret.unusable', message: `secret ${ref} cannot be opened: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
    return out;
  }

  /** Seals again with the current key every secret sealed with a previous one (key rotation); how many. */
  reseal(): Promise<number> {
    const stale = [...this.state.secrets.values()].filter((s) => !this.box.isCurrent(s.value)).map((s) => STORE.secrets.key(s.team, s.name));
    return resealAll(this.store, this.box, stale, STORE.secrets, { get: (s) => s.value, set: (s, value) => ({ ...s, value }) });
  }

  /** A release for every app using `ref`, whose only change is the secret's version: a rollout as the entries' update strategies say. */
  private roll(ref: string, version: number, by: string): Promise<RollOutcome> {
    const pin = (spec: AppSpec) => {
      for (const { use } of secretPlaces(spec)) if (use.secret === ref) use.version = version;
      return true;
    };
    return rollApps(this.state, this.events, this.usedBy(ref), pin, this.applySpec, by, `secret ${ref} changed (version ${version})`);
  }

  private record(team: string, name: string): SecretRecord {
    this.requireTeam(team);
    const record = this.state.secrets.get(secretRefOf(team, name));
    if (!record) throw new NotFoundError(`team ${team} has no secret named "${name}"`);
    return record;
  }

  private requireTeam(team: string): void {
    if (!this.state.teams.has(team)) throw new NotFoundError(`no team named "${team}"`);
  }

  private info(record: SecretRecord): SecretInfo {
    const { value: _value, ...rest } = record;
    return { ...rest, usedBy: this.usedBy(secretRefOf(record.team, record.name)) };
  }
}
