// Who may do what: one table from every route to the action it performs and the resource it
// acts on, and one function that decides whether a caller may perform an action. The access
// check (access.ts) asks it on the route the router matched; `GET /v1/auth/can-i` (and
// `gantry auth can-i`) asks the same function, so what the CLI answers is what the server does.
// A route missing from the table is for admins only; a test holds every route to the table.
import type { Caller } from './auth.js';
import type { TeamRole } from '../model/types.js';

/** Who asks: a token's role and name, the user it speaks for, and what a scoped or robot token narrows it to. */
export type Who = Pick<Caller, 'role' | 'name' | 'user' | 'scope' | 'robot'>;

/** Resource kinds, as `gantry auth can-i <verb> <kind>/<name>` names them. */
export const KINDS = ['app', 'instance', 'log', 'event', 'release', 'node', 'pool', 'token', 'user', 'team', 'registry', 'build', 'discovery', 'cluster', 'audit', 'quota', 'secret', 'config'] as const;
export type Kind = (typeof KINDS)[number];
export const VERBS = ['read', 'write', 'delete'] as const;
export type Verb = (typeof VERBS)[number];

/** What a route does: to which kind of resource, and which route parameter names it (if any). */
export type Rule =
  | { action: 'public' }
  /** The node agent's connection (agent and join tokens; admins too). */
  | { action: 'agent' }
  /**
   * A person's own session (who am I, sign out), or an action whose route decides who may (its
   * resource may not exist yet): any person passes here; a scoped token only when its scope
   * holds `as` (what the action amounts to).
   */
  | { action: 'self'; as?: { kind: Kind; verb: Verb } }
  /** A list every person may ask for: the answer holds the items mayList() lets the caller see. */
  | { action: 'list'; kind: Kind }
  /**
   * `param`: the route parameter naming the resource. `inBody`: the request body names it (an
   * applied spec names its app and team): the access check lets people through and the route
   * decides (mayApply) once it has read the body.
   */
  | { action: 'do'; kind: Kind; verb: Verb; param?: string; inBody?: true };

const read = (kind: Kind, param?: string): Rule => ({ action: 'do', kind, verb: 'read', ...(param ? { param } : {}) });
const write = (kind: Kind, param?: string): Rule => ({ action: 'do', kind, verb: 'write', ...(param ? { param } : {}) });
const remove = (kind: Kind, param?: string): Rule => ({ action: 'do', kind, verb: 'delete', ...(param ? { param } : {}) });

