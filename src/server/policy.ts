// Who may do what: one table from every route to the action it performs and the resource it
// acts on, and one function that decides whether a caller may perform an action. The access
// check (access.ts) asks it on the route the router matched; `GET /v1/auth/can-i` (and
// `gantry auth can-i`) asks the same function, so what the CLI answers is what the server does.
// A route missing from the table is for admins only; a test holds every route to the table.
import type { Caller } from './auth.js';
import type { TeamRole } from '../model/types.js';

/** Resource kinds, as `gantry auth can-i <verb> <kind>/<name>` names them. */
export const KINDS = ['app', 'instance', 'log', 'event', 'release', 'node', 'pool', 'token', 'user', 'team', 'registry', 'build', 'discovery', 'cluster', 'audit', 'secret', 'config'] as const;
export type Kind = (typeof KINDS)[number];
export const VERBS = ['read', 'write', 'delete'] as const;
export type Verb = (typeof VERBS)[number];

/** What a route does: to which kind of resource, and which route parameter names it (if any). */
export type Rule =
  | { action: 'public' }
  /** The node agent's connection (agent and join tokens; admins too). */
  | { action: 'agent' }
  /** A person's own session: who am I, sign out. */
  | { action: 'self' }
  | { action: 'do'; kind: Kind; verb: Verb; param?: string };

const read = (kind: Kind, param?: string): Rule => ({ action: 'do', kind, verb: 'read', ...(param ? { param } : {}) });
const write = (kind: Kind, param?: string): Rule => ({ action: 'do', kind, verb: 'write', ...(param ? { param } : {}) });
const remove = (kind: Kind, param?: string): Rule => ({ action: 'do', kind, verb: 'delete', ...(param ? { param } : {}) });

