// The web console's app page with a big app: a real server (this process) and hollow nodes
// (src/sim/) run an app of --instances instances (default 500); Debian's Chromium opens its page,
// then the app rolls over to a new release, which streams every instance's replacement (records
// and status reports) into the open page. Prints one JSON line. Run after `npm run build`
// (the console is served from dist/web/):
//   npx tsx bench/console.ts [--instances 500] [--nodes 16]
//
// Figures, all measured in the page:
// - renderMs: from navigation until every instance row is in the page, each one running.
// - rolloutMs: from the apply until the page shows the rollout succeeded with every instance new.
// - longestTaskMs / longTasks: the main thread's tasks over 50 ms while the rollout streamed in
//   (PerformanceObserver "longtask"): how long a click could wait at worst.
// - probeLagP50Ms / P99 / max: a 50 ms timer's lateness over the same time, sampled each tick.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { startServer } from '../src/server/main.js';
import { Fleet } from '../src/sim/fleet.js';

const { values } = parseArgs({ options: { instances: { type: 'string', default: '500' }, nodes: { type: 'string', default: '16' } } });
const INSTANCES = Number(values.instances);
const NODES = Number(values.nodes);
const ADMIN = 'bench-console-admin-token';
const PASSWORD = 'bench console password';
const ROOT = join(import.meta.dirname, '..');
const spec = (release: string) => ({
  app: 'big',
  entrypoints: { web: { command: ['sleep', '3600'], env: { RELEASE: release }, replicas: INSTANCES, resources: { cpu: 0.05, memory: '32Mi' }, update: { strategy: 'rolling', maxSurge: 50, maxUnavailable: 0, minHealthy: '0s' } } },
});

const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-console-'));
const server = await startServer({ dataDir: dir, port: 0, bootstrapToken: ADMIN, webDir: join(ROOT, 'dist', 'web'), log: false });
const fleet = new Fleet({ server: server.url, token: ADMIN, count: NODES, startDelayMs: 100 });
const profile = mkdtempSync(join(tmpdir(), 'gantry-bench-chromium-'));
const api = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as Record<string, any>;
};
const waitFor = async (what: string, probe: () => Promise<boolean>, ms = 180_000) => {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};
const running = async () => ((await api('GET', '/v1/apps')).apps as { entries: { running: number }[] }[])[0]?.entries[0]?.running ?? 0;

try {
  await fleet.start();
  await api('POST', '/v1/users', { name: 'ada', password: PASSWORD, role: 'admin' });
  await api('POST', '/v1/apps', spec('1'));
  await waitFor(`${INSTANCES} instances running`, async () => (await running()) === INSTANCES);

  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(180_000);
  await page.goto(`${server.url}/`);
  await page.getByLabel('User').fill('ada');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();

  const start = Date.now();
  await page.goto(`${server.url}/apps/big`);
  await page.getByTestId('running-web').filter({ hasText: new RegExp(`^${INSTANCES}$`) }).waitFor();
  await page.waitForFunction((n) => document.querySelectorAll('tr[data-instance]').length === n, INSTANCES);
  const renderMs = Date.now() - start;

  // From here: long tasks and a timer's lateness.
  await page.evaluate(() => {
    const w = window as unknown as { bench: { tasks: number[]; lags: number[] } };
    w.bench = { tasks: [], lags: [] };
    new PerformanceObserver((list) => list.getEntries().forEach((e) => w.bench.tasks.push(e.duration))).observe({ type: 'longtask' });
    let expected = performance.now() + 50;
    setInterval(() => {
      const now = performance.now();
      w.bench.lags.push(Math.max(0, now - expected));
      expected = now + 50;
    }, 50);
  });
  await new Promise((r) => setTimeout(r, 500));
  const applied = Date.now();
  await api('POST', '/v1/apps', spec('2'));
  await page.locator('section.rollout[data-phase="succeeded"]').getByText('Rollout 1 → 2').waitFor();
  await page.getByTestId('progress-web').filter({ hasText: `${INSTANCES}/${INSTANCES} updated and healthy · 0 old` }).waitFor();
  const rolloutMs = Date.now() - applied;
  const measured = (await page.evaluate(() => (window as unknown as { bench: { tasks: number[]; lags: number[] } }).bench)) as { tasks: number[]; lags: number[] };
  const lags = measured.lags.sort((a, b) => a - b);
  const at = (q: number) => Math.round(lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] ?? 0);
  console.log(
    JSON.stringify({
      bench: 'console-app-page',
      instances: INSTANCES,
      nodes: NODES,
      renderMs,
      rolloutMs,
      longTasks: measured.tasks.length,
      longestTaskMs: Math.round(Math.max(0, ...measured.tasks)),
      probeLagP50Ms: at(0.5),
      probeLagP99Ms: at(0.99),
      probeLagMaxMs: Math.round(lags.at(-1) ?? 0),
    }),
  );
  await context.close();
} finally {
  fleet.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
}