/** Every route ("METHOD url" as the router holds it; HEAD follows GET). */
export const POLICY: Readonly<Record<string, Rule>> = {
  'GET /healthz': { action: 'public' },
  'GET /openapi.json': { action: 'public' },
  'POST /v1/login': { action: 'public' },
  // The web console's files (api/console.ts): no data, only GETs of paths that are not the API's.
  'GET /*': { action: 'public' },
  'GET /v1/agent/connect': { action: 'agent' },
  'POST /v1/logout': { action: 'self' },
  'GET /v1/whoami': { action: 'self' },
  'GET /v1/auth/can-i': { action: 'self' },

  'GET /v1/apps': { action: 'list', kind: 'app' },
  'POST /v1/apps': { action: 'do', kind: 'app', verb: 'write', inBody: true },
  'GET /v1/apps/:app': read('app', 'app'),
  'DELETE /v1/apps/:app': remove('app', 'app'),
  'POST /v1/apps/:app/start': write('app', 'app'),
  'POST /v1/apps/:app/stop': write('app', 'app'),
  'POST /v1/apps/:app/entries/:entry/scale': write('app', 'app'),
  'POST /v1/apps/:app/prepull': write('app', 'app'),
  'POST /v1/apps/:app/rollback': write('app', 'app'),
  'GET /v1/apps/:app/rollout': read('app', 'app'),
  'POST /v1/apps/:app/rollout/pause': write('app', 'app'),
  'POST /v1/apps/:app/rollout/resume': write('app', 'app'),
  'POST /v1/apps/:app/rollout/promote': write('app', 'app'),
  'POST /v1/apps/:app/rollout/abort': write('app', 'app'),
  'GET /v1/apps/:app/releases': read('release', 'app'),
  'GET /v1/apps/:app/releases/:release': read('release', 'app'),
  'GET /v1/apps/:app/diff': read('release', 'app'),
  'GET /v1/capacity': read('cluster'),

  'GET /v1/instances': { action: 'list', kind: 'instance' },
  'POST /v1/instances/:id/restart': write('instance', 'id'),
  'POST /v1/instances/:id/stop': write('instance', 'id'),
  'POST /v1/instances/:id/start': write('instance', 'id'),
  'POST /v1/instances/:id/rebuild': write('instance', 'id'),
  'GET /v1/instances/:id/logs': read('log', 'id'),
  // A terminal in an instance (a WebSocket): those who may change it (its team's owners and developers, admins); not viewers, not operators.
  'GET /v1/instances/:id/exec': write('instance', 'id'),
  // An app's logs: `log` named by the app (teams.ts tells an app from an instance id).
  'GET /v1/apps/:app/logs': read('log', 'app'),
  // What instances use: lists, holding only the instances the caller may see.
  'GET /v1/usage': { action: 'list', kind: 'instance' },
  'GET /v1/metrics/instances': { action: 'list', kind: 'instance' },

  // Alerts: lists holding what the caller may see (a member: their teams' apps'); a silence
  // names its app in the body, so the route decides (write on the app; none: write on nodes).
  'GET /v1/alerts': { action: 'list', kind: 'event' },
  'GET /v1/alert-silences': { action: 'list', kind: 'event' },
  'POST /v1/alert-silences': { action: 'self', as: { kind: 'app', verb: 'write' } },
  'DELETE /v1/alert-silences/:id': { action: 'self', as: { kind: 'app', verb: 'write' } },

  'GET /v1/events': { action: 'list', kind: 'event' },
  // What each key shows is read per key: an app's spec as the app, the rest as its events.
  'GET /v1/watch': { action: 'list', kind: 'event' },
  'GET /v1/server/reconcile': read('cluster'),
  // The server's own metrics: operators and admins (a token scoped cluster:read); never public.
  'GET /metrics': read('cluster'),

  'GET /v1/nodes': read('node'),
  'POST /v1/nodes/:name/cordon': write('node', 'name'),
  'POST /v1/nodes/:name/uncordon': write('node', 'name'),
  'POST /v1/nodes/:name/drain': write('node', 'name'),
  'PUT /v1/nodes/:name/dedication': write('node', 'name'),
  'GET /v1/nodes/:name/unassigned': read('node', 'name'),
  'POST /v1/nodes/:name/forget': write('node', 'name'),
  'POST /v1/nodes/adopt': write('node'),
  'POST /v1/nodes/:name/inspect': write('node', 'name'),
  'GET /v1/nodes/:name/inspection': read('node', 'name'),
  'GET /v1/pools': { action: 'list', kind: 'pool' },
  'PUT /v1/pools/:name': write('pool', 'name'),

  'GET /v1/registry': { action: 'list', kind: 'discovery' },
  'POST /v1/registry': write('discovery'),
  'DELETE /v1/registry/leases/:lease': write('discovery'),
  'POST /v1/registry/leases/:lease/keepalive': write('discovery'),
  'GET /v1/discovery/prometheus': { action: 'list', kind: 'discovery' },

  // Personal tokens: a person's own (made from a session; the route checks). Robot tokens: a team's, made by its owners.
  'GET /v1/me/tokens': { action: 'self', as: { kind: 'token', verb: 'read' } },
  'POST /v1/me/tokens': { action: 'self' },
  'DELETE /v1/me/tokens/:name': { action: 'self' },
  'GET /v1/teams/:team/tokens': read('team', 'team'),
  'POST /v1/teams/:team/tokens': write('team', 'team'),
  'DELETE /v1/teams/:team/tokens/:name': write('team', 'team'),
  'GET /v1/tokens': read('token'),
  'POST /v1/tokens': write('token'),
  'DELETE /v1/tokens/:name': remove('token', 'name'),
  'GET /v1/teams': { action: 'list', kind: 'team' },
  'POST /v1/teams': write('team'),
  'GET /v1/teams/:team': read('team', 'team'),
  'DELETE /v1/teams/:team': remove('team', 'team'),
  'PUT /v1/teams/:team/members/:user': write('team', 'team'),
  'DELETE /v1/teams/:team/members/:user': write('team', 'team'),
  'GET /v1/users': read('user'),
  'POST /v1/users': write('user'),
  'PATCH /v1/users/:name': write('user', 'name'),
  'DELETE /v1/users/:name': remove('user', 'name'),
  'GET /v1/registries': read('registry'),
  'PUT /v1/registries/:host': write('registry', 'host'),
  'DELETE /v1/registries/:host': remove('registry', 'host'),
  'GET /v1/audit': read('audit'),
  'GET /v1/builds': read('build'),
  'GET /v1/builds/:id': read('build', 'id'),
  'POST /v1/builds': write('build'),

  // Quotas: admins set them; the team's members, operators and admins read them.
  'GET /v1/quotas': read('quota'),
  'GET /v1/teams/:team/quota': read('quota', 'team'),
  'PUT /v1/teams/:team/quota': write('quota', 'team'),
  'DELETE /v1/teams/:team/quota': remove('quota', 'team'),

  // Approvals: anyone signed in lists the requests of their teams; who may approve or reject is
  // decided on the stored request (approvals.ts: owners, four eyes, admins), since a proposal
  // may create an app not in the store yet.
  'GET /v1/approvals': { action: 'self', as: { kind: 'app', verb: 'read' } },
  'POST /v1/approvals/:app/approve': { action: 'self', as: { kind: 'app', verb: 'write' } },
  'POST /v1/approvals/:app/reject': { action: 'self', as: { kind: 'app', verb: 'write' } },
  'PUT /v1/teams/:team/require-approval': write('team', 'team'),

  // Invitations: who may invite whom depends on the body (admins: anyone; team owners: members
  // of their own team), decided by invitations.ts; accepting one is how an invited person gets
  // a token, so it is public (and counted like sign-ins).
  'POST /v1/invitations': { action: 'self', as: { kind: 'user', verb: 'write' } },
  'GET /v1/invitations': { action: 'self', as: { kind: 'user', verb: 'read' } },
  'DELETE /v1/invitations/:id': { action: 'self', as: { kind: 'user', verb: 'delete' } },
  'POST /v1/invitations/accept': { action: 'public' },

  // Team secrets: the team's members list names and versions (reading the team), owners read
  // values, owners and developers set and remove them; rotating the key is for admins.
  'GET /v1/teams/:team/secrets': read('team', 'team'),
  'GET /v1/teams/:team/secrets/:name': read('secret', 'team'),
  'PUT /v1/teams/:team/secrets/:name': write('secret', 'team'),
  'DELETE /v1/teams/:team/secrets/:name': remove('secret', 'team'),
  'POST /v1/secrets/rotate-key': write('cluster'),

  // Team configs: the team's members read them and their history, owners and developers set
  // and roll them back, owners remove them (as for the team's apps).
  'GET /v1/teams/:team/configs': read('config', 'team'),
  'GET /v1/teams/:team/configs/:name': read('config', 'team'),
  'GET /v1/teams/:team/configs/:name/history': read('config', 'team'),
  'GET /v1/teams/:team/configs/:name/diff': read('config', 'team'),
  'PUT /v1/teams/:team/configs/:name': write('config', 'team'),
  'POST /v1/teams/:team/configs/:name/rollback': write('config', 'team'),
  'DELETE /v1/teams/:team/configs/:name': remove('config', 'team'),
};

