// Team quotas: a change that would take a team past a limit is refused before anything is
// stored, with the numbers; a change that does not raise use always passes; admins set quotas,
// members read their own team's. A real server over real HTTP (no agent: nothing must run, the
// quota counts what apps ask for); the usage function is also tested on its own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { startServer, type RunningServer } from '../src/server/main.js';
import { excessOf, teamUse, describeExcess } from '../src/server/services/quota-use.js';
import { canonicalSpec, parseAppSpec } from '../src/model/spec.js';
import type { AppRecord, QuotaRecord, QuotaView } from '../src/model/types.js';
import { GANTRY } from './helpers/cluster.js';

const ADMIN = 'gty_quotas_test_admin_token';
const PASSWORD = 'quota keeper password';
const MI = 1024 ** 2;

interface EntryShape {
  cpu?: number;
  memory?: string | number;
  replicas?: number;
}

function spec(app: string, options: { team?: string; env?: string; entries?: Record<string, EntryShape> } = {}) {
  const entries = options.entries ?? { web: {} };
  return {
    app,
    ...(options.team ? { team: options.team } : {}),
    ...(options.env ? { env: options.env } : {}),
    entrypoints: Object.fromEntries(Object.entries(entries).map(([name, e]) => [name, {
      command: ['sleep', '3600'],
      replicas: e.replicas ?? 1,
      resources: { cpu: e.cpu ?? 0.1, memory: e.memory ?? '64Mi' },
    }])),
  };
}

function record(app: string, options: Parameters<typeof spec>[1] & { stopped?: boolean } = {}): AppRecord {
  const parsed = canonicalSpec(parseAppSpec(spec(app, options)));
  return { name: app, env: parsed.env, spec: parsed, release: 1, stopped: options.stopped ?? false, createdAt: 0, updatedAt: 0, updatedBy: 'test' };
}

describe('the use of a team: a pure function over app records', () => {
  const apps = [
    record('a', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.5, replicas: 3, memory: '256Mi' }, worker: { cpu: 0.25, replicas: 2, memory: '1Gi' } } }),
    record('b', { team: 'shop', env: 'dev', entries: { web: { cpu: 0.1, replicas: 10 } } }),
    record('c', { team: 'shop', env: 'prod', stopped: true, entries: { web: { cpu: 8, replicas: 8 } } }),
    record('d', { team: 'other', env: 'prod', entries: { web: { cpu: 4 } } }),
    record('e', { entries: { web: { cpu: 1, replicas: 2 } } }),
  ];

  test('replicas × requests per env and in total; stopped apps and other teams do not count; no team is team default', () => {
    const use = teamUse(apps, 'shop');
    assert.deepEqual(use.envs.get('prod'), { milliCpu: 2000, memory: 3 * 256 * MI + 2 * 1024 * MI, instances: 5 });
    assert.deepEqual(use.envs.get('dev'), { milliCpu: 1000, memory: 10 * 64 * MI, instances: 10 });
    assert.deepEqual(use.total, { milliCpu: 3000, memory: 3 * 256 * MI + 2 * 1024 * MI + 10 * 64 * MI, instances: 15 });
    assert.deepEqual(teamUse(apps, 'default').envs.get('default'), { milliCpu: 2000, memory: 2 * 64 * MI, instances: 2 });
    assert.deepEqual(teamUse(apps, 'nobody').total, { milliCpu: 0, memory: 0, instances: 0 });
  });

  test('a change is measured by what it adds: over a limit only if it raises use past it', () => {
    const quota: QuotaRecord = { team: 'shop', envs: { prod: { cpu: 2.25, instances: 5 } }, total: { memory: 4096 * MI }, updatedAt: 0, updatedBy: 'test' };
    const others = apps.filter((a) => a.name !== 'a');
    const now = apps[0]!;
    const bigger = record('a', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.5, replicas: 4, memory: '256Mi' }, worker: { cpu: 0.25, replicas: 2, memory: '1Gi' } } });
    const excess = excessOf(quota, others, now, bigger);
    assert.deepEqual(excess.map(describeExcess), ['team shop, env prod: cpu 2 of 2.25 used, this change needs 0.5 more', 'team shop, env prod: instances 5 of 5 used, this change needs 1 more']);
    assert.deepEqual(excessOf(quota, others, bigger, now), [], 'back down: always passes');
    const overQuota: QuotaRecord = { ...quota, envs: { prod: { cpu: 1 } } };
    const smaller = record('a', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.5, replicas: 2, memory: '256Mi' } } });
    assert.deepEqual(excessOf(overQuota, others, now, smaller), [], 'still over the lowered quota, but lower: passes');
    assert.deepEqual(excessOf(overQuota, others, now, now), [], 'unchanged: passes');
    const toDev = record('a', { team: 'shop', env: 'dev', entries: { web: { cpu: 0.5, replicas: 3, memory: '256Mi' }, worker: { cpu: 0.25, replicas: 2, memory: '1Gi' } } });
    assert.deepEqual(excessOf(overQuota, others, now, toDev), [], 'prod is limited, dev is not; the total has no cpu limit');
    const fromOther = excessOf(quota, apps.filter((a) => a.name !== 'd'), apps[3], record('d', { team: 'shop', env: 'prod', entries: { web: { cpu: 4, memory: '2Gi' } } }));
    assert.deepEqual(fromOther.map((e) => [e.env ?? 'all', e.resource, e.used, e.needs]), [['prod', 'cpu', 2, 4], ['prod', 'instances', 5, 1], ['all', 'memory', 3 * 256 * MI + 2 * 1024 * MI + 10 * 64 * MI, 2048 * MI]], 'moving in from another team adds all of it');
    const stopped = apps[2]!;
    const started = { ...stopped, stopped: false };
    assert.equal(excessOf(quota, apps.filter((a) => a.name !== 'c'), stopped, started)[0]?.needs, 64, 'starting a stopped app adds what it asks for');
  });
});

