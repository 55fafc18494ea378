// The OpenAPI paths of approvals (a team's gated envs, the requests waiting, approve and reject)
// and of invitations (made by admins and team owners, accepted without a token).
import { NAME } from '../../model/names.js';
import { DURATION_PATTERN } from '../../model/units.js';
import { body, conflict, error, list, matching, object, ok, op, pathParam, queryParam } from './openapi-helpers.js';

const change = object({ path: { type: 'string' }, kind: { type: 'string', enum: ['added', 'removed', 'changed'] }, from: {}, to: {} });
const approval = object({
  app: { type: 'string' },
  env: { type: 'string' },
  teams: list({ type: 'string' }),
  kind: { type: 'string', enum: ['create', 'update', 'rollback'] },
  base: object({ release: { type: 'integer', description: '0: the app did not exist' }, digest: { type: 'string' } }),
  changes: list(change),
  requestedBy: { type: 'string' },
  requestedAt: { type: 'integer' },
  note: { type: 'string' },
});
const invitation = object({
  id: { type: 'string' },
  platformRole: { type: 'string', enum: ['admin', 'operator', 'member'] },
  team: { type: 'string' },
  teamRole: { type: 'string', enum: ['owner', 'developer', 'viewer'] },
  createdBy: { type: 'string' },
  createdAt: { type: 'integer' },
  expiresAt: { type: 'integer' },
});
const session = object({ user: { type: 'string' }, role: { type: 'string' }, token: { type: 'string' }, expiresAt: { type: 'integer' } });

/** What apply and rollback answer when the app's team requires approval for its env. */
export const pendingApproval = { '202': ok('Kept for approval: nothing was applied', object({ approval, message: { type: 'string' } })) };

export function teamPaths(): Record<string, object> {
  const appParam = pathParam('app', matching(NAME), 'App name');
  return {
    '/v1/teams/{team}/require-approval': {
      put: op({
        summary: "Which envs of the team need an owner's approval before a new release rolls out (the team's owners, admins); an empty list lifts the rule",
        parameters: [pathParam('team', matching(NAME), 'Team name')],
        requestBody: body({ envs: { ...list(matching(NAME)), maxItems: 32 } }, ['envs']),
        responses: { '200': ok('The rule now', object({ team: { type: 'string' }, requireApproval: list({ type: 'string' }) })) },
      }),
    },
    '/v1/approvals': {
      get: op({
        summary: "Changes waiting for approval: all for admins, their teams' for members (with the changes, without the proposed spec)",
        parameters: [queryParam('team', matching(NAME), "only this team's")],
        responses: { '200': ok('Requests', object({ approvals: list(approval) })) },
      }),
    },
    '/v1/approvals/{app}/approve': {
      post: op({
        summary: "Apply the proposal as a new release (an owner of the app's team who did not ask for it, or an admin); the release records who approved",
        parameters: [appParam],
        responses: { '200': ok('Applied', object({ app: { type: 'object' }, approval })), ...conflict('The app changed since the proposal was made: apply again') },
      }),
    },
    '/v1/approvals/{app}/reject': {
      post: op({
        summary: "Drop the proposal (the team's owners, admins; whoever asked may withdraw it)",
        parameters: [appParam],
        requestBody: body({ reason: { type: 'string', maxLength: 500 } }, [], false),
        responses: { '200': ok('Dropped', object({ rejected: approval })) },
      }),
    },
    '/v1/invitations': {
      get: op({ summary: "Open invitations (never their codes): all for admins, their teams' for owners", responses: { '200': ok('Invitations', object({ invitations: list(invitation) })) } }),
      post: op({
        summary: 'Invite someone: a one-time code, shown only in this answer (admins: any role and team; team owners: into their own team, as a member)',
        requestBody: body({
          team: matching(NAME),
          role: { type: 'string', enum: ['owner', 'developer', 'viewer'], description: 'their role in `team` (default developer)' },
          platformRole: { type: 'string', enum: ['admin', 'operator', 'member'], default: 'member' },
          expiresIn: { type: 'string', pattern: DURATION_PATTERN.source, description: 'default 168h (7 days), between 5m and 30 days' },
        }, [], false),
        responses: { '201': ok('The code, once', object({ invitation, code: { type: 'string' }, accept: { type: 'string' } })), ...conflict('Too many open invitations') },
      }),
    },
    '/v1/invitations/{id}': {
      delete: op({ summary: 'Revoke an invitation (admins; owners: their team\'s)', parameters: [pathParam('id', { type: 'string', pattern: '^[0-9a-f]{16}$' }, 'Invitation id')], responses: { '200': ok('Revoked', object({ revoked: invitation })) } }),
    },
    '/v1/invitations/accept': {
      post: {
        summary: 'Become a user with an invitation code (no token needed): the user is made, joins the team, and gets a session like POST /v1/login; the code is used up. Failed attempts are counted like sign-ins',
        security: [],
        requestBody: body({ code: { type: 'string', maxLength: 100 }, name: matching(NAME), password: { type: 'string', minLength: 10, maxLength: 1024 } }, ['code', 'name', 'password']),
        responses: {
          '201': ok('Signed in', session),
          '400': error('Invalid request; `problems` names each bad field'),
          '403': error('Unknown, used up or expired code (one answer for all three)'),
          ...conflict('A user with this name exists'),
          '429': error('Too many failed attempts from this address lately'),
        },
      },
    },
  };
}
