// Gantry's alerts routed by a real Alertmanager (Debian's prometheus-alertmanager 0.25), both run
// from the configurations docs/observability.md shows (examples/alert-rules.yaml and
// examples/alertmanager.yml, read here so they cannot drift): a real agent runs a process that
// holds most of its memory limit, the app's `memory` rule fires, Gantry pushes the alert to the
// Alertmanager's /api/v2/alerts, and the Alertmanager routes it by its severity (critical: the
// pager) to the webhook receiver this test runs; pushed again while it fires; fixed, the resolve
// goes the same way. An entry whose health checks fail until a file exists fires `healthy`
// (a warning: chat), and resolves once the checks pass.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, freePort, until } from './helpers/cluster.js';
import { Daemon, WebhookReceiver, replaced } from './helpers/daemons.js';
import type { Alert } from '../src/server/alerts/evaluate.js';

const ROOT = join(import.meta.dirname, '..');
const RULES_EXAMPLE = readFileSync(join(ROOT, 'examples', 'alert-rules.yaml'), 'utf8');
const ALERTMANAGER_EXAMPLE = readFileSync(join(ROOT, 'examples', 'alertmanager.yml'), 'utf8');
const MiB = 1024 * 1024;

/** What Alertmanager's API says of an alert it holds. */
interface HeldAlert { labels: Record<string, string>; startsAt: string; endsAt: string; updatedAt: string; status: { state: string } }