/** What a route not in the table gets: admins only. */
const UNLISTED: Rule = { action: 'do', kind: 'cluster', verb: 'write' };

export function ruleFor(method: string, url: string): Rule {
  return POLICY[`${method === 'HEAD' ? 'GET' : method} ${url}`] ?? UNLISTED;
}

/**
 * Operators run the fleet: nodes and pools in full; what runs where, its events and logs, to
 * read; never an app's spec (its env holds secrets), tokens, users or registry credentials.
 */
const OPERATOR: ReadonlySet<string> = new Set(['node.read', 'node.write', 'node.delete', 'pool.read', 'pool.write', 'instance.read', 'log.read', 'event.read', 'cluster.read', 'discovery.read', 'build.read', 'quota.read']);

export interface Decision {
  allowed: boolean;
  /** Why not, in words a refused caller can act on. */
  why?: string;
}

/** What decide() needs to know of teams: which team a named resource belongs to, and a user's role in a team. */
export interface TeamScope {
  teamOf(kind: Kind, resource: string): string | undefined;
  roleIn(team: string, user: string): TeamRole | undefined;
  /** The teams the user is in, with their role in each. */
  teamsOf(user: string): Array<[team: string, role: TeamRole]>;
}

/**
 * Resources that belong to a team: an app (its spec's `team`), its releases, instances, logs,
 * events and discovery entries (named by their app), a pool the team owns, its quota,
 * secrets and configs, and the team itself.
 */
