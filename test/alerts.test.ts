// Alerts end to end: a real server with an alert rules file naming two webhook receivers (a
// plain node:http server this test runs, taking Gantry's JSON and Alertmanager's format), a
// real agent running a process that exits every second: `restarts > 3 in 10m` fires and both
// receivers get it; fixed, both get the resolved notice; silenced and broken again, it fires
// and nobody is told. A restarted server does not tell again. A member of another team sees no alert of the app and may not silence it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, freePort, until } from './helpers/cluster.js';
import { jsonCaller, signedInUsers } from './helpers/api.js';
import { WebhookReceiver } from './helpers/daemons.js';
import type { Alert } from '../src/server/alerts/evaluate.js';

const PASSWORD = 'alerts test password';

describe('alerts: restarts fire, resolve and can be silenced', () => {
  const cluster = new TestCluster();
  const app = `crash-${cluster.id}`;
  const node = `alerts-${cluster.id}`;
  const call = jsonCaller(() => cluster.url);
  const receiver = new WebhookReceiver();
  const { received } = receiver;
  let people: Record<string, string> = {};
  const spec = (command: string) => `app: ${app}
team: crashers
alerts:
  - restarts: { over: 3, within: 10m }
    severity: critical
    notify: [plain, am]
entrypoints:
  worker:
    command: [sh, -c, '${command}']
    restart: { policy: always, backoff: { initial: 200ms, max: 500ms } }
`;
  const apply = async (command: string) => {
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s', '--no-wait'], { input: spec(command) });
    assert.equal(applied.code, 0, applied.stderr + applied.stdout);
  };
  const alertsOf = async (token: string) => {
    const answer = await call('GET', `/v1/alerts?app=${app}`, token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return (answer.body as unknown as { alerts: Alert[] }).alerts;
  };
  const got = (path: string, status: string) => received.filter((r) => r.path === path && (r.body.status === status));

  before(async () => {
    const { port } = await receiver.start();
    const rules = join(cluster.dir, 'alert-rules.yaml');
    writeFileSync(rules, `receivers:
  plain: { url: "http://127.0.0.1:${port}/plain" }
  am: { url: "http://127.0.0.1:${port}/am", format: alertmanager, headers: { X-Token: test } }
`);
    await cluster.startServer({ extra: ['--alert-rules', rules, '--alert-interval', '1s'] });
    await cluster.startAgent({ name: node, portRange: '33000-33009', dockerSocket: join(cluster.dir, 'none.sock') });
    people = await signedInUsers(call, cluster.token, ['alice', 'bob'], PASSWORD);
    assert.equal((await call('POST', '/v1/teams', cluster.token, { name: 'crashers', owner: 'alice' })).status, 201);
    assert.equal((await call('POST', '/v1/teams', cluster.token, { name: 'others', owner: 'bob' })).status, 201);
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    receiver.close();
  });

  test('a process that keeps exiting fires the restarts alert to both receivers', async () => {
    await apply('sleep 0.3; exit 1');
    await until('both receivers to get the firing alert', () => got('/plain', 'firing').length > 0 && got('/am', 'firing').length > 0, 60_000);
    const plain = got('/plain', 'firing')[0]!.body;
    assert.equal(plain.alert, 'restarts');
    assert.equal(plain.severity, 'critical');
    assert.equal(plain.labels.app, app);
    assert.match(plain.value, /^\d+ restarts in 10m$/);
    const am = got('/am', 'firing')[0]!.body;
    assert.equal(am.version, '4');
    assert.equal(am.receiver, 'am');
    assert.equal(typeof am.groupKey, 'string');
    assert.equal(am.alerts.length, 1);
    assert.deepEqual(am.alerts[0].labels, { alertname: 'restarts', severity: 'critical', app, env: 'default', entry: 'worker', team: 'crashers' });
    assert.equal(am.alerts[0].endsAt, '0001-01-01T00:00:00Z');
    assert.ok(!Number.isNaN(Date.parse(am.alerts[0].startsAt)));
    const listed = await cluster.cli(['alerts', '--app', app], { env: { GANTRY_TOKEN: people.alice! } });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`firing\\s+restarts\\s+critical\\s+app/${app}/worker`));
    const events = (await cluster.api('GET', `/v1/events?app=${app}&limit=200`)) as { events: { type: string }[] };
    assert.ok(events.events.some((e) => e.type === 'alert.firing'));
  });

  test('a restarted server neither sends the firing alert again nor resolves it', async () => {
    const sent = received.length;
    await cluster.stopServer();
    await cluster.startServer();
    // Two evaluations (every second: --alert-interval 1s, kept by the restart) after the start,
    // the alert read back from the store is still firing.
    await until('two evaluations after the restart', async () => {
      const events = (await cluster.api('GET', `/v1/events?limit=50`)) as { events: { type: string; time: number }[] };
      return events.events.length > 0;
    });
    await new Promise((r) => setTimeout(r, 2_500));
    const [alert] = await alertsOf(people.alice!);
    assert.equal(alert?.state, 'firing');
    assert.equal(received.length, sent, 'nothing sent again');
  });

  test('gantry server refuses an --alert-interval outside 1s to 5m, naming the flag', async () => {
    const port = String(await freePort());
    const refused = await Promise.all(['500ms', '10m', 'often'].map((interval) => cluster.cli(['server', '--data-dir', join(cluster.dir, 'never'), '--port', port, '--alert-interval', interval], { timeoutMs: 30_000 })));
    for (const [i, interval] of ['500ms', '10m', 'often'].entries()) {
      assert.notEqual(refused[i]!.code, 0, refused[i]!.stdout);
      assert.match(refused[i]!.stderr, new RegExp(`--alert-interval ${interval}: expected a duration from 1s to 5m`));
    }
  });

  test("another team's member sees no alert of the app and may not silence it", async () => {
    assert.deepEqual(await alertsOf(people.bob!), []);
    assert.deepEqual((await call('GET', '/v1/alerts', people.bob!)).body, { alerts: [] });
    const refused = await call('POST', '/v1/alert-silences', people.bob!, { matchers: { app }, for: '1h' });
    assert.equal(refused.status, 403);
    const cluster_ = await call('POST', '/v1/alert-silences', people.alice!, { matchers: { rule: 'node-down' }, for: '1h' });
    assert.equal(cluster_.status, 403, 'a silence naming no app is for operators');
    const bad = await call('POST', '/v1/alert-silences', people.alice!, { matchers: { app }, for: 'forever' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /for/);
  });

  test('fixed, the alert resolves and both receivers are told once', async () => {
    await apply('sleep 100000');
    await until('both receivers to get the resolved alert', () => got('/plain', 'resolved').length > 0 && got('/am', 'resolved').length > 0, 90_000);
    const am = got('/am', 'resolved')[0]!.body;
    assert.equal(am.alerts[0].status, 'resolved');
    assert.notEqual(am.alerts[0].endsAt, '0001-01-01T00:00:00Z');
    const [alert] = await alertsOf(people.alice!);
    assert.equal(alert?.state, 'resolved');
    assert.equal(got('/plain', 'firing').length, 1, 'fired once, not once per evaluation');
  });

  test('silenced, a new firing changes state and sends nothing', async () => {
    const silenced = await cluster.cli(['alert', 'silence', `app=${app}`, 'rule=restarts', '--for', '2h', '--comment', 'known crash loop'], { env: { GANTRY_TOKEN: people.alice! } });
    assert.equal(silenced.code, 0, silenced.stderr);
    const id = /silence ([0-9a-f]{8})/.exec(silenced.stdout)?.[1];
    assert.ok(id, silenced.stdout);
    const before = received.length;
    await apply('sleep 0.3; exit 1');
    const firing = await until('the alert to fire silenced', async () => (await alertsOf(people.alice!)).find((a) => a.state === 'firing' && a.silencedBy === id), 60_000);
    assert.equal(firing.notified, false);
    assert.equal(received.length, before, 'nothing sent while silenced');
    const listed = await cluster.cli(['alert', 'silences'], { env: { GANTRY_TOKEN: people.bob! } });
    assert.equal(listed.stdout.trim(), 'no silences');
    const removed = await cluster.cli(['alert', 'unsilence', id], { env: { GANTRY_TOKEN: people.alice! } });
    assert.equal(removed.code, 0, removed.stderr);
    // Once the silence is gone the firing alert is told.
    await until('the firing alert to be sent after the silence ends', () => got('/plain', 'firing').length === 2, 30_000);
  });
});
