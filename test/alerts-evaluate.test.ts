// The alert evaluator without I/O: conditions over time in, states and notifications out, with an
// injected clock. Then the counter history behind "restarts > 3 in 10m", the rule schemas, and the
// notifier against a real HTTP receiver (a plain node:http server) that refuses before it takes,
// for webhooks and for pushes to an Alertmanager's API.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { evaluate, type Alert, type Condition, type Silence } from '../src/server/alerts/evaluate.js';
import { CounterHistory } from '../src/server/alerts/history.js';
import { observe, type Observations } from '../src/server/alerts/observe.js';
import { Notifier } from '../src/server/alerts/notifier.js';
import { AppAlertRule, AlertRulesFile } from '../src/model/spec-alerts.js';
import { parseAppSpec } from '../src/model/spec.js';
import { EventLog } from '../src/server/services/events.js';
import { openStore } from '../src/store/index.js';
import { parseAlertRules } from '../src/server/alerts/rules-file.js';

const cond = (active: boolean, over: Partial<Condition> = {}): Condition => ({
  key: 'healthy/app=web,entry=api', rule: 'healthy', severity: 'warning', labels: { app: 'web', entry: 'api', team: 't' },
  forMs: 60_000, notify: ['hook'], active, value: active ? '0/2 healthy' : '2/2 healthy', summary: 'web/api', ...over,
});

function run(steps: [number, Condition[]][], silences: Silence[] = []) {
  let alerts = new Map<string, Alert>();
  const sent: { at: number; status: string; key: string }[] = [];
  const states: (string | undefined)[] = [];
  for (const [at, conditions] of steps) {
    const out = evaluate(conditions, alerts, silences, at);
    alerts = out.alerts;
    for (const n of out.notifications) sent.push({ at, status: n.status, key: n.alert.key });
    states.push(alerts.get('healthy/app=web,entry=api')?.state);
  }
  return { alerts, sent, states };
}

describe('alert evaluator', () => {
  test('pending until `for` has passed, then firing once, then resolved once', () => {
    const { sent, states } = run([[0, [cond(true)]], [30_000, [cond(true)]], [60_000, [cond(true)]], [65_000, [cond(true)]], [70_000, [cond(false)]], [75_000, [cond(false)]]]);
    assert.deepEqual(states, ['pending', 'pending', 'firing', 'firing', 'resolved', 'resolved']);
    assert.deepEqual(sent, [{ at: 60_000, status: 'firing', key: 'healthy/app=web,entry=api' }, { at: 70_000, status: 'resolved', key: 'healthy/app=web,entry=api' }]);
  });

  test('a condition that stops while pending sends nothing and leaves no alert', () => {
    const { sent, states } = run([[0, [cond(true)]], [30_000, [cond(false)]], [90_000, [cond(false)]]]);
    assert.deepEqual(states, ['pending', undefined, undefined]);
    assert.deepEqual(sent, []);
  });

  test('the same rule and subject twice is one alert, one notification', () => {
    const { alerts, sent } = run([[0, [cond(true, { forMs: 0 }), cond(true, { forMs: 0 })]]]);
    assert.equal(alerts.size, 1);
    assert.equal(sent.length, 1);
  });

  test('a silenced alert changes state but sends nothing, and is told once the silence ends', () => {
    const silence: Silence = { id: 's1', matchers: { app: 'web', rule: 'healthy' }, endsAt: 100_000, createdBy: 'ann' };
    const { sent, states } = run([[0, [cond(true, { forMs: 0 })]], [50_000, [cond(true, { forMs: 0 })]], [100_000, [cond(true, { forMs: 0 })]]], [silence]);
    assert.deepEqual(states, ['firing', 'firing', 'firing']);
    assert.deepEqual(sent, [{ at: 100_000, status: 'firing', key: 'healthy/app=web,entry=api' }]);
  });

  test('a silence matching another app silences nothing here; a resolved alert whose firing was silenced sends nothing', () => {
    const other: Silence = { id: 's2', matchers: { app: 'db' }, endsAt: 1e12, createdBy: 'ann' };
    assert.equal(run([[0, [cond(true, { forMs: 0 })]]], [other]).sent.length, 1);
    const mine: Silence = { id: 's3', matchers: { app: 'web' }, endsAt: 1e12, createdBy: 'ann' };
    assert.deepEqual(run([[0, [cond(true, { forMs: 0 })]], [10, [cond(false)]]], [mine]).sent, []);
  });

  test('an alert whose subject disappears resolves; a firing alert from before a restart is not sent again', () => {
    const first = run([[0, [cond(true, { forMs: 0 })]]]);
    const again = evaluate([cond(true, { forMs: 0 })], first.alerts, [], 5_000);
    assert.deepEqual(again.notifications, []);
    const gone = evaluate([], first.alerts, [], 10_000);
    assert.equal(gone.alerts.get('healthy/app=web,entry=api')?.state, 'resolved');
    assert.deepEqual(gone.notifications.map((n) => n.status), ['resolved']);
  });
});