const TEAM_SCOPED: ReadonlySet<Kind> = new Set(['app', 'release', 'instance', 'log', 'event', 'discovery', 'pool', 'team', 'quota', 'secret', 'config']);
/**
 * Of those, what a team's members only read: pools are the operators' to change, the registry is
 * written by agents, quotas are set by admins (owners would raise their own).
 */
const TEAM_READS_ONLY: ReadonlySet<Kind> = new Set(['event', 'discovery', 'pool', 'quota']);

/** What each team role may do to the team's resources (a team itself: members read it, owners manage its members). */
const TEAM_ROLE: Record<TeamRole, ReadonlySet<Verb>> = {
  owner: new Set(['read', 'write', 'delete']),
  developer: new Set(['read', 'write']),
  viewer: new Set(['read']),
};

/**
 * What each role may do to the team itself: every member reads it, only owners change its
 * members, and nobody but an admin deletes it (that would take its apps' owner away).
 */
const TEAM_ITSELF: Record<TeamRole, ReadonlySet<Verb>> = {
  owner: new Set(['read', 'write']),
  developer: new Set(['read']),
  viewer: new Set(['read']),
};

const READ_ONLY: ReadonlySet<Verb> = new Set(['read']);

/** What each team role may do to the team's secrets: owners read values; developers only set and remove them. */
const TEAM_SECRETS: Record<TeamRole, ReadonlySet<Verb>> = {
  owner: new Set(['read', 'write', 'delete']),
  developer: new Set(['write', 'delete']),
  viewer: new Set(),
};

/** The verbs a team role allows on a kind of the team's resources. */
function verbsOf(kind: Kind, role: TeamRole): ReadonlySet<Verb> {
  if (kind === 'team') return TEAM_ITSELF[role];
  if (kind === 'secret') return TEAM_SECRETS[role];
  return TEAM_READS_ONLY.has(kind) ? READ_ONLY : TEAM_ROLE[role];
}

const NO_TEAMS: TeamScope = { teamOf: () => undefined, roleIn: () => undefined, teamsOf: () => [] };