describe('an Alertmanager routes the alerts Gantry pushes to it', () => {
  const cluster = new TestCluster();
  const app = `hog-${cluster.id}`;
  const node = `am-${cluster.id}`;
  const receiver = new WebhookReceiver();
  let alertmanager: Daemon | undefined;
  let amUrl = '';
  const gateOpen = join(cluster.dir, 'gate-open');
  // Fires above 50% of the 128 MiB limit: node holding 80 MiB does (its cgroup counts ~6 MiB more), node alone does not.
  // The gate's instances stay `starting` (not healthy) until the file exists.
  const spec = (command: string) => `app: ${app}
alerts:
  - memory: { above: 50%, for: 2s }
    entry: hog
    severity: critical
  - healthy: { below: 50%, for: 1s }
    entry: gate
entrypoints:
  hog:
    command: [node, -e, '${command}']
    resources: { cpu: 0.2, memory: 128Mi }
  gate:
    command: [sleep, '100000']
    replicas: 2
    resources: { cpu: 0.05, memory: 16Mi }
    health: { exec: { command: [test, -e, '${gateOpen}'] }, interval: 1s, retries: 100 }
`;
  const apply = async (command: string) => {
    const applied = await cluster.cli(['apply', '-f', '-', '--timeout', '60s', '--no-wait'], { input: spec(command) });
    assert.equal(applied.code, 0, applied.stderr + applied.stdout);
  };
  /** What the Alertmanager delivered to the test's receivers about this app's rule (both receivers' URLs are the test's). */
  const delivered = (rule: string, status: string) => receiver.received.filter((r) => r.path === '/alertmanager' && r.body.status === status && r.body.alerts.some((a: { labels: Record<string, string> }) => a.labels.app === app && a.labels.alertname === rule));
  const firstDelivered = async (rule: string, status: 'firing' | 'resolved') => (await until(`the Alertmanager to deliver the ${status} ${rule} alert`, () => delivered(rule, status)[0], 90_000)).body;
  const held = async (): Promise<HeldAlert[]> => {
    const answer = await fetch(`${amUrl}/api/v2/alerts?filter=${encodeURIComponent(`app="${app}"`)}&filter=alertname%3D%22memory%22`, { signal: AbortSignal.timeout(5000) });
    assert.equal(answer.status, 200);
    return (await answer.json()) as HeldAlert[];
  };

  before(async () => {
    await receiver.start();
    const dir = join(cluster.dir, 'alertmanager');
    mkdirSync(join(dir, 'data'), { recursive: true });
    let config = replaced(ALERTMANAGER_EXAMPLE, 'group_wait: 30s', 'group_wait: 1s', 1, 'examples/alertmanager.yml');
    config = replaced(config, 'group_interval: 5m', 'group_interval: 1s', 1, 'examples/alertmanager.yml');
    config = replaced(config, 'http://chat.example.com', receiver.url, 1, 'examples/alertmanager.yml');
    config = replaced(config, 'http://pager.example.com', receiver.url, 1, 'examples/alertmanager.yml');
    writeFileSync(join(dir, 'alertmanager.yml'), config);
    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    // Loopback only, and no gossip: --cluster.listen-address="" turns the cluster port off.
    alertmanager = new Daemon('alertmanager', 'prometheus-alertmanager', [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='], cluster.output);
    await until('alertmanager to be ready', async () => (await fetch(`${amUrl}/-/ready`).catch(() => undefined))?.ok, 30_000);

    let rules = replaced(RULES_EXAMPLE, 'http://alertmanager:9093', amUrl, 1, 'examples/alert-rules.yaml');
    rules = replaced(rules, 'resendEvery: 1m', 'resendEvery: 2s', 1, 'examples/alert-rules.yaml');
    // Another name of this server than the address it listens on (http://127.0.0.1:port): the links must take it.
    cluster.port = await freePort();
    rules = replaced(rules, 'https://gantry.example.com', `http://localhost:${cluster.port}`, 1, 'examples/alert-rules.yaml');
    writeFileSync(join(cluster.dir, 'alert-rules.yaml'), rules);
    await cluster.startServer({ extra: ['--alert-rules', join(cluster.dir, 'alert-rules.yaml')] });
    await cluster.startAgent({ name: node, portRange: '33200-33209', dockerSocket: join(cluster.dir, 'none.sock'), extra: ['--sample-interval', '1s'] });
  });

  after(async () => {
    await cluster.cli(['rm', app, '--timeout', '60s']);
    await cluster.close();
    await alertmanager?.stop();
    receiver.close();
  });

  test('the docs show exactly the configurations this test runs', () => {
    const docs = readFileSync(join(ROOT, 'docs', 'observability.md'), 'utf8');
    assert.ok(docs.includes(RULES_EXAMPLE), 'docs/observability.md must show examples/alert-rules.yaml as it is');
    assert.ok(docs.includes(ALERTMANAGER_EXAMPLE), 'docs/observability.md must show examples/alertmanager.yml as it is');
  });

  test("an instance above its memory share fires; the Alertmanager routes it by severity with Gantry's labels", async () => {
    await apply('globalThis.held = Buffer.alloc(80 * 1024 * 1024, 1); setInterval(() => {}, 1e6)');
    const body = await firstDelivered('memory', 'firing');
    assert.equal(body.receiver, 'pager', 'critical alerts page');
    assert.equal(body.alerts.length, 1);
    const alert = body.alerts[0];
    assert.deepEqual(alert.labels, { alertname: 'memory', severity: 'critical', app, env: 'default', entry: 'hog', team: 'default' });
    assert.match(alert.annotations.summary, new RegExp(`^${app}/hog: an instance uses [\\d.]+% of the memory limit \\(above 50%\\)$`));
    assert.ok(alert.annotations.description.includes(`gantry alerts --app ${app}`), alert.annotations.description);
    assert.equal(alert.generatorURL, `http://localhost:${cluster.port}/v1/alerts?app=${app}`);
    assert.ok(Date.now() - Date.parse(alert.startsAt) < 90_000, alert.startsAt);
    const share = Number(/([\d.]+)%/.exec(alert.annotations.value)![1]);
    assert.ok(share > 50 && share < 100, `memory share ${share}%`);
    const usage = (await cluster.api('GET', `/v1/usage?app=${app}&history=false`)) as { instances: { entry: string; latest: { memoryBytes: number } | null }[] };
    assert.ok(usage.instances.find((i) => i.entry === 'hog')!.latest!.memoryBytes > 80 * MiB, 'the process holds what it allocated');
    assert.ok(receiver.received.every((r) => r.body.receiver === 'pager' || !r.body.alerts.some((a: { labels: Record<string, string> }) => a.labels.alertname === 'memory')), 'not sent to chat too');
  });

  test('a firing alert is pushed again, its end moving ahead, and delivered once', async () => {
    const [first] = await held();
    assert.equal(first?.status.state, 'active');
    const again = await until('Gantry to push the alert again', async () => {
      const [now] = await held();
      return now && now.updatedAt !== first!.updatedAt ? now : undefined;
    }, 20_000);
    assert.ok(Date.parse(again.endsAt) > Date.parse(first!.endsAt), 'endsAt moves ahead with each push');
    // resendEvery 2s: valid for 4 pushes ahead.
    const validFor = Date.parse(again.endsAt) - Date.parse(again.updatedAt);
    assert.ok(validFor > 5000 && validFor <= 8100, `endsAt ${validFor} ms after the push`);
    assert.equal(again.startsAt, first!.startsAt, 'the same alert, not a new one');
    assert.equal(delivered('memory', 'firing').length, 1, 'pushes are not new notifications');
  });

  test('fixed, the resolve reaches the Alertmanager and its receiver', async () => {
    await apply('setInterval(() => {}, 1e6)');
    const body = await firstDelivered('memory', 'resolved');
    const alert = body.alerts[0];
    assert.equal(body.receiver, 'pager');
    assert.equal(alert.status, 'resolved');
    assert.ok(Date.parse(alert.endsAt) >= Date.parse(alert.startsAt) && Date.parse(alert.endsAt) <= Date.now(), `ends ${alert.endsAt}`);
    const { alerts } = (await cluster.api('GET', `/v1/alerts?app=${app}`)) as { alerts: Alert[] };
    assert.equal(alerts.find((a) => a.rule === 'memory')?.state, 'resolved');
  });

  test('an entry below its healthy share fires a warning, which goes to chat; healthy again, it resolves', async () => {
    const firing = await firstDelivered('healthy', 'firing');
    assert.equal(firing.receiver, 'chat');
    assert.deepEqual(firing.alerts[0].labels, { alertname: 'healthy', severity: 'warning', app, env: 'default', entry: 'gate', team: 'default' });
    assert.equal(firing.alerts[0].annotations.summary, `${app}/gate: 0/2 healthy (0%), below 50%`);
    writeFileSync(gateOpen, '');
    const resolved = await firstDelivered('healthy', 'resolved');
    assert.equal(resolved.receiver, 'chat');
    assert.equal(resolved.alerts[0].status, 'resolved');
    const { alerts } = (await cluster.api('GET', `/v1/alerts?app=${app}`)) as { alerts: Alert[] };
    assert.equal(alerts.find((a) => a.rule === 'healthy')?.state, 'resolved');
  });
});
