// Team configs: versioned documents (a file's text, or key-values for env variables) that apps
// of the team use by reference (`files: [{ path, config: team/name }]`, `envFrom`). Each change
// is a new version, kept in a history (the newest MAX_HISTORY) that can be compared and rolled
// back to, like releases. A new version reaches the instances using it: entries that restart on
// change get a release whose only change is the config's version (a rollout, as their update
// strategy says); entries that asked for a signal or a hook get the file rewritten in place by
// their agent, which then tells the instance (the server just sends the nodes the new version).
import type { Store } from '../../store/store.js';
import type { ConfigRecord } from '../../model/types.js';
import type { ConfigValueMap } from '../../model/agent-protocol.js';
import type { ConfigInfo } from '../../model/api.js';
import { diff, type Change } from '../../model/diff.js';
import { SpecError, formatPath, type AppSpec, type SpecProblem } from '../../model/spec.js';
import { configPlaces } from '../../model/spec-configs.js';
import { secretRefOf } from '../../model/spec-secrets.js';
import type { ClusterState } from '../state.js';
import type { EventLog } from './events.js';
import { appTeam, type ApplySpec } from './secrets.js';
import { rollApps, type RollOutcome } from './rolls.js';
import { STORE } from '../keys.js';
import { casUpdate } from '../cas.js';
import { ConflictError, NotFoundError } from '../errors.js';

export const MAX_CONFIGS_PER_TEAM = 500;
/** Versions kept per config. */
export const MAX_HISTORY = 50;

export type ConfigContent = { text: string; values?: undefined } | { values: Record<string, string>; text?: undefined };

/** Which of the team's apps may use a config: one app, one env, or both (null: any; absent: as it was). */
export interface ConfigScope {
  app?: string | null;
  env?: string | null;
}