/** Whether `caller` may do what `rule` says (to `resource`, when the route names one). */
export function decide(caller: Who, rule: Rule, resource?: string, teams: TeamScope = NO_TEAMS): Decision {
  if (rule.action === 'public') return { allowed: true };
  if (rule.action === 'agent') return caller.role === 'agent' || caller.role === 'join' || caller.role === 'admin' ? { allowed: true } : { allowed: false, why: 'only node agents connect here' };
  const nodeToken = caller.role === 'agent' || caller.role === 'join' ? `a${caller.role === 'agent' ? 'n' : ''} ${caller.role} token` : undefined;
  if (rule.action === 'self' && rule.as && caller.scope && !scopeAllows(caller.scope, rule.as.kind, rule.as.verb)) return { allowed: false, why: `${caller.name}'s token may not ${rule.as.verb} ${rule.as.kind}s: its scope is ${caller.scope.join(', ')}` };
  if (rule.action === 'self') return nodeToken ? { allowed: false, why: `${nodeToken} speaks for a node, not a person` } : { allowed: true };
  if (caller.scope && rule.action === 'list' && !scopeAllows(caller.scope, rule.kind, 'read')) return { allowed: false, why: `${caller.name}'s token may not read ${rule.kind}s: its scope is ${caller.scope.join(', ')}` };
  if (rule.action === 'list') return nodeToken ? { allowed: false, why: `${nodeToken} speaks for a node, not a person` } : { allowed: true };
  if (caller.scope && !scopeAllows(caller.scope, rule.kind, rule.verb)) return { allowed: false, why: `${caller.name}'s token may not ${rule.verb} ${rule.kind}${resource ? ` ${resource}` : 's'}: its scope is ${caller.scope.join(', ')}` };
  if (caller.role === 'admin') return { allowed: true };
  const action = `${rule.kind}.${rule.verb}`;
  if (caller.role === 'operator' && OPERATOR.has(action)) return { allowed: true };
  const team = resource !== undefined && (caller.user !== undefined || caller.robot) && TEAM_SCOPED.has(rule.kind) ? teams.teamOf(rule.kind, resource) : undefined;
  const role = team !== undefined ? roleIn(caller, team, teams) : undefined;
  const roleVerbs = role === undefined ? undefined : verbsOf(rule.kind, role);
  if (roleVerbs?.has(rule.verb)) return { allowed: true };
  const what = `${rule.verb} ${rule.kind}${resource ? ` ${resource}` : 's'}`;
  const who = nodeToken ?? `${caller.name} (${caller.role})`;
  const hint = role
    ? `: a ${role} of team ${team} may ${[...roleVerbs!].join(' and ') || 'not touch'}${rule.kind === 'team' ? ' it' : rule.kind === 'quota' ? ' its quota; admins set quotas' : rule.kind === 'secret' ? ' its secrets' : rule.kind === 'config' ? ' its configs' : TEAM_READS_ONLY.has(rule.kind) ? ` its ${rule.kind}s` : ' its apps'}`
    : rule.kind === 'quota' && rule.verb !== 'read'
      ? ': quotas are set by admins'
      : caller.role === 'member'
        ? resource !== undefined && TEAM_SCOPED.has(rule.kind)
          ? team === undefined ? `: it belongs to no team of yours` : `: it belongs to team ${team}, which you are not in`
          : ': members act on their teams\' apps by name; lists and everything else are for admins (and operators)'
        : caller.role === 'operator'
          ? ': operators run nodes and pools, and read what runs; app specs, tokens, users and credentials are for admins'
          : '';
  return { allowed: false, why: `${who} may not ${what}${hint}` };
}

/**
 * Of a list of `kind`, which items the caller sees: every one for admins (and for operators,
 * of apps: the list holds summaries, never specs), else the ones they may read by name (a
 * member: their teams' apps and what belongs to them). An item named by no resource (an event
 * about a node, say) is seen by those who may read the whole kind.
 */
export function mayList(caller: Who, kind: Kind, teams: TeamScope): (resource: string | undefined) => boolean {
  if (caller.role === 'operator' && kind === 'app') return () => true;
  return mayRead(caller, kind, teams);
}

/** Whether the caller may read each resource of `kind` (by name; undefined: the kind as a whole). */
export function mayRead(caller: Who, kind: Kind, teams: TeamScope): (resource: string | undefined) => boolean {
  const rule: Rule = { action: 'do', kind, verb: 'read' };
  if (decide(caller, rule, undefined, teams).allowed) return () => true;
  return (resource) => resource !== undefined && decide(caller, rule, resource, teams).allowed;
}

/**
 * Before the body of an `inBody` route is read: whether the caller may do its verb in some team
 * at all (admins: always). Who may not anywhere is refused here, whatever the body says.
 */
export function decideBeforeBody(caller: Who, rule: Extract<Rule, { action: 'do' }>, teams: TeamScope): Decision {
  const whole = decide(caller, rule, undefined, teams);
  if (whole.allowed || (caller.user === undefined && !caller.robot)) return whole;
  if (caller.scope && !scopeAllows(caller.scope, rule.kind, rule.verb)) return whole;
  const held = caller.robot ? [[caller.robot.team, caller.robot.role] as [string, TeamRole]] : teams.teamsOf(caller.user!);
  if (held.some(([, role]) => TEAM_ROLE[role].has(rule.verb))) return { allowed: true };
  const roles = held.map(([team, role]) => `${role} of team ${team}`);
  return { allowed: false, why: `${caller.name} (${caller.role}) may not ${rule.verb} ${rule.kind}s: only developers and owners of a team ${rule.verb} its ${rule.kind}s (${caller.user ?? caller.name} is ${roles.length > 0 ? roles.slice(0, 5).join(', ') : 'in no team'})` };
}

