// The web console in a real browser: Debian's Chromium driven by playwright-core (never a
// downloaded browser) against a real server and a real agent (process runtime). One browser and
// one cluster for the whole file. Each page's screenshot lands in test-output/console/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { freePort, TestCluster, until } from './helpers/cluster.js';
import { jsonCaller } from './helpers/api.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '..');
const SHOTS = join(ROOT, 'test-output', 'console');
const PASSWORD = 'console test password 1';
const APP = 'shop-web';

// A process that prints a numbered line every 300ms: the log tail has new lines to receive.
const spec = (replicas: number | string, note: string) => `app: ${APP}
team: shop
entrypoints:
  web:
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo \\"tick $i ${note}\\"; sleep 0.3; done"]
    replicas: ${replicas}
    resources: { cpu: 0.05, memory: 32Mi }
    update: { strategy: rolling, maxSurge: 1, maxUnavailable: 0, minHealthy: 2s }
    stop: { grace: 1s }
  pinned:
    command: ["sleep", "3600"]
    replicas: 1
    resources: { cpu: 0.5, memory: 16Mi, cpuBind: true }
    stop: { grace: 1s }
`;

// Like the Docker tests: skipped without the browser, except under CI=true, where that is a failure.
const skip = existsSync(CHROMIUM) || process.env.CI === 'true' ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

