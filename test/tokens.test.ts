// API tokens: an agent token made with the CLI connects a node and can do nothing else;
// listing never shows a secret; revoking one closes its connections; the last admin stays.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
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
    // The hint keeps the token off command lines (ps): a file only the agent's user reads, and --token-file.
    assert.equal(created.stdout.split(agentToken).length, 2, `the token is printed once:\n${created.stdout}`);
    assert.match(created.stdout, new RegExp(`gantry agent --server ${cluster.url} --token-file \\S+ --node-name ${node}\\n`));
    assert.match(created.stdout, /umask 077/);
    assert.doesNotMatch(created.stdout, /--token gty_/);

    const listed = await cluster.cli(['token', 'ls', '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    const tokens = JSON.parse(listed.stdout) as TokenInfo[];
    assert.deepEqual(tokens.map((t) => [t.name, t.role, t.node]), [['admin', 'admin', undefined], [node, 'agent', node]]);
    assert.ok(!listed.stdout.includes(agentToken) && !listed.stdout.includes(cluster.token), 'never a secret');
    assert.ok(tokens.every((t) => Object.keys(t).sort().join() === (t.role === 'agent' ? 'createdAt,name,node,role' : 'createdAt,name,role')));

    const nodes = await fetch(`${cluster.url}/v1/nodes`, { headers: { authorization: `Bearer ${agentToken}` } });
    assert.equal(nodes.status, 403);
    assert.match(((await nodes.json()) as { error: string }).error, /an agent token may not read nodes \(GET \/v1\/nodes\)/);
    // Routes for people: an agent token is none.
    const apps = await fetch(`${cluster.url}/v1/apps`, { headers: { authorization: `Bearer ${agentToken}` } });
    assert.equal(apps.status, 403);
    assert.match(((await apps.json()) as { error: string }).error, /an agent token speaks for a node, not a person \(GET \/v1\/apps\)/);
    await cluster.startAgent({ name: node, portRange: '31450-31459', dockerSocket: join(cluster.dir, 'none.sock'), token: agentToken });
  });

  test('names are checked and unique', async () => {
    const again = await cluster.cli(['token', 'create', node]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, new RegExp(`a token named "${node}" exists already`));
    const bad = await cluster.cli(['token', 'create', 'Bad Name']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /name: token name: lowercase letters/);
    const role = await cluster.cli(['token', 'create', 'x', '--role', 'root']);
    assert.equal(role.code, 2, role.stderr);
    assert.match(role.stderr, /--role root: expected agent, join or admin/);
    const usage = await Promise.all([
      cluster.cli(['token', 'create', 'x', '--role', 'admin', '--node', 'n1']),
      cluster.cli(['token', 'create', 'x', '--ttl', '1h']),
      cluster.cli(['token', 'create', 'x', '--role', 'join', '--ttl', 'soon']),
    ]);
    assert.deepEqual(usage.map((r) => r.code), [2, 2, 2], usage.map((r) => r.stderr).join('\n'));
    assert.match(usage[0]!.stderr, /--node: only an agent token is bound to a node/);
    assert.match(usage[1]!.stderr, /--ttl: only a join token expires/);
    assert.match(usage[2]!.stderr, /--ttl soon: expected a duration such as "1h"/);
  });

  test('--node binds an agent token to another node than its name; --role join --ttl makes a join token that expires', async () => {
    const bound = await cluster.cli(['token', 'create', `${node}-tok`, '--node', `${node}-b`]);
    assert.equal(bound.code, 0, bound.stderr);
    assert.match(bound.stdout, new RegExp(`^agent token "${node}-tok" for node ${node}-b \\(shown only this once`));
    assert.match(bound.stdout, new RegExp(`--token-file \\S+ --node-name ${node}-b\\n`));

    const before = Date.now();
    const joinJson = await cluster.cli(['token', 'create', `${node}-join`, '--role', 'join', '--ttl', '2h', '-o', 'json']);
    assert.equal(joinJson.code, 0, joinJson.stderr);
    const created = JSON.parse(joinJson.stdout) as TokenInfo & { token: string };
    assert.equal(created.role, 'join');
    assert.match(created.token, /^gty_/);
    assert.ok(created.expiresAt! >= before + 2 * 3_600_000 && created.expiresAt! <= Date.now() + 2 * 3_600_000, String(created.expiresAt));
    const joinText = await cluster.cli(['token', 'create', `${node}-join2`, '--role', 'join']);
    assert.equal(joinText.code, 0, joinText.stderr);
    assert.match(joinText.stdout, new RegExp(`^join token "${node}-join2", valid until \\d{4}-\\d\\d-\\d\\dT.*shown only this once`));
    assert.match(joinText.stdout, /--token-file \S+ --node-name <node-name>\n/);

    const listed = await cluster.cli(['token', 'ls', '-o', 'json']);
    const tokens = JSON.parse(listed.stdout) as TokenInfo[];
    assert.deepEqual(tokens.filter((t) => t.name.startsWith(`${node}-`)).map((t) => [t.name, t.role, t.node, t.expiresAt === undefined]), [
      [`${node}-join`, 'join', undefined, false],
      [`${node}-join2`, 'join', undefined, false],
      [`${node}-tok`, 'agent', `${node}-b`, true],
    ]);
    const table = await cluster.cli(['token', 'ls']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+ROLE\s+NODE\s+EXPIRES\s+CREATED$/);
    assert.match(lines.find((l) => l.startsWith(`${node}-tok `))!, new RegExp(`^${node}-tok\\s+agent\\s+${node}-b\\s+-\\s+\\S+$`));
    assert.match(lines.find((l) => l.startsWith(`${node}-join `))!, new RegExp(`^${node}-join\\s+join\\s+-\\s+(\\d{4}-\\d\\d-\\d\\d )?\\d\\d:\\d\\d:\\d\\d\\s+\\S+`));

    // As the hint says: the join token in a file only the agent's user reads, given with --token-file.
    const file = join(cluster.dir, 'join-token');
    writeFileSync(file, `${created.token}\n`, { mode: 0o600 });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const joiner = `${node}-j`;
    await cluster.startAgent({ name: joiner, portRange: '33020-33029', dockerSocket: join(cluster.dir, 'none.sock'), token: 'gty_unused_the_file_wins', extra: ['--token-file', file] });
    const { events } = (await cluster.api('GET', '/v1/events?limit=1000')) as EventListResponse;
    assert.ok(events.some((e) => e.type === 'token.created' && e.message.includes(`node ${joiner} joined with join token "${node}-join"`)), 'joined with the token of the file');
    await cluster.stopAgent(joiner);
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