export class ConfigService {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly events: EventLog,
    private readonly applySpec: ApplySpec,
  ) {}

  list(team: string): ConfigInfo[] {
    this.requireTeam(team);
    return [...this.state.configs.values()].filter((c) => c.team === team).sort((a, b) => a.name.localeCompare(b.name)).map((c) => this.info(c));
  }

  /** The current version, or `version` from the history. */
  async get(team: string, name: string, version?: number): Promise<ConfigRecord> {
    const current = this.record(team, name);
    if (version === undefined || version === current.version) return current;
    const kv = await this.store.get(STORE.configHistory.key(team, name, version));
    if (!kv) throw new NotFoundError(`config ${team}/${name} has no version ${version} (kept: the newest ${MAX_HISTORY})`);
    return STORE.configHistory.decode(kv.value);
  }

  async history(team: string, name: string): Promise<ConfigRecord[]> {
    this.record(team, name);
    const { kvs } = await this.store.range(STORE.configHistory.key(team, name));
    return kvs.map((kv) => STORE.configHistory.decode(kv.value));
  }

  /** What changed from version `from` to `to`: key-values by key, text by line. */
  async compare(team: string, name: string, from: number, to: number): Promise<Change[]> {
    const [a, b] = await Promise.all([this.get(team, name, from), this.get(team, name, to)]);
    return diff(comparable(a), comparable(b));
  }

  /** Stores a new version; the apps using it follow (see the file's head). */
  async set(team: string, name: string, content: ConfigContent, by: string, note?: string, scope: ConfigScope = {}): Promise<{ config: ConfigInfo } & RollOutcome> {
    this.requireTeam(team);
    const ref = secretRefOf(team, name);
    const count = [...this.state.configs.values()].filter((c) => c.team === team).length;
    const existing = this.state.configs.get(ref);
    if (existing && (existing.text === undefined) !== (content.text === undefined)) {
      throw new ConflictError(`config ${ref} holds ${existing.text === undefined ? 'key-values' : 'a file'}; a new version must too (remove it to change its kind)`);
    }
    const app = scope.app === undefined ? existing?.app : (scope.app ?? undefined);
    const env = scope.env === undefined ? existing?.env : (scope.env ?? undefined);
    const excluded = this.usedBy(ref).filter((user) => !inScope({ app, env }, user, this.state.apps.get(user)?.spec.env));
    if (excluded.length > 0) throw new ConflictError(`config ${ref} is used by ${excluded.join(', ')}, which ${app ? `app ${app}` : ''}${app && env ? ' in ' : ''}${env ? `env ${env}` : ''} only would leave out: change their specs first`);
    let stored: ConfigRecord | undefined;
    const written = await casUpdate(this.store, STORE.configs.key(team, name), STORE.configs, (current) => {
      if (!current && count >= MAX_CONFIGS_PER_TEAM) throw new ConflictError(`team ${team} has ${MAX_CONFIGS_PER_TEAM} configs already: remove some first`);
      const now = Date.now();
      stored = {
        team,
        name,
        version: (current?.version ?? 0) + 1,
        ...(content.text !== undefined ? { text: content.text } : { values: content.values }),
        createdAt: current?.createdAt ?? now,
        createdBy: current?.createdBy ?? by,
        updatedAt: now,
        updatedBy: by,
        ...(note ? { note } : {}),
        ...(app ? { app } : {}),
        ...(env ? { env } : {}),
      };
      return stored;
    }, {
      also: (next) => [
        { type: 'put', key: STORE.configHistory.key(team, name, next!.version), value: STORE.configHistory.encode(next!) },
        ...(next!.version > MAX_HISTORY ? [{ type: 'delete' as const, key: STORE.configHistory.key(team, name, next!.version - MAX_HISTORY) }] : []),
      ],
      what: `config ${ref}`,
    });
    await this.state.waitFor(written.revision!);
    const record = stored!;
    this.events.note({ level: 'info', type: 'config.set', message: `config ${ref} version ${record.version} by ${by}${note ? ` (${note})` : ''}` });
    return { config: this.info(record), ...(await this.roll(ref, record.version, by)) };
  }

  async rollback(team: string, name: string, version: number, by: string): Promise<{ config: ConfigInfo } & RollOutcome> {
    const old = await this.get(team, name, version);
    if (old.version === this.record(team, name).version) throw new ConflictError(`version ${version} is the current version of config ${team}/${name}`);
    // The content goes back; who may use it stays as it is now.
    return this.set(team, name, old.text !== undefined ? { text: old.text } : { values: old.values ?? {} }, by, `rollback to version ${version}`);
  }

  async remove(team: string, name: string, by: string): Promise<void> {
    const ref = secretRefOf(team, name);
    const usedBy = this.usedBy(ref);
    if (usedBy.length > 0) throw new ConflictError(`config ${ref} is used by ${usedBy.join(', ')}: take it out of their specs first`);
    const written = await casUpdate(this.store, STORE.configs.key(team, name), STORE.configs, (current) => {
      if (!current) throw new NotFoundError(`team ${team} has no config named "${name}"`);
      return null;
    }, { also: () => [{ type: 'deletePrefix', prefix: STORE.configHistory.key(team, name) }], what: `config ${ref}` });
    await this.state.waitFor(written.revision!);
    this.events.note({ level: 'info', type: 'config.removed', message: `config ${ref} removed by ${by}` });
  }

  usedBy(ref: string): string[] {
    return [...this.state.apps.values()].filter((app) => configPlaces(app.spec).some((p) => p.use.config === ref)).map((app) => app.name).sort();
  }

  /**
   * The spec an apply stores: every config it uses must exist, belong to the app's team and be
   * of the kind its use needs (text for files, key-values for envFrom). Uses that restart on a
   * change are pinned to the current version (a new version then makes a release); uses changed
   * in place carry no version (a new one makes none). Throws SpecError naming each bad field.
   */
  pin(spec: AppSpec): AppSpec {
    if (configPlaces(spec).length === 0) return spec;
    const pinned = structuredClone(spec);
    const team = appTeam(spec);
    const problems: SpecProblem[] = [];
    for (const { path, use, restarts } of configPlaces(pinned)) {
      const where = formatPath(path);
      const owner = use.config.slice(0, use.config.indexOf('/'));
      const record = this.state.configs.get(use.config);
      const wantsText = path.includes('files');
      if (owner !== team) problems.push({ path: where, message: `config ${use.config} belongs to team ${owner}, not to this app's team ${team}` });
      else if (!record) problems.push({ path: where, message: `team ${team} has no config named "${use.config.slice(owner.length + 1)}" (gantry config set ${use.config})` });
      else if (!inScope(record, spec.app, spec.env)) problems.push({ path: where, message: `config ${use.config} is for ${[record.app && `app ${record.app}`, record.env && `env ${record.env}`].filter(Boolean).join(' in ')} only (this is app ${spec.app} in env ${spec.env})` });
      else if (wantsText !== (record.text !== undefined)) problems.push({ path: where, message: `config ${use.config} holds ${record.text !== undefined ? 'a file' : 'key-values'}; ${wantsText ? 'files need a file' : 'envFrom needs key-values'}` });
      else if (!restarts) delete use.version;
      else if (use.version !== undefined && use.version > record.version) problems.push({ path: where, message: `config ${use.config} has no version ${use.version} (it is at version ${record.version})` });
      else use.version ??= record.version;
    }
    if (problems.length > 0) throw new SpecError(problems);
    return pinned;
  }

  valuesFor(refs: Iterable<string>): ConfigValueMap {
    const out: ConfigValueMap = {};
    for (const ref of refs) {
      const record = this.state.configs.get(ref);
      if (record) out[ref] = { version: record.version, ...(record.text !== undefined ? { text: record.text } : { values: record.values ?? {} }) };
    }
    return out;
  }

  /** A release for every app with an entry that restarts on a change of `ref`, whose only change is that use's version. */
  private roll(ref: string, version: number, by: string): Promise<RollOutcome> {
    const pin = (spec: AppSpec) => {
      const restarting = configPlaces(spec).filter((p) => p.use.config === ref && p.restarts);
      for (const { use } of restarting) use.version = version;
      return restarting.length > 0;
    };
    return rollApps(this.state, this.events, this.usedBy(ref), pin, this.applySpec, by, `config ${ref} changed (version ${version})`);
  }

  private record(team: string, name: string): ConfigRecord {
    this.requireTeam(team);
    const record = this.state.configs.get(secretRefOf(team, name));
    if (!record) throw new NotFoundError(`team ${team} has no config named "${name}"`);
    return record;
  }

  private requireTeam(team: string): void {
    if (!this.state.teams.has(team)) throw new NotFoundError(`no team named "${team}"`);
  }

  private info(record: ConfigRecord): ConfigInfo {
    const { text, values: _values, ...rest } = record;
    return { ...rest, kind: text !== undefined ? 'file' : 'env', usedBy: this.usedBy(secretRefOf(record.team, record.name)) };
  }
}

/** Key-values as they are; a text as numbered lines, so a diff names the lines that changed. */
function comparable(record: ConfigRecord): Record<string, string> {
  if (record.values) return record.values;
  return Object.fromEntries((record.text ?? '').split('\n').map((line, i) => [`line ${i + 1}`, line]));
}

/** Whether app `app` in env `env` may use a config kept for `scope`. */
function inScope(scope: { app?: string; env?: string }, app: string, env: string | undefined): boolean {
  return (scope.app === undefined || scope.app === app) && (scope.env === undefined || scope.env === env);
}
