// The isolation matrix: for each kind of resource and each verb, a member of team a neither sees
// nor changes team b's, a viewer changes nothing, and lists and streams (events, watch, the
// registry, Prometheus SD) carry only what the reader may see. A real server and a real agent
// (process runtime) run real instances, so every list has something in it to leak.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestCluster, until } from './helpers/cluster.js';
import type { AppDetailResponse, EventListResponse, InstanceListResponse } from '../src/model/api.js';

const PASSWORD = 'isolation matrix password';
const PEOPLE = { alice: 'owner', dave: 'developer', vera: 'viewer' } as const;

describe('isolation between teams', () => {
  const cluster = new TestCluster();
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};
  const spec = (app: string, team: string | undefined, replicas = 1) => ({
    app,
    ...(team ? { team } : {}),
    entrypoints: { web: { command: ['sh', '-c', 'echo started $GANTRY_INSTANCE; exec sleep 3600'], replicas, ports: [{ name: 'http' }], resources: { cpu: 0.01, memory: '16Mi' } } },
  });
  const call = async (who: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${cluster.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${tokens[who] ?? cluster.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, text, body: (text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  /** Reads an SSE (or streamed) answer for `ms`, or until `enough` says so. */
  const readStream = async (who: string, path: string, ms: number, enough: (text: string) => boolean = () => false) => {
    const controller = new AbortController();
    const response = await fetch(`${cluster.url}${path}`, { headers: { authorization: `Bearer ${tokens[who] ?? cluster.token}` }, signal: controller.signal });
    assert.equal(response.status, 200, path);
    let text = '';
    const timer = setTimeout(() => controller.abort(), ms);
    try {
      const decoder = new TextDecoder();
      for await (const chunk of response.body!) {
        text += decoder.decode(chunk as Uint8Array, { stream: true });
        if (enough(text)) break;
      }
    } catch {
      // aborted at the deadline
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    return text;
  };

  before(async () => {
    await cluster.startServer();
    await cluster.startAgent({ name: `iso-${cluster.id}`, portRange: '31700-31749', dockerSocket: join(cluster.dir, 'no-docker.sock') });
    for (const user of [...Object.keys(PEOPLE), 'bob']) {
      assert.equal((await call('admin', 'POST', '/v1/users', { name: user, password: PASSWORD })).status, 201);
      const login = await fetch(`${cluster.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password: PASSWORD }) });
      tokens[user] = ((await login.json()) as { token: string }).token;
    }
    assert.equal((await call('admin', 'POST', '/v1/teams', { name: 'a', owner: 'alice' })).status, 201);
    assert.equal((await call('admin', 'POST', '/v1/teams', { name: 'b', owner: 'bob' })).status, 201);
    for (const [user, role] of Object.entries(PEOPLE)) if (role !== 'owner') assert.equal((await call('alice', 'PUT', `/v1/teams/a/members/${user}`, { role })).status, 200);
    // Each team's own pool (empty: what matters here is who sees which).
    for (const team of ['a', 'b']) assert.equal((await call('admin', 'PUT', `/v1/pools/p${team}`, { team })).status, 200);
    for (const [app, team] of [['app-a', 'a'], ['app-b', 'b']] as const) {
      assert.equal((await call('admin', 'POST', '/v1/apps', spec(app, team))).status, 201);
    }
  });

  after(async () => {
    await cluster.close();
  });

  test('members apply apps into their own teams only; a viewer applies nothing', async () => {
    assert.equal((await call('dave', 'POST', '/v1/apps', spec('a-new', 'a'))).status, 201, 'a developer makes an app in the team');
    const refusals: Array<[string, unknown, RegExp]> = [
      ['vera', spec('a-viewer', 'a'), /vera \(member\) may not write apps: only developers and owners of a team write its apps \(vera is viewer of team a\)/],
      ['dave', spec('b-new', 'b'), /dave \(member\) may not write app b-new: it belongs to team b, which you are not in/],
      ['dave', spec('no-team', undefined), /may not write app no-team: it belongs to team default, which you are not in/],
      ['dave', spec('app-b', 'a'), /may not write app app-b: it belongs to team b/],
      ['dave', spec('app-a', 'b'), /moving app app-a from team a to team b needs write in both/],
      ['bob', spec('a-new', 'b'), /may not write app a-new: it belongs to team a/],
    ];
    for (const [who, body, message] of refusals) {
      const refused = await call(who, 'POST', '/v1/apps', body);
      assert.equal(refused.status, 403, `${who}: ${refused.text}`);
      assert.match(String(refused.body.error), message);
    }
    const names = ((await call('admin', 'GET', '/v1/apps')).body.apps as { name: string; team?: string }[]).map((a) => a.name);
    assert.deepEqual(names, ['a-new', 'app-a', 'app-b'], 'nothing refused was stored');
    assert.equal(((await call('admin', 'GET', '/v1/apps/app-a')).body as unknown as AppDetailResponse).app.spec.team, 'a', 'app-a stays team a\'s');
    // A rollback to a release of another team's would move the app there: write in both is needed.
    assert.equal((await call('admin', 'POST', '/v1/apps', spec('moved', 'b'))).status, 201);
    assert.equal((await call('admin', 'POST', '/v1/apps', spec('moved', 'a'))).status, 200);
    const back = await call('dave', 'POST', '/v1/apps/moved/rollback', {});
    assert.equal(back.status, 403, back.text);
    assert.match(String(back.body.error), /moving app moved from team a to team b needs write in both/);
    assert.equal((await call('admin', 'DELETE', '/v1/apps/moved')).status, 202);
    const unknownTeam = await call('admin', 'POST', '/v1/apps', spec('lost', 'nobody'));
    assert.equal(unknownTeam.status, 400);
    assert.match(unknownTeam.text, /team.*no team named \\"nobody\\"/);
  });

  test('instances, logs, releases: another team\'s are neither listed nor reachable by name', async () => {
    const running = async (app: string) =>
      until(`${app} running`, async () => {
        const detail = (await cluster.api('GET', `/v1/apps/${app}`)) as AppDetailResponse;
        return detail.instances.find((i) => i.status?.state === 'running')?.id;
      }, 60_000);
    ids.a = await running('app-a');
    ids.b = await running('app-b');
    for (const who of ['alice', 'dave', 'vera']) {
      const listed = (await call(who, 'GET', '/v1/instances')).body as unknown as InstanceListResponse;
      assert.ok(listed.instances.length >= 1 && listed.instances.every((i) => i.app === 'app-a' || i.app === 'a-new'), `${who}: ${JSON.stringify(listed.instances.map((i) => i.app))}`);
      assert.deepEqual(((await call(who, 'GET', '/v1/instances?app=app-b')).body as unknown as InstanceListResponse).instances, [], `${who} asking for app-b by name`);
    }
    const bobs = (await call('bob', 'GET', '/v1/instances')).body as unknown as InstanceListResponse;
    assert.deepEqual([...new Set(bobs.instances.map((i) => i.app))], ['app-b']);

    const matrix: Array<[string, string, string, number]> = [
      ['alice', 'GET', `/v1/instances/${ids.b}/logs?tail=10`, 403],
      ['alice', 'POST', `/v1/instances/${ids.b}/restart`, 403],
      ['alice', 'POST', `/v1/instances/${ids.b}/rebuild`, 403],
      ['vera', 'POST', `/v1/instances/${ids.a}/restart`, 403],
      ['vera', 'POST', `/v1/instances/${ids.a}/rebuild`, 403],
      ['alice', 'GET', '/v1/apps/app-b/releases', 403],
      ['alice', 'GET', '/v1/apps/app-b/releases/1', 403],
      ['alice', 'GET', '/v1/apps/app-b/diff', 403],
      ['alice', 'GET', '/v1/apps/app-b/rollout', 403],
      ['vera', 'GET', '/v1/apps/app-a/releases', 200],
      ['vera', 'POST', '/v1/apps/app-a/entries/web/scale', 403],
      ['vera', 'POST', '/v1/apps/app-a/stop', 403],
      ['vera', 'POST', '/v1/apps/app-a/rollback', 403],
      ['vera', 'POST', '/v1/apps/app-a/prepull', 403],
      ['vera', 'POST', '/v1/apps/app-a/rollout/pause', 403],
      ['vera', 'DELETE', '/v1/apps/app-a', 403],
      ['dave', 'DELETE', '/v1/apps/app-a', 403],
      ['dave', 'POST', `/v1/instances/${ids.a}/restart`, 200],
    ];
    for (const [who, method, path, expected] of matrix) {
      const answer = await call(who, method, path, method === 'POST' ? (path.endsWith('/scale') ? { replicas: 2 } : {}) : undefined);
      assert.equal(answer.status, expected, `${who} ${method} ${path}: ${answer.text.slice(0, 300)}`);
    }
    const logs = await readStream('vera', `/v1/instances/${ids.a}/logs?tail=10`, 5000, (text) => text.includes('started'));
    assert.match(logs, new RegExp(`started ${ids.a}`), 'a viewer reads the logs of the team\'s instances');
  });

  test('events: the list and the live stream carry only the reader\'s teams\' apps', async () => {
    const all = ((await call('admin', 'GET', '/v1/events?limit=1000')).body as unknown as EventListResponse).events;
    assert.ok(all.some((e) => e.app === 'app-b') && all.some((e) => e.app === undefined), 'there is something to leak');
    const alices = ((await call('alice', 'GET', '/v1/events?limit=1000')).body as unknown as EventListResponse).events;
    assert.ok(alices.some((e) => e.app === 'app-a'));
    assert.deepEqual([...new Set(alices.map((e) => e.app))].filter((app) => app !== 'app-a' && app !== 'a-new'), [], 'no other app\'s event, nor the cluster\'s');
    assert.deepEqual(((await call('alice', 'GET', '/v1/events?app=app-b')).body as unknown as EventListResponse).events, []);

    // Live: both apps change while alice follows; her stream carries app-a's change only.
    const since = Math.max(...all.map((e) => e.seq ?? 0));
    const following = readStream('alice', `/v1/events?follow=1&since=${since}`, 15_000, (text) => text.includes('"app":"app-a"') && text.includes('scaled web from 1 to 2'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await call('bob', 'POST', '/v1/apps/app-b/entries/web/scale', { replicas: 2 })).status, 200);
    assert.equal((await call('dave', 'POST', '/v1/apps/app-a/entries/web/scale', { replicas: 2 })).status, 200);
    const text = await following;
    assert.match(text, /"app":"app-a"/);
    assert.doesNotMatch(text, /app-b/);
  });

  test('discovery: the registry and Prometheus SD list the reader\'s teams\' endpoints; registering is for admins', async () => {
    await until('both apps registered', async () => {
      const { endpoints } = (await cluster.api('GET', '/v1/registry')) as { endpoints: { app: string }[] };
      return endpoints.some((e) => e.app === 'app-a') && endpoints.some((e) => e.app === 'app-b');
    }, 30_000);
    const endpoints = (await call('alice', 'GET', '/v1/registry')).body.endpoints as { app: string }[];
    assert.deepEqual([...new Set(endpoints.map((e) => e.app))].sort(), ['a-new', 'app-a']);
    const targets = (await call('vera', 'GET', '/v1/discovery/prometheus')).body as unknown as { labels: Record<string, string> }[];
    assert.deepEqual([...new Set(targets.map((t) => t.labels.__meta_gantry_app))].sort(), ['a-new', 'app-a']);
    assert.equal((await call('alice', 'POST', '/v1/registry', { app: 'app-a', entry: 'web', address: '10.0.0.1', ports: { http: 80 } })).status, 403);
  });

  test('the watch stream: a snapshot and changes of the reader\'s teams\' keys only; nodes are for operators', async () => {
    for (const prefix of ['instances', 'status', 'registry', 'apps']) {
      const text = await readStream('alice', `/v1/watch?prefix=${prefix}`, 3000, (t) => t.includes('event: snapshot') && t.includes('\n\n'));
      assert.match(text, /event: snapshot/, prefix);
      assert.doesNotMatch(text, /app-b/, `${prefix}: ${text.slice(0, 300)}`);
      if (prefix !== 'status') assert.match(text, /app-a/, `${prefix} holds team a's keys`);
    }
    assert.doesNotMatch(await readStream('alice', '/v1/watch?prefix=nodes', 2000, (t) => t.includes('event: snapshot')), /"name"/, 'no node for a member');
    // One app's keys (the console's app page): for an admin too, and never widening what a member sees.
    const instancesOfA = (await call('admin', 'GET', '/v1/instances?app=app-a')).body.instances as { id: string }[];
    for (const prefix of ['instances', 'status']) {
      const text = await readStream('admin', `/v1/watch?prefix=${prefix}&app=app-a`, 3000, (t) => t.includes('event: snapshot') && t.includes('\n\n'));
      assert.doesNotMatch(text, /app-b/, `${prefix}&app=app-a`);
      const has = instancesOfA.filter(({ id }) => text.includes(id)).length;
      assert.ok(prefix === 'instances' ? has === instancesOfA.length : has > 0, `${prefix}&app=app-a holds app-a's keys (${has} of ${instancesOfA.length})`);
    }
    assert.match(await readStream('alice', '/v1/watch?prefix=status&app=app-b', 3000, (t) => t.includes('event: snapshot') && t.includes('\n\n')), /"items":\[\]/);
    assert.equal((await call('admin', 'GET', '/v1/watch?prefix=nodes&app=app-a')).status, 400);
    const watching = readStream('alice', '/v1/watch?prefix=apps', 15_000, (t) => /event: change[\s\S]*app-a/.test(t));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await call('bob', 'POST', '/v1/apps/app-b/entries/web/scale', { replicas: 1 })).status, 200);
    assert.equal((await call('dave', 'POST', '/v1/apps/app-a/entries/web/scale', { replicas: 1 })).status, 200);
    const text = await watching;
    assert.match(text, /event: change[\s\S]*app-a/);
    assert.doesNotMatch(text, /app-b/);
  });

  test("secrets: a team's members list their names, developers set them, owners read values; nobody else touches them or uses them", async () => {
    const SECRET = 'isolation-secret-value-7f3a';
    assert.equal((await call('bob', 'PUT', '/v1/teams/b/secrets/db', { value: SECRET })).status, 200);
    const matrix: Array<[string, string, string, number]> = [
      ['alice', 'GET', '/v1/teams/b/secrets', 403],
      ['alice', 'GET', '/v1/teams/b/secrets/db', 403],
      ['alice', 'PUT', '/v1/teams/b/secrets/db', 403],
      ['alice', 'DELETE', '/v1/teams/b/secrets/db', 403],
      ['dave', 'PUT', '/v1/teams/a/secrets/token', 200],
      ['dave', 'GET', '/v1/teams/a/secrets/token', 403],
      ['vera', 'PUT', '/v1/teams/a/secrets/token', 403],
      ['vera', 'GET', '/v1/teams/a/secrets/token', 403],
      ['vera', 'GET', '/v1/teams/a/secrets', 200],
      ['alice', 'GET', '/v1/teams/a/secrets/token', 200],
    ];
    for (const [who, method, path, expected] of matrix) {
      const answer = await call(who, method, path, method === 'PUT' ? { value: `${who}-value` } : undefined);
      assert.equal(answer.status, expected, `${who} ${method} ${path}: ${answer.text.slice(0, 200)}`);
      assert.ok(!answer.text.includes(SECRET), `${who} ${method} ${path} answered team b's value`);
    }
    const stolen = await call('dave', 'POST', '/v1/apps', { ...spec('a-new', 'a'), entrypoints: { web: { ...spec('a-new', 'a').entrypoints.web, env: { DB: { secret: 'b/db' } } } } });
    assert.equal(stolen.status, 400, stolen.text);
    assert.match(stolen.text, /secret b\/db belongs to team b, not to this app's team a/);
  });

  test("configs: a team's members read them, developers set and roll them back, owners remove; another team's are out of reach", async () => {
    assert.equal((await call('bob', 'PUT', '/v1/teams/b/configs/web', { text: 'workers 4\n' })).status, 200);
    assert.equal((await call('dave', 'PUT', '/v1/teams/a/configs/web', { values: { MODE: 'blue' } })).status, 200);
    assert.equal((await call('dave', 'PUT', '/v1/teams/a/configs/web', { values: { MODE: 'green' } })).status, 200);
    const matrix: Array<[string, string, string, number, unknown?]> = [
      ['alice', 'GET', '/v1/teams/b/configs', 403],
      ['alice', 'GET', '/v1/teams/b/configs/web', 403],
      ['alice', 'GET', '/v1/teams/b/configs/web/history', 403],
      ['alice', 'PUT', '/v1/teams/b/configs/web', 403, { text: 'x' }],
      ['alice', 'POST', '/v1/teams/b/configs/web/rollback', 403, { version: 1 }],
      ['alice', 'DELETE', '/v1/teams/b/configs/web', 403],
      ['vera', 'GET', '/v1/teams/a/configs/web', 200],
      ['vera', 'GET', '/v1/teams/a/configs/web/diff?from=1', 200],
      ['vera', 'PUT', '/v1/teams/a/configs/web', 403, { text: 'x' }],
      ['vera', 'POST', '/v1/teams/a/configs/web/rollback', 403, { version: 1 }],
      ['dave', 'POST', '/v1/teams/a/configs/web/rollback', 200, { version: 1 }],
      ['dave', 'DELETE', '/v1/teams/a/configs/web', 403],
      ['alice', 'DELETE', '/v1/teams/a/configs/web', 200],
    ];
    for (const [who, method, path, expected, body] of matrix) {
      const answer = await call(who, method, path, body);
      assert.equal(answer.status, expected, `${who} ${method} ${path}: ${answer.text.slice(0, 200)}`);
      assert.ok(!answer.text.includes('workers 4'), `${who} ${method} ${path} answered team b's config`);
    }
  });

  test('pools, nodes, tokens, users, registry credentials, audit: a member sees their team\'s pool and nothing else', async () => {
    assert.deepEqual(((await call('alice', 'GET', '/v1/pools')).body.pools as { name: string }[]).map((p) => p.name), ['pa']);
    assert.deepEqual(((await call('bob', 'GET', '/v1/pools')).body.pools as { name: string }[]).map((p) => p.name), ['pb']);
    const refused: Array<[string, string, unknown?]> = [
      ['PUT', '/v1/pools/pa', { team: 'a' }],
      ['GET', '/v1/nodes'],
      ['POST', `/v1/nodes/iso-${cluster.id}/cordon`],
      ['GET', '/v1/tokens'],
      ['POST', '/v1/tokens', { name: 'mine', role: 'admin' }],
      ['GET', '/v1/users'],
      ['GET', '/v1/registries'],
      ['GET', '/v1/audit'],
      ['GET', '/v1/capacity'],
      ['POST', '/v1/teams', { name: 'c' }],
      ['PUT', '/v1/teams/b/members/alice', { role: 'owner' }],
      ['GET', '/v1/teams/b'],
    ];
    for (const [method, path, body] of refused) {
      const answer = await call('alice', method, path, body);
      assert.equal(answer.status, 403, `alice ${method} ${path}: ${answer.text.slice(0, 200)}`);
    }
  });
});