describe('web console in Chromium', { skip }, () => {
  const cluster = new TestCluster();
  const profile = mkdtempSync(join(tmpdir(), 'gantry-chromium-'));
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const call = jsonCaller(() => cluster.url);
  const admin = () => cluster.token;

  const shot = async (name: string) => {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
  const tab = (name: string) => page.getByRole('navigation', { name: 'App sections' }).getByRole('link', { name, exact: true }).click();
  const signIn = async (user: string) => {
    await page.goto(`${cluster.url}/`);
    await page.getByLabel('User').fill(user);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  };
  const signOut = async () => {
    const [answer] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/v1/logout')), page.getByRole('button', { name: 'Sign out' }).click()]);
    assert.equal(answer.status(), 200, await answer.text());
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  };

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    await cluster.startServer({});
    const range = await freePort();
    await cluster.startAgent({ name: 'node-a', portRange: `${range + 1000}-${range + 1100}` });
    for (const [name, role] of [['ada', 'admin'], ['dev', 'member'], ['vic', 'member']] as const) {
      const made = await call('POST', '/v1/users', admin(), { name, password: PASSWORD, role });
      assert.equal(made.status, 201, JSON.stringify(made.body));
    }
    assert.equal((await call('POST', '/v1/teams', admin(), { name: 'shop', owner: 'dev' })).status, 201);
    assert.equal((await call('PUT', '/v1/teams/shop/members/vic', admin(), { role: 'viewer' })).status, 200);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    context.setDefaultTimeout(20_000);
    page = context.pages()[0] ?? (await context.newPage());
    page.on('dialog', (dialog) => void dialog.accept());
    // A script the CSP blocks, or one that throws, shows here (an expected 4xx the page reports itself does not).
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) pageErrors.push(message.text());
    });
  });

  after(async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    await cluster.close();
  });

  test('sign-in: a wrong password is refused on the page, the right one opens the overview with no token in storage', async () => {
    await page.goto(`${cluster.url}/`);
    await shot('sign-in');
    await page.getByLabel('User').fill('dev');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await signIn('dev');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie + location.href);
    assert.doesNotMatch(stored, /gty_|gantry_session/, 'no token readable by the page');
    await shot('overview');
  });

  test('deploying from the YAML editor: an error names the field, the fix deploys and runs', async () => {
    await nav('Deploy');
    const editor = page.getByLabel('Spec (YAML)');
    await editor.fill(spec('two', 'v1'));
    await page.locator('.problems li').filter({ hasText: 'entrypoints.web.replicas: Invalid input: expected number, received string' }).waitFor();
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('Fix the problems listed first.').waitFor();
    await shot('deploy-error');
    await editor.fill(spec(2, 'v1'));
    await page.getByText('The spec is valid.').waitFor();
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(`**/apps/${APP}`);
    await page.getByTestId('running-web').filter({ hasText: '2' }).waitFor();
    await page.getByTestId('running-pinned').filter({ hasText: '1' }).waitFor();
    assert.equal(await page.locator('tr[data-instance]').count(), 3);
    await shot('app');
  });

  test('a rollout progresses live on the app page, and a rollback from it goes back', async () => {
    await tab('Spec');
    const editor = page.getByLabel(/Spec of release 1/);
    await editor.fill(spec(2, 'v2'));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText(`Applied ${APP}, release 2.`).waitFor();
    // Seen without reloading: progressing (the waves wait 2s of health each), then done.
    await page.locator('section.rollout[data-phase="progressing"]').getByText('Rollout 1 → 2').waitFor();
    await shot('rollout');
    // The README's picture (docs/console.png is a copy of it): the first screenful only.
    await page.screenshot({ path: join(SHOTS, 'readme.png'), clip: { x: 0, y: 0, width: 1280, height: 560 } });
    await page.locator('section.rollout[data-phase="succeeded"]').waitFor({ timeout: 30_000 });
    await page.getByTestId('progress-web').filter({ hasText: '2/2 updated and healthy · 0 old' }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Rollback' }).click();
    await page.getByRole('heading', { name: /release 3/ }).waitFor();
    await page.locator('section.rollout[data-phase="succeeded"]').getByText('Rollout 2 → 3').waitFor({ timeout: 30_000 });
    const releases = (await call('GET', `/v1/apps/${APP}/releases`, admin())).body.releases as { release: number; note?: string }[];
    assert.match(releases.find((r) => r.release === 3)?.note ?? '', /rollback to release 1/);
    await tab('Releases');
    await page.getByText('rollback to release 1').waitFor();
    await shot('releases');
  });

  test('the log tail receives new lines while it is open, and search narrows them', async () => {
    await tab('Logs');
    const lines = page.getByLabel('Log lines');
    await lines.getByText(/tick \d+ v1/).first().waitFor();
    const highest = async () => Math.max(0, ...[...(await lines.innerText()).matchAll(/tick (\d+) v1/g)].map((m) => Number(m[1])));
    const first = await highest();
    await until('a new log line in the page', async () => (await highest()) > first, 10_000, 200);
    await page.getByRole('searchbox', { name: 'Search' }).fill('tick 1 ');
    await until('the search to narrow the lines', async () => (await lines.innerText()).split('\n').filter(Boolean).every((l) => l.includes('tick 1 ')), 5_000, 100);
    await shot('logs');
  });

  test('events and audit pages list what happened, with filters', async () => {
    await nav('Events');
    await page.getByLabel('App').fill(APP);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('.event-list').getByText('instance.placed').first().waitFor();
    await shot('events');
    await signOut();
    await signIn('ada');
    await nav('Audit');
    await page.getByRole('cell', { name: /\/v1\/apps\/:app\/rollback/ }).first().waitFor();
    await shot('audit');
  });

  test('a cordon from the nodes page takes the node out of placement', async () => {
    await nav('Nodes');
    const node = page.locator('section.node#node-a');
    // The pinned entry holds half a core: its cell names the instance and its share.
    await node.locator('.core.fragments').getByRole('link', { name: /shop-web-pinned-\w+ 50%/ }).waitFor();
    await shot('nodes');
    await node.getByRole('button', { name: 'Cordon' }).click();
    await page.locator('section.node[data-state="cordoned"]').waitFor();
    const nodes = (await call('GET', '/v1/nodes', admin())).body.nodes as { name: string; state: string }[];
    assert.equal(nodes.find((n) => n.name === 'node-a')?.state, 'cordoned');
    await node.getByRole('button', { name: 'Uncordon' }).click();
    await page.locator('section.node[data-state="ready"]').waitFor();
  });

  test('a terminal in an instance runs `echo hi` and shows hi', async (t) => {
    // The exec WebSocket is the server side's (branch cserver); until it is merged the route is unknown.
    const probe = await call('GET', '/v1/instances/none/exec', admin());
    if (probe.status === 404 && /^no route/.test(String(probe.body.error))) return t.skip('this server has no GET /v1/instances/:id/exec yet');
    await page.goto(`${cluster.url}/apps/${APP}`);
    await page.locator('tr[data-instance]').first().getByRole('link').first().click();
    await page.getByRole('button', { name: 'Terminal' }).click();
    await page.getByTestId('terminal-state').filter({ hasText: 'open' }).waitFor();
    await page.locator('.xterm').click();
    await page.keyboard.type('echo hi\n');
    const rows = page.locator('.xterm-rows');
    await until('hi on a line of its own', async () => (await rows.innerText()).split('\n').some((line) => line.trim() === 'hi'), 10_000, 100);
    await shot('terminal');
    await page.getByRole('button', { name: 'Close terminal' }).click();
  });

  test('a viewer sees no write buttons, and the API refuses it when the page calls anyway (403)', async () => {
    await signOut();
    await signIn('vic');
    await page.goto(`${cluster.url}/apps/${APP}`);
    await page.locator('tr[data-instance]').first().waitFor();
    await page.locator('[data-can-write="false"]').waitFor();
    for (const name of ['Scale', 'Restart', 'Rebuild', 'Stop app', 'Rollback']) assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `no ${name} button`);
    await shot('viewer-app');
    await page.locator('tr[data-instance]').first().getByRole('link').first().click();
    await page.locator('[data-can-exec="false"]').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Terminal' }).count(), 0, 'no Terminal button for a viewer');
    const status = await page.evaluate(async (app) => {
      const me = (await (await fetch('/v1/whoami')).json()) as { csrf: string };
      const answer = await fetch(`/v1/apps/${app}/entries/web/scale`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-gantry-csrf': me.csrf }, body: JSON.stringify({ replicas: 5 }) });
      return answer.status;
    }, APP);
    assert.equal(status, 403);
    const detail = await call('GET', `/v1/apps/${APP}`, admin());
    assert.equal(detail.body.app.spec.entrypoints.web.replicas, 2);
  });

  test('on a phone, pages fit the width of the screen; the theme switch works from the keyboard', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const [path, name] of [['/', 'overview'], [`/apps/${APP}`, 'app'], ['/events', 'events']] as const) {
        await page.goto(`${cluster.url}${path}`);
        await page.locator('main h1').waitFor();
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${path} is ${overflow}px wider than the phone`);
        await shot(`phone-${name}`);
      }
      const before = await page.evaluate(() => document.documentElement.dataset.theme);
      await page.getByRole('button', { name: /^Switch to (dark|light) theme$/ }).focus();
      await page.keyboard.press('Enter');
      const after = await page.evaluate(() => document.documentElement.dataset.theme);
      assert.notEqual(after, before);
      assert.equal(after, before === 'dark' ? 'light' : 'dark');
      await shot(`phone-events-${after}`);
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  test('no page threw or was refused by the Content-Security-Policy along the way', () => {
    assert.deepEqual(pageErrors, []);
  });
});