describe('quotas over HTTP: set by admins, read by members, checked on every change that raises use', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-quotas-'));
  let server: RunningServer;
  const tokens: Record<string, string> = {};

  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const apply = (body: unknown, token = ADMIN) => call('POST', '/v1/apps', token, body);
  const setQuota = async (team: string, limits: Record<string, unknown>) => {
    const answer = await call('PUT', `/v1/teams/${team}/quota`, ADMIN, limits);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body as unknown as QuotaView;
  };
  const appOf = async (name: string) => (await call('GET', `/v1/apps/${name}`, ADMIN)).body.app as AppRecord | undefined;

  before(async () => {
    server = await startServer({ dataDir: join(dir, 'server'), port: 0, bootstrapToken: ADMIN });
    for (const [user, role] of [['alice', 'member'], ['bob', 'member'], ['oscar', 'operator']] as const) {
      assert.equal((await call('POST', '/v1/users', ADMIN, { name: user, password: PASSWORD, role })).status, 201);
      const login = await fetch(`${server.url}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password: PASSWORD }) });
      tokens[user] = ((await login.json()) as { token: string }).token;
    }
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'shop', owner: 'alice' })).status, 201);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'other', owner: 'bob' })).status, 201);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('only admins set quotas; the team\'s members, operators and admins read them; every input is checked', async () => {
    const put = (token: string) => call('PUT', '/v1/teams/shop/quota', token, { env: 'prod', cpu: 100 });
    const byOwner = await put(tokens.alice!);
    assert.equal(byOwner.status, 403);
    assert.match(String(byOwner.body.error), /alice \(member\) may not write quota shop: .*admins set quotas/);
    const byOperator = await put(tokens.oscar!);
    assert.equal(byOperator.status, 403);
    assert.match(String(byOperator.body.error), /quotas are set by admins/);
    assert.equal((await call('DELETE', '/v1/teams/shop/quota', tokens.alice!)).status, 403);

    const set = await setQuota('shop', { env: 'prod', cpu: 2, memory: '1Gi', instances: 6 });
    assert.deepEqual(set.quota?.envs.prod, { cpu: 2, memory: 1024 * MI, instances: 6 });

    assert.equal((await call('GET', '/v1/teams/shop/quota', tokens.alice!)).status, 200);
    assert.equal((await call('GET', '/v1/teams/shop/quota', tokens.oscar!)).status, 200);
    const stranger = await call('GET', '/v1/teams/shop/quota', tokens.bob!);
    assert.equal(stranger.status, 403, 'a member of another team');
    assert.match(String(stranger.body.error), /belongs to team shop, which you are not in/);
    assert.equal((await call('GET', '/v1/quotas', tokens.alice!)).status, 403, 'the list of every team is for admins and operators');
    assert.equal((await call('GET', '/v1/quotas', tokens.oscar!)).status, 200);

    const bad: Array<[unknown, RegExp]> = [
      [{ env: 'prod', cpu: -1 }, /cpu/],
      [{ env: 'prod', memory: 'lots' }, /memory/],
      [{ env: 'prod', memory: '1Pi' }, /memory/],
      [{ env: 'prod', instances: 1.5 }, /instances/],
      [{ env: 'Prod!', cpu: 1 }, /env/],
      [{ env: 'prod' }, /at least one limit/],
      [{ env: 'prod', cpu: 1, gpus: 2 }, /gpus/],
      ['not an object', /invalid/],
    ];
    for (const [body, problem] of bad) {
      const answer = await call('PUT', '/v1/teams/shop/quota', ADMIN, body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.match(JSON.stringify(answer.body), problem, JSON.stringify(body));
    }
    assert.equal((await call('PUT', '/v1/teams/nosuchteam/quota', ADMIN, { cpu: 1 })).status, 404);
    assert.equal((await call('DELETE', '/v1/teams/shop/quota?env=prod&total=true', ADMIN)).status, 400);
    assert.deepEqual((await call('GET', '/v1/teams/shop/quota', ADMIN)).body.quota, set.quota, 'refused changes stored nothing');
    const events = (await call('GET', '/v1/events?limit=1000', ADMIN)).body.events as Array<{ type: string; message: string }>;
    assert.ok(events.some((e) => e.type === 'quota.set' && e.message === 'quota of team shop, env prod: cpu 2, memory 1Gi, instances 6 (by admin)'), JSON.stringify(events.map((e) => e.message)));
  });

  test('apply: refused with the numbers and nothing stored, for a new app and for a bigger spec', async () => {
    await setQuota('shop', { env: 'prod', cpu: 2, memory: '1Gi', instances: 6 });
    assert.equal((await apply(spec('web', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.5, replicas: 3 } } }))).status, 201);
    const refused = await apply(spec('api', { team: 'shop', env: 'prod', entries: { web: { cpu: 1 } } }));
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'app api refused: team shop, env prod: cpu 1.5 of 2 used, this change needs 1 more');
    assert.equal((await call('GET', '/v1/apps/api', ADMIN)).status, 404, 'nothing stored');

    const bigger = await apply(spec('web', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.75, replicas: 3 } } }));
    assert.equal(bigger.status, 409);
    assert.equal(bigger.body.error, 'app web refused: team shop, env prod: cpu 1.5 of 2 used, this change needs 0.75 more');
    const web = await appOf('web');
    assert.equal(web?.spec.entrypoints.web?.resources.cpu, 0.5, 'the stored spec is unchanged');
    assert.equal(web?.release, 1);
    const releases = (await call('GET', '/v1/apps/web/releases', ADMIN)).body.releases as unknown[];
    assert.equal(releases.length, 1, 'no release was made');

    const events = (await call('GET', '/v1/events?app=api', ADMIN)).body.events as Array<{ type: string; level: string; message: string; data: Record<string, unknown> }>;
    const exceeded = events.find((e) => e.type === 'quota.exceeded');
    assert.deepEqual(exceeded && [exceeded.level, exceeded.data.team, exceeded.data.env, exceeded.data.resource], ['warning', 'shop', 'prod', 'cpu']);
  });

  test('memory in the units specs use: a limit of 1Gi holds 2 × 512Mi, not 3', async () => {
    await setQuota('other', { env: 'default', memory: '1Gi' });
    assert.equal((await apply(spec('mem', { team: 'other', entries: { web: { memory: '512Mi', replicas: 2 } } }))).status, 201);
    const scaled = await call('POST', '/v1/apps/mem/entries/web/scale', ADMIN, { replicas: 3 });
    assert.equal(scaled.status, 409);
    assert.equal(scaled.body.error, 'app mem refused: team other, env default: memory 1Gi of 1Gi used, this change needs 512Mi more');
  });

  test('scale: refused past a limit; down always passes, also over a lowered quota', async () => {
    const up = await call('POST', '/v1/apps/web/entries/web/scale', tokens.alice!, { replicas: 5 });
    assert.equal(up.status, 409);
    assert.equal(up.body.error, 'app web refused: team shop, env prod: cpu 1.5 of 2 used, this change needs 1 more');
    assert.equal((await appOf('web'))?.spec.entrypoints.web?.replicas, 3);

    await setQuota('shop', { env: 'prod', cpu: 0.5 });
    assert.equal((await call('POST', '/v1/apps/web/entries/web/scale', tokens.alice!, { replicas: 2 })).status, 200, 'down, still over the quota');
    assert.equal((await call('POST', '/v1/apps/web/entries/web/scale', tokens.alice!, { replicas: 3 })).status, 409, 'back up is refused');
    const smaller = await apply(spec('web', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.25, replicas: 2 } } }));
    assert.equal(smaller.status, 200, `a smaller spec deploys: ${JSON.stringify(smaller.body)}`);
    assert.equal((await appOf('web'))?.release, 2);
  });

  test('start of a stopped app and a rollback to a bigger release are refused', async () => {
    await setQuota('shop', { env: 'prod', cpu: 1 });
    assert.equal((await call('POST', '/v1/apps/web/stop', tokens.alice!)).status, 200);
    assert.equal((await apply(spec('api', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.75 } } }))).status, 201, 'the stopped app counts nothing');
    const start = await call('POST', '/v1/apps/web/start', tokens.alice!);
    assert.equal(start.status, 409);
    assert.equal(start.body.error, 'app web refused: team shop, env prod: cpu 0.75 of 1 used, this change needs 0.5 more');
    assert.equal((await appOf('web'))?.stopped, true, 'still stopped');

    assert.equal((await call('DELETE', '/v1/apps/web', ADMIN)).status, 202);
    assert.equal((await apply(spec('api', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.5 } } }))).status, 200);
    const rollback = await call('POST', '/v1/apps/api/rollback', tokens.alice!, {});
    assert.equal(rollback.status, 200, 'back to 0.75 of 1: fits');
    assert.equal((await apply(spec('api', { team: 'shop', env: 'prod', entries: { web: { cpu: 0.25 } } }))).status, 200);
    await setQuota('shop', { env: 'prod', cpu: 0.5 });
    const refused = await call('POST', '/v1/apps/api/rollback', tokens.alice!, { release: 1 });
    assert.equal(refused.status, 409);
    assert.match(String(refused.body.error), /^app api refused: team shop, env prod: cpu 0.25 of 0.5 used, this change needs 0.5 more$/);
    assert.equal((await appOf('api'))?.spec.entrypoints.web?.resources.cpu, 0.25);
  });

  test('env limits and the team-wide total; moving an app into the team counts all of it', async () => {
    await setQuota('shop', { env: 'prod', cpu: 10 });
    await setQuota('shop', { cpu: 1.5, instances: 20 });
    assert.equal((await apply(spec('dev-app', { team: 'shop', env: 'dev', entries: { web: { cpu: 1 } } }))).status, 201, 'dev has no limit; the total fits: 0.25 + 1');
    const overTotal = await apply(spec('dev-app2', { team: 'shop', env: 'dev', entries: { web: { cpu: 0.5 } } }));
    assert.equal(overTotal.status, 409);
    assert.equal(overTotal.body.error, 'app dev-app2 refused: team shop (all envs): cpu 1.25 of 1.5 used, this change needs 0.5 more');
    assert.equal((await apply(spec('elsewhere', { team: 'other', env: 'dev', entries: { web: { cpu: 5 } } }))).status, 201, "another team's quota is its own");
    const moved = await apply(spec('elsewhere', { team: 'shop', env: 'dev', entries: { web: { cpu: 5 } } }));
    assert.equal(moved.status, 409);
    assert.equal(moved.body.error, 'app elsewhere refused: team shop (all envs): cpu 1.25 of 1.5 used, this change needs 5 more');
    assert.equal((await appOf('elsewhere'))?.spec.team, 'other');

    const view = (await call('GET', '/v1/teams/shop/quota', tokens.alice!)).body as unknown as QuotaView;
    assert.deepEqual(view.use.total, { cpu: 1.25, memory: 2 * 64 * MI, instances: 2 });
    assert.deepEqual(view.use.envs.dev, { cpu: 1, memory: 64 * MI, instances: 1 });
    assert.deepEqual(view.quota?.total, { cpu: 1.5, instances: 20 });
  });

  test('concurrent applies: of ten that each fit alone, only as many as the quota holds pass', async () => {
    await setQuota('other', { env: 'race', instances: 3 });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => apply(spec(`race-${i}`, { team: 'other', env: 'race' }))));
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 201, 201, 409, 409, 409, 409, 409, 409, 409]);
    const view = (await call('GET', '/v1/teams/other/quota', ADMIN)).body as unknown as QuotaView;
    assert.equal(view.use.envs.race?.instances, 3);
  });

  test('clearing: one env, the total, all of it; a removed quota limits nothing', async () => {
    assert.equal((await call('DELETE', '/v1/teams/shop/quota?total=true', ADMIN)).status, 200);
    assert.equal((await apply(spec('dev-app2', { team: 'shop', env: 'dev', entries: { web: { cpu: 0.5 } } }))).status, 201);
    assert.equal((await call('DELETE', '/v1/teams/shop/quota?total=true', ADMIN)).status, 404, 'no total any more');
    assert.equal((await call('DELETE', '/v1/teams/other/quota', ADMIN)).status, 200);
    assert.equal((await apply(spec('race-10', { team: 'other', env: 'race' }))).status, 201);
    assert.equal((await call('GET', '/v1/teams/other/quota', ADMIN)).body.quota, undefined);

    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'brief' })).status, 201);
    await setQuota('brief', { cpu: 1 });
    assert.equal((await call('DELETE', '/v1/teams/brief', ADMIN)).status, 200);
    assert.equal((await call('POST', '/v1/teams', ADMIN, { name: 'brief' })).status, 201);
    assert.equal((await call('GET', '/v1/teams/brief/quota', ADMIN)).body.quota, undefined, 'a removed team takes its quota along');
  });

  test('gantry quota: a table of use against limits, JSON, set and rm as a user runs them', async () => {
    const cli = (args: string[], token = ADMIN) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [...GANTRY, ...args], { env: { ...process.env, GANTRY_SERVER: server.url, GANTRY_TOKEN: token, GANTRY_CONFIG: join(dir, 'cli.json') } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    const set = await cli(['quota', 'set', 'shop', '--env', 'prod', '--cpu', '1', '--memory', '1Gi', '--instances', '4']);
    assert.equal(set.code, 0, set.stderr);
    const table = await cli(['quota', 'shop'], tokens.alice!);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^TEAM\s+ENV\s+RESOURCE\s+USED\s+LIMIT\s+%$/m);
    assert.match(table.stdout, /^shop\s+prod\s+cpu\s+0\.25\s+1\s+25%$/m);
    assert.match(table.stdout, /^shop\s+prod\s+memory\s+64Mi\s+1Gi\s+6%$/m);
    assert.match(table.stdout, /^shop\s+prod\s+instances\s+1\s+4\s+25%$/m);
    assert.match(table.stdout, /^shop\s+dev\s+cpu\s+1\.5\s+-\s+-$/m, 'use without a limit is shown too');
    const mine = await cli(['quota'], tokens.alice!);
    assert.equal(mine.code, 0, mine.stderr);
    assert.ok(mine.stdout.includes('shop') && !mine.stdout.includes('other'), `a member sees their teams only: ${mine.stdout}`);
    const all = await cli(['quota', '-o', 'json']);
    const views = JSON.parse(all.stdout) as QuotaView[];
    assert.deepEqual(views.map((v) => v.team), ['other', 'shop']);
    assert.equal(views.find((v) => v.team === 'shop')?.quota?.envs.prod?.memory, 1024 * MI);

    const refused = await cli(['quota', 'set', 'shop', '--cpu', '2'], tokens.alice!);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /admins set quotas/);
    const badCpu = await cli(['quota', 'set', 'shop', '--cpu', 'lots']);
    assert.notEqual(badCpu.code, 0);
    assert.match(badCpu.stderr, /--cpu/);
    const badMemory = await cli(['quota', 'set', 'shop', '--env', 'prod', '--memory', '3 bananas']);
    assert.notEqual(badMemory.code, 0);
    assert.match(badMemory.stderr, /memory/);
    const nothing = await cli(['quota', 'set', 'shop']);
    assert.notEqual(nothing.code, 0);
    assert.match(nothing.stderr, /at least one limit/);
    const rm = await cli(['quota', 'rm', 'shop', '--env', 'prod']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.doesNotMatch((await cli(['quota', 'shop'])).stdout, /prod\s+cpu\s+\S+\s+1\s/);
  });
});
