// What the commands of quota-commands.ts do. Loaded when one of them runs.
import type { Command } from 'commander';
import type { QuotaLimits, QuotaUse, QuotaView } from '../model/types.js';
import { RESOURCES, formatAmount } from '../server/services/quota-use.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { print, renderJson, renderTable, type CellValue } from './output.js';

/** The label of the team-wide scope in the table. */
const ALL_ENVS = '(all)';
const HEAD = ['TEAM', 'ENV', 'RESOURCE', 'USED', 'LIMIT', '%'];

export async function showQuota(team: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const client = clientFor(cmd);
  const views = team !== undefined ? [await client.quota(team)] : await mine(client);
  if (options(cmd).output === 'json') return print(renderJson(views));
  const rows = views.flatMap(rowsOf);
  if (rows.length === 0) return print(team !== undefined ? `team ${team} has no quota and no apps` : 'no quotas and no apps in teams yet (gantry quota set <team> --cpu N)');
  print(renderTable(HEAD, rows));
}

/** Every team's (admins, operators), else those of the caller's teams. */
async function mine(client: ReturnType<typeof clientFor>): Promise<QuotaView[]> {
  const me = await client.whoami();
  if (me.role === 'admin' || me.role === 'operator') return (await client.quotas()).quotas;
  const { teams } = await client.teams();
  return Promise.all(teams.map((t) => client.quota(t.name)));
}

function rowsOf(view: QuotaView): CellValue[][] {
  const envs = [...new Set([...Object.keys(view.quota?.envs ?? {}), ...Object.keys(view.use.envs)])].sort();
  const scopes: Array<[string, QuotaLimits | undefined, QuotaUse]> = envs.map((env) => [env, view.quota?.envs[env], view.use.envs[env] ?? { cpu: 0, memory: 0, instances: 0 }]);
  scopes.push([ALL_ENVS, view.quota?.total, view.use.total]);
  const rows: CellValue[][] = [];
  for (const [env, limits, use] of scopes) {
    for (const resource of RESOURCES) {
      const limit = limits?.[resource];
      if (limit === undefined && (use[resource] === 0 || env === ALL_ENVS)) continue;
      rows.push([view.team, env, resource, formatAmount(resource, use[resource]), limit === undefined ? '-' : formatAmount(resource, limit), limit === undefined ? '-' : percent(use[resource], limit)]);
    }
  }
  return rows;
}

function percent(used: number, limit: number): string {
  if (limit === 0) return used === 0 ? '0%' : 'over';
  return `${Math.round((used / limit) * 100)}%`;
}

export async function setQuota(team: string, _opts: unknown, cmd: Command): Promise<void> {
  const { env, cpu, memory, instances } = options<{ env?: string; cpu?: number; memory?: string; instances?: number }>(cmd);
  if (cpu === undefined && memory === undefined && instances === undefined) fail(EXIT.usage, 'give at least one limit: --cpu, --memory or --instances');
  const view = await clientFor(cmd).setQuota(team, { ...(env !== undefined ? { env } : {}), ...(cpu !== undefined ? { cpu } : {}), ...(memory !== undefined ? { memory } : {}), ...(instances !== undefined ? { instances } : {}) });
  print(`quota of team ${team}, ${env !== undefined ? `env ${env}` : 'all envs'}, set`);
  print(renderTable(HEAD, rowsOf(view)));
}

export async function removeQuota(team: string, _opts: unknown, cmd: Command): Promise<void> {
  const { env, total } = options<{ env?: string; total?: boolean }>(cmd);
  await clientFor(cmd).removeQuota(team, { ...(env !== undefined ? { env } : {}), ...(total ? { total: 'true' as const } : {}) });
  print(`quota of team ${team}${env !== undefined ? `, env ${env},` : total ? ', all envs,' : ''} removed`);
}