describe('restart counts and rules', () => {
  test('increase within a window, across a counter reset', () => {
    const h = new CounterHistory();
    h.record('i1', 0, 0);
    h.record('i1', 2, 60_000);
    h.record('i1', 5, 120_000);
    h.record('i1', 1, 180_000); // reset: a new process counts from 0
    assert.equal(h.increase('i1', 600_000, 180_000), 6);
    assert.equal(h.increase('i1', 90_000, 180_000), 4);
    assert.equal(h.increase('i1', 10_000, 700_000), 0);
    assert.equal(h.increase('nobody', 600_000, 0), 0);
  });

  test('restarts > 3 in 10m over an app observation fires at once', () => {
    const restarts = new CounterHistory();
    restarts.record('a1', 0, 0);
    restarts.record('a1', 4, 50_000);
    const rule = AppAlertRule.parse({ restarts: { over: 3, within: '10m' }, notify: ['hook'] });
    const o: Observations = {
      apps: [{ app: 'web', env: 'prod', team: 't', rules: [rule], entries: { api: 1 }, instances: [{ id: 'a1', entry: 'api', node: 'n', healthy: true, createdAt: -1_000_000 }] }],
      nodes: [], clusterRules: [], serverVersion: '1', restarts, oomKills: new CounterHistory(), defaultNotify: [], historySince: 0, now: 60_000,
    };
    const [c] = observe(o);
    assert.equal(c?.active, true);
    assert.equal(c?.value, '4 restarts in 10m');
    const fired = evaluate(observe(o), new Map(), [], 60_000);
    assert.equal(fired.notifications[0]?.status, 'firing');
    // A restarted server knows restarts only since it started: below the threshold over a window
    // it has not watched whole, a firing alert stays firing (no resolved, no second firing).
    const fresh = new CounterHistory();
    fresh.record('a1', 4, 100_000);
    const after = observe({ ...o, restarts: fresh, historySince: 100_000, now: 105_000 });
    assert.equal(after[0]?.unknown, true);
    const kept = evaluate(after, fired.alerts, [], 105_000);
    assert.equal(kept.alerts.get(after[0]!.key)?.state, 'firing');
    assert.deepEqual(kept.notifications, []);
    // An instance started inside the window counts its restarts from 0, not from its first sample.
    assert.equal(fresh.increase('a1', 600_000, 105_000, 90_000), 4);
    // A new instance (the fixed release) started after the server is known whole: resolved.
    const fixed = observe({ ...o, apps: [{ ...o.apps[0]!, instances: [{ id: 'b1', entry: 'api', node: 'n', healthy: true, createdAt: 101_000 }] }], restarts: fresh, historySince: 100_000, now: 105_000 });
    assert.equal(fixed[0]?.unknown, undefined);
    assert.deepEqual(evaluate(fixed, fired.alerts, [], 105_000).notifications.map((n) => n.status), ['resolved']);
  });

  test('healthy, memory and the cluster rules observe what they should', () => {
    const rules = [AppAlertRule.parse({ healthy: { below: '50%' } }), AppAlertRule.parse({ memory: { above: '90%', for: '5m' }, entry: 'api' })];
    const cluster = parseAlertRules('{}', 'defaults').rules;
    const o: Observations = {
      apps: [{ app: 'web', env: 'prod', team: 't', rules, entries: { api: 4 }, instances: [
        { id: 'a1', entry: 'api', node: 'n1', healthy: true, createdAt: 0, memoryBytes: 95, memoryLimitBytes: 100 },
        { id: 'a2', entry: 'api', node: 'n1', healthy: false, createdAt: 0, memoryBytes: 10, memoryLimitBytes: null },
      ] }],
      nodes: [
        { name: 'n1', down: false, agentVersion: '1', checks: { clockOffset: { status: 'fail', value: '3s' }, 'disk:/var/lib/docker': { status: 'warn', value: '85%' } } },
        { name: 'n2', down: true, agentVersion: '0.9', checks: {} },
      ],
      clusterRules: cluster, serverVersion: '1', restarts: new CounterHistory(), oomKills: new CounterHistory(), defaultNotify: ['ops'], historySince: 0, now: 0,
    };
    const active = Object.fromEntries(observe(o).map((c) => [c.key, { active: c.active, forMs: c.forMs, value: c.value, notify: c.notify }]));
    assert.deepEqual(active['healthy/app=web,entry=api'], { active: true, forMs: 60_000, value: '1/4 healthy (25%)', notify: ['ops'] });
    assert.deepEqual(active['memory/app=web,entry=api'], { active: true, forMs: 300_000, value: '95% of the memory limit', notify: ['ops'] });
    assert.equal(active['nodeDown/node=n2']?.active, true);
    assert.equal(active['nodeDown/node=n2']?.forMs, 60_000);
    assert.equal(active['nodeDown/node=n1']?.active, false);
    assert.equal(active['clock-skew/node=n1']?.active, true);
    assert.equal(active['disk/node=n1']?.active, false, 'a warning is not a failure');
    assert.equal(active['agentVersion/node=n2']?.active, false, 'a down node says nothing of its version');
    assert.equal(active['agentVersion/node=n1']?.active, false);
  });

  test('bad rules are refused naming the field', () => {
    const bad = parseSpecIssues({ app: 'web', alerts: [{ restarts: { over: 3, within: 'soon' } }, { memory: { above: '150%' } }, { healthy: { below: '50%' }, memory: { above: 1 } }], entrypoints: { api: { command: ['true'] } } });
    assert.match(bad, /alerts\[0\]/);
    assert.match(bad, /alerts\[1\]/);
    assert.match(bad, /alerts\[0\]\.restarts\.within: expected a duration/);
    assert.match(bad, /alerts\[1\]\.memory\.above: at most 100%/);
    assert.match(bad, /alerts\[2\]: exactly one of/);
    assert.match(parseSpecIssues({ app: 'web', alerts: [{ oomKilled: {}, entry: 'nope' }], entrypoints: { api: { command: ['true'] } } }), /alerts\[0\]\.entry: no entrypoint named "nope"/);
    assert.throws(() => AlertRulesFile.parse({ receivers: { hook: { url: 'http://user:pw@example.com/' } } }), /no credentials in the URL/);
  });
});

