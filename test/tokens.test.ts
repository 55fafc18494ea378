// API tokens: an agent token made with the CLI connects a node and can do nothing else;
// listing never shows a secret; revoking one closes its connections; the last admin stays.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import type { EventListResponse, TokenInfo } from '../src/model/api.js';

describe('tokens', () => {
  const cluster = new TestCluster();
  const node = `tok-${cluster.id}`;
  let agentToken = '';
  before(() => cluster.startServer());
  after(() => cluster.close());

  test('gantry token create makes an agent token that connects a node and is refused everything else', async () => {
    const created = await cluster.cli(['token', 'create', node]);
    assert.equal(created.code, 0, created.stderr);
    agentToken = /(gty_\S+)/.exec(created.stdout)?.[1] ?? '';
    assert.ok(agentToken, created.stdout);
    assert.match(created.stdout, /agent token .*shown only this once/);

    const listed = await cluster.cli(['token', 'ls', '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    const tokens = JSON.parse(listed.stdout) as TokenInfo[];
    assert.deepEqual(tokens.map((t) => [t.name, t.role]), [['admin', 'admin'], [node, 'agent']]);
    assert.ok(!listed.stdout.includes(agentToken) && !listed.stdout.includes(cluster.token), 'never a secret');
    assert.ok(tokens.every((t) => Object.keys(t).sort().join() === 'createdAt,name,role'));

    const apps = await fetch(`${cluster.url}/v1/apps`, { headers: { authorization: `Bearer ${agentToken}` } });
    assert.equal(apps.status, 403);
    assert.match(((await apps.json()) as { error: string }).error, /an agent token cannot use GET \/v1\/apps/);
    await cluster.startAgent({ name: node, portRange: '31450-31459', dockerSocket: join(cluster.dir, 'none.sock'), token: agentToken });
  });

  test('names are checked and unique', async () => {
    const again = await cluster.cli(['token', 'create', node]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, new RegExp(`a token named "${node}" exists already`));
    const bad = await cluster.cli(['token', 'create', 'Bad Name']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /name: a token name: lowercase letters/);
    const role = await cluster.cli(['token', 'create', 'x', '--role', 'root']);
    assert.equal(role.code, 2, role.stderr);
    assert.match(role.stderr, /--role root: expected agent or admin/);
  });

  test('revoking a token closes the agent connections made with it; the last admin token cannot be revoked', async () => {
    const revoked = await cluster.cli(['token', 'rm', node]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`agent token "${node}" revoked; 1 agent connection\\(s\\) closed`));
    assert.equal((await fetch(`${cluster.url}/v1/nodes`, { headers: { authorization: `Bearer ${agentToken}` } })).status, 401);
    const { events } = (await cluster.api('GET', '/v1/events?limit=1000')) as EventListResponse;
    assert.ok(events.some((e) => e.type === 'token.revoked' && e.message.includes(node)));
    // The agent tries again and again, and is refused: the node stops heartbeating.
    await until('the agent to be refused', () => cluster.output.some((line) => line.includes(`[agent ${node}]`) && /401/.test(line)), 15_000);

    const last = await cluster.cli(['token', 'rm', 'admin']);
    assert.notEqual(last.code, 0);
    assert.match(last.stderr, /"admin" is the last admin token: create another admin token before revoking it/);
    const missing = await cluster.cli(['token', 'rm', 'nobody']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no token named "nobody"/);
  });
});