/**
 * Whether the caller may apply a spec of app `app` for team `team`, the app being `current`'s
 * today (undefined: a new app): write on both, so a member can neither take another team's app
 * nor give theirs to a team they cannot write to.
 */
export function mayApply(caller: Who, app: string, team: string, current: string | undefined, teams: TeamScope): Decision {
  const rule: Rule = { action: 'do', kind: 'app', verb: 'write' };
  const asTeam = (owner: string): TeamScope => ({ ...teams, teamOf: () => owner });
  if (current !== undefined) {
    const now = decide(caller, rule, app, asTeam(current));
    if (!now.allowed) return now;
  }
  if (current === team) return { allowed: true };
  const next = decide(caller, rule, app, asTeam(team));
  return next.allowed || current === undefined ? next : { allowed: false, why: `${next.why} (moving app ${app} from team ${current} to team ${team} needs write in both)` };
}

/** The verbs people say, as the table's: `gantry auth can-i apply app/shop` asks for write. */
const VERB_WORDS: Record<string, Verb> = {
  read: 'read', get: 'read', list: 'read', view: 'read', logs: 'read', watch: 'read',
  write: 'write', apply: 'write', create: 'write', update: 'write', scale: 'write', start: 'write', stop: 'write', rollback: 'write', restart: 'write', rebuild: 'write', promote: 'write', cordon: 'write', drain: 'write', set: 'write',
  delete: 'delete', rm: 'delete', remove: 'delete',
};

/**
 * "apply" and "app/shop" (or "apps") as a rule and a resource, or why not: what `can-i` asks
 * `decide` about.
 */
export function ruleOfWords(verbWord: string, resourceWord: string): { rule: Rule; resource?: string } | { problem: string } {
  const verb = Object.hasOwn(VERB_WORDS, verbWord) ? VERB_WORDS[verbWord] : undefined;
  if (!verb) return { problem: `verb "${verbWord}": one of ${Object.keys(VERB_WORDS).join(', ')}` };
  const [kindWord = '', name] = resourceWord.split('/', 2);
  const singular = kindWord.endsWith('ies') ? `${kindWord.slice(0, -3)}y` : kindWord.endsWith('s') ? kindWord.slice(0, -1) : kindWord;
  const kind = (KINDS as readonly string[]).includes(singular) ? (singular as Kind) : undefined;
  if (!kind) return { problem: `resource "${resourceWord}": <kind>[/<name>], kind one of ${KINDS.join(', ')}` };
  return { rule: { action: 'do', kind, verb }, ...(name ? { resource: name } : {}) };
}

/** A caller's role in `team`: a robot token's is fixed to its own team; a person's is their membership. */
function roleIn(caller: Who, team: string, teams: TeamScope): TeamRole | undefined {
  if (caller.robot) return caller.robot.team === team ? caller.robot.role : undefined;
  return caller.user === undefined ? undefined : teams.roleIn(team, caller.user);
}

/**
 * What a token's scope names: `<kind>:<verb>` items, `*` for any kind or verb ("*:read" reads
 * everything its holder may read). A scope narrows what the holder may do, never widens it.
 */
export const SCOPE_ITEM = new RegExp(`^(\\*|${KINDS.join('|')}):(\\*|${VERBS.join('|')})$`);

/** The words `--scope` takes for whole sets: read, write (and read), all. */
export const SCOPE_WORDS: Readonly<Record<string, readonly string[]>> = { read: ['*:read'], write: ['*:read', '*:write'], all: ['*:*'] };

export function scopeAllows(scope: readonly string[], kind: Kind, verb: Verb): boolean {
  return scope.some((item) => {
    const [k, v] = item.split(':');
    return (k === '*' || k === kind) && (v === '*' || v === verb);
  });
}
