// gantry node inspect <node|--all>: has each node's agent run its checks now and prints them, a
// table per node (status, observed value, threshold) or JSON. Loaded when the command runs.
import type { Command } from 'commander';
import type { NodeInspection } from './client/nodes.js';
import { options } from './cli-options.js';
import { clientFor } from './connect.js';
import { EXIT, fail } from './errors.js';
import { formatTime, oneLine, print, renderJson, renderTable } from './output.js';

export async function inspectNodes(name: string | undefined, _opts: unknown, cmd: Command): Promise<void> {
  const { all, output } = options<{ all?: boolean; output?: string }>(cmd);
  if ((name === undefined) === !all) fail(EXIT.usage, 'name a node, or pass --all (every ready node)');
  const client = clientFor(cmd);
  const names = all ? (await client.listNodes()).nodes.filter((n) => n.state === 'ready').map((n) => n.name) : [name!];
  if (all && names.length === 0) fail(EXIT.api, 'no node is ready');
  // One node's agent being away must not hide the others' results.
  const answers = await Promise.all(names.map((node) => client.inspectNode(node).then((answer): NodeInspection | { node: string; error: string } => answer, (err: Error) => ({ node, error: err.message }))));
  const failed = answers.filter((a): a is { node: string; error: string } => 'error' in a);
  if (output === 'json') print(renderJson(all ? answers : answers[0]));
  else print(answers.map((answer) => ('error' in answer ? answer.error : inspectionText(answer))).join('\n\n'));
  if (failed.length > 0) fail(EXIT.api, `${failed.length} of ${names.length} node(s) could not be inspected: ${failed.map((f) => f.node).join(', ')}`);
}

function inspectionText({ node, inspection, summary }: NodeInspection): string {
  if (!inspection) return `node ${node}: ${summary.text}`;
  const order = { fail: 0, error: 1, warn: 2, pass: 3 };
  const checks = Object.values(inspection.checks).sort((a, b) => order[a.status] - order[b.status] || a.check.localeCompare(b.check));
  const now = Date.now();
  const head = `node ${node}: ${summary.text} (checked ${formatTime(inspection.at, now)})`;
  return `${head}\n${renderTable(['CHECK', 'STATUS', 'VALUE', 'THRESHOLD', 'SINCE', 'MESSAGE'], checks.map((c) => [c.check, c.status, c.value, c.threshold, formatTime(c.since, now), oneLine(c.message)]))}`;
}