/** Every route ("METHOD url" as the router holds it; HEAD follows GET). */
export const POLICY: Readonly<Record<string, Rule>> = {
  'GET /healthz': { action: 'public' },
  'GET /openapi.json': { action: 'public' },
  'POST /v1/login': { action: 'public' },
  'GET /v1/agent/connect': { action: 'agent' },
  'POST /v1/logout': { action: 'self' },
  'GET /v1/whoami': { action: 'self' },
  'GET /v1/auth/can-i': { action: 'self' },

  // Every person may list apps: the answer holds those mayList() lets them see (summaries, no specs).
  'GET /v1/apps': { action: 'self' },
  'POST /v1/apps': write('app'),
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

  'GET /v1/instances': read('instance'),
  'POST /v1/instances/:id/restart': write('instance', 'id'),
  'POST /v1/instances/:id/rebuild': write('instance', 'id'),
  'GET /v1/instances/:id/logs': read('log', 'id'),

  'GET /v1/events': read('event'),
  'GET /v1/watch': read('event'),
  'GET /v1/server/reconcile': read('cluster'),

  'GET /v1/nodes': read('node'),
  'POST /v1/nodes/:name/cordon': write('node', 'name'),
  'POST /v1/nodes/:name/uncordon': write('node', 'name'),
  'POST /v1/nodes/:name/drain': write('node', 'name'),
  'PUT /v1/nodes/:name/dedication': write('node', 'name'),
  'GET /v1/nodes/:name/unassigned': read('node', 'name'),
  'POST /v1/nodes/:name/forget': write('node', 'name'),
  'POST /v1/nodes/adopt': write('node'),
  'GET /v1/pools': read('pool'),
  'PUT /v1/pools/:name': write('pool', 'name'),

  'GET /v1/registry': read('discovery'),
  'POST /v1/registry': write('discovery'),
  'DELETE /v1/registry/leases/:lease': write('discovery'),
  'POST /v1/registry/leases/:lease/keepalive': write('discovery'),
  'GET /v1/discovery/prometheus': read('discovery'),

  'GET /v1/tokens': read('token'),
  'POST /v1/tokens': write('token'),
  'DELETE /v1/tokens/:name': remove('token', 'name'),
  'GET /v1/teams': { action: 'self' },
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
const OPERATOR: ReadonlySet<string> = new Set(['node.read', 'node.write', 'node.delete', 'pool.read', 'pool.write', 'instance.read', 'log.read', 'event.read', 'cluster.read', 'discovery.read', 'build.read']);

export interface Decision {
  allowed: boolean;
  /** Why not, in words a refused caller can act on. */
  why?: string;
}

/** What decide() needs to know of teams: which team a named resource belongs to, and a user's role in a team. */
export interface TeamScope {
  teamOf(kind: Kind, resource: string): string | undefined;
  roleIn(team: string, user: string): TeamRole | undefined;
}

/** Resources that belong to a team: an app (its spec's `team`), its releases, instances and logs, and the team itself. */
const TEAM_SCOPED: ReadonlySet<Kind> = new Set(['app', 'release', 'instance', 'log', 'team', 'secret', 'config']);

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

/** What each team role may do to the team's secrets: owners read values; developers only set and remove them. */
const TEAM_SECRETS: Record<TeamRole, ReadonlySet<Verb>> = {
  owner: new Set(['read', 'write', 'delete']),
  developer: new Set(['write', 'delete']),
  viewer: new Set(),
};

/** The verbs a team role allows on a kind of the team's resources. */
function roleVerbs(kind: Kind, role: TeamRole): ReadonlySet<Verb> {
  return (kind === 'team' ? TEAM_ITSELF : kind === 'secret' ? TEAM_SECRETS : TEAM_ROLE)[role];
}

const NO_TEAMS: TeamScope = { teamOf: () => undefined, roleIn: () => undefined };

/** Whether `caller` may do what `rule` says (to `resource`, when the route names one). */
export function decide(caller: Pick<Caller, 'role' | 'name' | 'user'>, rule: Rule, resource?: string, teams: TeamScope = NO_TEAMS): Decision {
  if (rule.action === 'public') return { allowed: true };
  if (rule.action === 'agent') return caller.role === 'agent' || caller.role === 'join' || caller.role === 'admin' ? { allowed: true } : { allowed: false, why: 'only node agents connect here' };
  const nodeToken = caller.role === 'agent' || caller.role === 'join' ? `a${caller.role === 'agent' ? 'n' : ''} ${caller.role} token` : undefined;
  if (rule.action === 'self') return nodeToken ? { allowed: false, why: `${nodeToken} speaks for a node, not a person` } : { allowed: true };
  if (caller.role === 'admin') return { allowed: true };
  const action = `${rule.kind}.${rule.verb}`;
  if (caller.role === 'operator' && OPERATOR.has(action)) return { allowed: true };
  const team = resource !== undefined && caller.user !== undefined && TEAM_SCOPED.has(rule.kind) ? teams.teamOf(rule.kind, resource) : undefined;
  const role = team !== undefined ? teams.roleIn(team, caller.user!) : undefined;
  if (role && roleVerbs(rule.kind, role).has(rule.verb)) return { allowed: true };
  const what = `${rule.verb} ${rule.kind}${resource ? ` ${resource}` : 's'}`;
  const who = nodeToken ?? `${caller.name} (${caller.role})`;
  const hint = role
    ? `: a ${role} of team ${team} may ${[...roleVerbs(rule.kind, role)].join(' and ') || 'not touch'}${rule.kind === 'team' ? ' it' : rule.kind === 'secret' ? ' its secrets' : rule.kind === 'config' ? ' its configs' : ' its apps'}`
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
 * member: their teams' apps).
 */
export function mayList(caller: Pick<Caller, 'role' | 'name' | 'user'>, kind: Kind, teams: TeamScope): (resource: string) => boolean {
  if (caller.role === 'admin' || (caller.role === 'operator' && kind === 'app')) return () => true;
  return (resource) => decide(caller, { action: 'do', kind, verb: 'read' }, resource, teams).allowed;
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