function parseSpecIssues(spec: unknown): string {
  try {
    parseAppSpec(spec);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

describe('notifier', () => {
  test('retries a receiver that refuses, then delivers both formats', async () => {
    const bodies: { path: string; body: any }[] = [];
    let refusals = 2;
    const receiver = createServer((req: IncomingMessage, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        if (refusals-- > 0) return void res.writeHead(503).end();
        bodies.push({ path: req.url!, body: JSON.parse(text) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    const store = openStore('sqlite::memory:');
    const events = new EventLog(store);
    const receivers = AlertRulesFile.parse({ receivers: { plain: { url: `http://127.0.0.1:${port}/plain` }, am: { url: `http://127.0.0.1:${port}/am`, format: 'alertmanager' } } }).receivers;
    const notifier = new Notifier(new Map(Object.entries(receivers)), events, { initialDelayMs: 20 });
    try {
      const { notifications } = evaluate([cond(true, { forMs: 0, notify: ['plain', 'am'] })], new Map(), [], Date.now());
      notifier.send(notifications);
      // Sent counts once the receiver has answered, after it has the body.
      while (bodies.length < 2 || notifier.counts.sent < 2) await new Promise((r) => setTimeout(r, 20));
      const plain = bodies.find((b) => b.path === '/plain')!.body;
      assert.equal(plain.status, 'firing');
      assert.equal(plain.alert, 'healthy');
      const am = bodies.find((b) => b.path === '/am')!.body;
      assert.equal(am.version, '4');
      assert.equal(am.status, 'firing');
      assert.equal(am.alerts[0].labels.alertname, 'healthy');
      assert.equal(am.alerts[0].endsAt, '0001-01-01T00:00:00Z');
      assert.equal(notifier.counts.sent, 2);
    } finally {
      notifier.close();
      receiver.close();
      await store.close();
    }
  });

  test('a receiver that never answers is given up with an event, and evaluation never waits for it', async () => {
    const store = openStore('sqlite::memory:');
    const events = new EventLog(store);
    const receivers = AlertRulesFile.parse({ receivers: { dead: { url: 'http://127.0.0.1:9/' } } }).receivers;
    const notifier = new Notifier(new Map(Object.entries(receivers)), events, { initialDelayMs: 10, giveUpAfterMs: 100 });
    try {
      notifier.send(evaluate([cond(true, { forMs: 0, notify: ['dead'] })], new Map(), [], Date.now()).notifications);
      assert.equal(notifier.waiting, 1);
      while (notifier.counts.failed === 0) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50));
      const failed = (await events.list({})).filter((e) => e.type === 'alert.notify_failed');
      assert.equal(failed.length, 1);
      assert.match(failed[0]!.message, /given up/);
    } finally {
      notifier.close();
      await store.close();
    }
  });
});

describe('pushing to an Alertmanager (format alertmanager-api)', () => {
  test('the newest state replaces one waiting, and a firing alert is pushed again every resendEvery', async () => {
    const bodies: { path: string; body: any; at: number }[] = [];
    let refused = 0;
    const receiver = createServer((req: IncomingMessage, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        if (refused++ === 0) return void res.writeHead(503).end();
        bodies.push({ path: req.url!, body: JSON.parse(text), at: Date.now() });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    const store = openStore('sqlite::memory:');
    const receivers = AlertRulesFile.parse({ receivers: { am: { url: `http://127.0.0.1:${port}/am/`, format: 'alertmanager-api', resendEvery: '1s' } } }).receivers;
    const notifier = new Notifier(new Map(Object.entries(receivers)), new EventLog(store), { initialDelayMs: 300, externalUrl: 'http://gantry:7070' });
    const waitFor = async (probe: () => boolean) => {
      while (!probe()) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      const t0 = Date.now();
      const fired = evaluate([cond(true, { forMs: 0, notify: ['am'] })], new Map(), [], t0);
      notifier.send(fired.notifications);
      await waitFor(() => refused === 1);
      await new Promise((r) => setTimeout(r, 20));
      // Resolved while the refused firing push waits for its retry: only the resolve goes.
      notifier.send(evaluate([cond(false, { notify: ['am'] })], fired.alerts, [], t0 + 100).notifications);
      await waitFor(() => notifier.counts.sent === 1);
      assert.equal(bodies.length, 1);
      assert.equal(bodies[0]!.path, '/am/api/v2/alerts');
      assert.deepEqual(bodies[0]!.body, [{
        labels: { alertname: 'healthy', severity: 'warning', app: 'web', entry: 'api', team: 't' },
        annotations: { summary: 'web/api', description: `Gantry rule healthy (warning), firing since ${new Date(t0).toISOString()}: web/api. \`gantry alerts --app web\` lists it; \`gantry events\` says what happened.`, value: '2/2 healthy' },
        startsAt: new Date(t0).toISOString(),
        endsAt: new Date(t0 + 100).toISOString(),
        generatorURL: 'http://gantry:7070/v1/alerts?app=web',
      }]);
      await new Promise((r) => setTimeout(r, 400)); // past the refused push's retry: it is not sent after the resolve
      assert.equal(bodies.length, 1);
      assert.equal(notifier.waiting, 0);

      const t1 = Date.now();
      const again = evaluate([cond(true, { forMs: 0, notify: ['am'] })], new Map(), [], t1);
      notifier.send(again.notifications);
      const firing = [...again.alerts.values()];
      notifier.resend(firing, t1 + 500);
      await waitFor(() => notifier.counts.sent === 2);
      notifier.resend(firing, t1 + 999);
      notifier.resend(firing, t1 + 1000);
      await waitFor(() => notifier.counts.sent === 3);
      for (const push of bodies.slice(1)) {
        const validFor = Date.parse(push.body[0].endsAt) - push.at;
        assert.ok(validFor > 2500 && validFor <= 4000, `endsAt ${validFor} ms ahead: 4 × resendEvery`);
      }
      // Left out of resend (resolved, silenced, gone): pushed no more.
      notifier.resend([], t1 + 1500);
      notifier.resend(firing.map((a) => ({ ...a, notify: [] })), t1 + 5000);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(notifier.counts.sent, 3);
      assert.equal(notifier.waiting, 0);
    } finally {
      notifier.close();
      receiver.close();
      await store.close();
    }
  });
});

describe('alert rules file', () => {
  test('the default cluster rules without a file; a bad file names each field and its line', () => {
    const defaults = parseAlertRules('{}', 'empty.yaml');
    assert.deepEqual(defaults.rules.map((r) => r.name ?? Object.keys(r).find((k) => ['nodeDown', 'check', 'agentVersion'].includes(k))), ['nodeDown', 'disk', 'clock-skew', 'agentVersion']);
    const bad = [
      'receivers:',
      '  hook: { url: "ftp://example.com/", format: slack }',
      'rules:',
      '  - nodeDown: { for: soon }',
      '  - diskFull: {}',
      'bogus: 1',
    ].join('\n');
    let message = '';
    try {
      parseAlertRules(bad, 'bad.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    assert.match(message, /receivers\.hook\.url \(line 2\): expected an http\(s\) URL/);
    assert.match(message, /receivers\.hook\.format \(line 2\)/);
    assert.match(message, /rules\[0\]\.nodeDown\.for \(line 4\): expected a duration/);
    assert.match(message, /rules\[1\]\.diskFull \(line 5\): unknown field/);
    assert.match(message, /bogus \(line 6\): unknown field/);
    assert.throws(() => parseAlertRules('rules:\n  - nodeDown: {}\n    notify: [nobody]\n', 'x.yaml'), /rules\[0\]\.notify: no receiver named "nobody"/);
    assert.throws(() => parseAlertRules('receivers:\n  hook: { url: "http://x.example/", resendEvery: 1m }\n', 'r.yaml'), /receivers\.hook\.resendEvery \(line 2\): only for format: alertmanager-api/);
    assert.throws(() => parseAlertRules('receivers:\n  am: { url: "http://am:9093", format: alertmanager-api, resendEvery: 10ms }\n', 'r.yaml'), /receivers\.am\.resendEvery \(line 2\): at least 1s/);
    assert.equal(parseAlertRules('externalUrl: https://gantry.example.com/\n', 'r.yaml').externalUrl, 'https://gantry.example.com');
    assert.throws(() => parseAlertRules('externalUrl: gantry.example.com\n', 'r.yaml'), /externalUrl \(line 1\): expected an http\(s\) URL/);
  });
});
