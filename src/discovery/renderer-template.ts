// The template side of the upstream renderer (renderer.ts): the data a template sees, the
// Handlebars helpers, compiling a template and validating one.
//
// Template data (Handlebars, compiled with `strict: true` and `noEscape: true`: a reference to
// a missing variable is an error, and nothing is HTML-escaped):
//
//   {
//     apps: [                               // sorted by app, then env
//       { app, env,
//         entries: [                        // sorted by entry
//           { entry,
//             endpoints: [                  // sorted by id, then address
//               { id, address, node, ports: { name: port }, release, labels }
//             ] } ] } ],
//     endpoints: Endpoint[],                // every endpoint, sorted by app/env/entry/id
//     revision: number,                     // store revision (changes on every change: printing
//                                           // it makes every render a new file and a reload)
//     vars: { ... },                        // RendererConfig.vars, as given ({} by default)
//   }
//
// `node` and `release` are null when absent (outside services), `ports` and `labels` have their
// keys sorted, so the same registry state always renders the same text. There is deliberately
// no timestamp (it would change the file, hence reload nginx, on every render). An entry is
// listed only while it has at least one endpoint, but an endpoint may have no ports: use
// `withPort` and an `{{else}}` branch so an upstream never ends up empty (nginx refuses an
// `upstream` block with no `server`), see examples/nginx-upstreams.hbs.
//
// Helpers:
//   {{upstreamName app env entry}}  → gantry_app_env_entry, every non-alphanumeric char → `_`
//   {{port this "http"}}            → the endpoint's port named "http", else its first port (by
//                                     name); empty when it has none. {{port this}}: first port.
//   {{addr this "http"}}            → address:port as above, IPv6 addresses in brackets
//   {{#each (withPort endpoints)}}  → the endpoints that have at least one port
//   {{label this "key" "default"}}  → a label's value, or the default ("" if none given)
//
// Handlebars gotcha for nginx configs: `}}}` closes a triple-stache, so `{{/each}}}` does not
// parse; put nginx's `}` on its own line (block tags on their own lines leave no blank lines).
//
// Values are inserted verbatim (`noEscape`), so what reaches a template is checked here, whatever
// its source (an agent, the API, a store restored from elsewhere): an endpoint whose names,
// address or ports are not plain names, an IP or host name and port numbers is left out, and a
// label whose key or value could break out of a config line (quotes, braces, `;`, newlines) is
// dropped; the caller is told which, so it can say so. `nginx -t` catches broken syntax, not
// valid-but-hostile config, so it cannot be the only guard.
import { isIPv6 } from 'node:net';
import { INSTANCE_ID, LABEL_KEY, LABEL_VALUE, NAME, NODE_NAME, isHostAddress } from '../model/names.js';
import Handlebars from 'handlebars';
import type { Endpoint } from '../model/registry.js';

export interface TemplateEndpoint {
  id: string;
  address: string;
  node: string | null;
  ports: Record<string, number>;
  release: number | null;
  labels: Record<string, string>;
}

export interface TemplateData {
  apps: { app: string; env: string; entries: { entry: string; endpoints: TemplateEndpoint[] }[] }[];
  endpoints: (Omit<Endpoint, 'node' | 'release'> & { node: string | null; release: number | null })[];
  revision: number;
  vars: Record<string, unknown>;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(record).sort(cmp)) out[key] = record[key]!;
  return out;
}

/** Why an endpoint cannot be written into a config file, or undefined when it can. */
function unsafe(e: Endpoint): string | undefined {
  if (![e.app, e.env, e.entry].every((n) => typeof n === 'string' && NAME.test(n))) return 'app, env or entry is not a name';
  if (typeof e.id !== 'string' || !(INSTANCE_ID.test(e.id) || NAME.test(e.id))) return 'its id is not a name';
  if (typeof e.address !== 'string' || !isHostAddress(e.address)) return 'its address is neither an IP address nor a host name';
  if (e.node !== undefined && e.node !== null && !(typeof e.node === 'string' && NODE_NAME.test(e.node))) return 'its node is not a node name';
  const ports = Object.entries(e.ports ?? {});
  if (!ports.every(([name, port]) => NAME.test(name) && Number.isInteger(port) && port >= 1 && port <= 65535)) return 'a port is not a name and a number 1-65535';
  return undefined;
}

function safeLabels(labels: Record<string, string> | undefined): { labels: Record<string, string>; dropped: string[] } {
  const out: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (LABEL_KEY.test(key) && typeof value === 'string' && LABEL_VALUE.test(value)) out[key] = value;
    else dropped.push(key);
  }
  return { labels: out, dropped };
}

/** An endpoint as it appears in `endpoints` of the template data. */
export type DataEndpoint = TemplateData['endpoints'][number];

const order = (a: DataEndpoint, b: DataEndpoint): number => cmp(a.app, b.app) || cmp(a.env, b.env) || cmp(a.entry, b.entry) || cmp(a.id, b.id) || cmp(a.address, b.address);

/**
 * One endpoint made fit for a template: undefined when it is left out as unsafe. `refused`
 * hears why, or which labels were dropped.
 */
export function checkEndpoint(e: Endpoint, refused: (what: string) => void): DataEndpoint | undefined {
  const why = unsafe(e);
  const where = `${String(e.app)}/${String(e.env)}/${String(e.entry)}/${String(e.id)}`.slice(0, 200);
  if (why) {
    refused(`endpoint ${where} left out: ${why}`);
    return undefined;
  }
  const { labels, dropped } = safeLabels(e.labels);
  if (dropped.length > 0) refused(`endpoint ${where}: label${dropped.length > 1 ? 's' : ''} ${dropped.map((k) => JSON.stringify(k.slice(0, 64))).join(', ')} dropped (keys and values may only hold letters, digits and " ._:/@=+-")`);
  return { ...e, node: e.node ?? null, release: e.release ?? null, ports: sortedRecord(e.ports ?? {}), labels: sortedRecord(labels) };
}

/** Sorts checked endpoints in template order (app, env, entry, id, address), in place. */
export function sortEndpoints(endpoints: DataEndpoint[]): DataEndpoint[] {
  return endpoints.sort(order);
}

/** The `apps` of the template data from endpoints in template order. */
export function groupApps(sorted: readonly DataEndpoint[]): TemplateData['apps'] {
  const apps: TemplateData['apps'] = [];
  for (const e of sorted) {
    let app = apps.at(-1);
    if (!app || app.app !== e.app || app.env !== e.env) apps.push((app = { app: e.app, env: e.env, entries: [] }));
    let entry = app.entries.at(-1);
    if (!entry || entry.entry !== e.entry) app.entries.push((entry = { entry: e.entry, endpoints: [] }));
    entry.endpoints.push({ id: e.id, address: e.address, node: e.node, ports: e.ports, release: e.release, labels: e.labels });
  }
  return apps;
}

/**
 * The data a template sees, sorted so that the same endpoints always render the same text.
 * `refused` hears of every endpoint left out and label dropped as unsafe, with why. (The
 * renderer keeps the same data current per change instead: renderer-view.ts.)
 */
export function templateData(endpoints: readonly Endpoint[], revision: number, vars: Record<string, unknown> = {}, refused: (what: string) => void = () => {}): TemplateData {
  const checked: DataEndpoint[] = [];
  for (const e of endpoints) {
    const ok = checkEndpoint(e, refused);
    if (ok) checked.push(ok);
  }
  const normalised = sortEndpoints(checked);
  return { apps: groupApps(normalised), endpoints: normalised, revision, vars };
}

type HelperArgs = unknown[];
/** Drops the Handlebars options object that every helper gets last. */
const argsOf = (args: HelperArgs): unknown[] => args.slice(0, -1);

function isEndpoint(value: unknown): value is { address: string; ports: Record<string, number> } {
  return typeof value === 'object' && value !== null && typeof (value as { address?: unknown }).address === 'string' && typeof (value as { ports?: unknown }).ports === 'object';
}

function portOf(endpoint: unknown, name?: unknown): number | undefined {
  if (!isEndpoint(endpoint)) throw new Error('port/addr: the first argument must be an endpoint (e.g. `this` inside {{#each endpoints}})');
  const ports = endpoint.ports ?? {};
  if (typeof name === 'string' && typeof ports[name] === 'number') return ports[name];
  const first = Object.keys(ports).sort(cmp)[0];
  return first === undefined ? undefined : ports[first];
}

function createEnvironment(): typeof Handlebars {
  const hb = Handlebars.create();
  hb.registerHelper('upstreamName', (...raw: HelperArgs) => {
    const parts = argsOf(raw);
    if (parts.length === 0 || parts.some((p) => typeof p !== 'string' && typeof p !== 'number')) throw new Error('upstreamName expects strings, e.g. {{upstreamName app env entry}}');
    return `gantry_${parts.join('_').replace(/[^A-Za-z0-9]/g, '_')}`;
  });
  hb.registerHelper('port', (...raw: HelperArgs) => {
    const [endpoint, name] = argsOf(raw);
    return portOf(endpoint, name) ?? '';
  });
  hb.registerHelper('addr', (...raw: HelperArgs) => {
    const [endpoint, name] = argsOf(raw);
    const port = portOf(endpoint, name);
    if (port === undefined) return '';
    const { address } = endpoint as { address: string };
    return `${isIPv6(address) ? `[${address}]` : address}:${port}`;
  });
  hb.registerHelper('withPort', (...raw: HelperArgs) => {
    const [endpoints] = argsOf(raw);
    if (!Array.isArray(endpoints)) throw new Error('withPort expects a list of endpoints, e.g. (withPort endpoints)');
    return endpoints.filter((e) => isEndpoint(e) && Object.keys(e.ports ?? {}).length > 0);
  });
  hb.registerHelper('label', (...raw: HelperArgs) => {
    const [endpoint, key, fallback] = argsOf(raw);
    const labels = (endpoint as { labels?: Record<string, string> } | undefined)?.labels ?? {};
    return typeof key === 'string' && Object.hasOwn(labels, key) ? labels[key] : (fallback ?? '');
  });
  return hb;
}

const COMPILE_OPTIONS = { strict: true, noEscape: true } as const;

/** Rewrites a Handlebars error into one that names the template and the line. */
function templateError(name: string, err: unknown, phase: 'invalid' | 'render'): Error {
  const raw = err instanceof Error ? err.message : String(err);
  const what = phase === 'invalid' ? `invalid template "${name}"` : `template "${name}" failed to render`;
  // Parse errors already say "Parse error on line N:" followed by the excerpt.
  if (/^Parse error on line \d+/.test(raw)) return new Error(`${what}: ${raw}`);
  const located = /^([\s\S]*?) - (\d+):(\d+)$/.exec(raw);
  if (located) {
    const message = located[1]!.replace(/^("[^"]*") not defined in .*$/s, '$1 is not defined (strict mode)');
    return new Error(`${what} (line ${located[2]}, column ${Number(located[3]) + 1}): ${message}`);
  }
  return new Error(`${what}: ${raw}`);
}

export interface CompiledTemplate {
  render(data: TemplateData): string;
}

export function compileTemplate(name: string, template: string): CompiledTemplate {
  const hb = createEnvironment();
  try {
    hb.precompile(template, COMPILE_OPTIONS); // surfaces syntax errors now (compile() is lazy)
  } catch (err) {
    throw templateError(name, err, 'invalid');
  }
  const compiled = hb.compile<TemplateData>(template, COMPILE_OPTIONS);
  return {
    render(data) {
      try {
        return compiled(data);
      } catch (err) {
        throw templateError(name, err, 'render');
      }
    },
  };
}

/**
 * Throws an Error naming the template (and line, column) when `template` does not compile, or
 * fails against an empty registry (a top-level reference to a missing variable). References
 * inside loops are only checked once there are endpoints to loop over.
 */
export function validateTemplate(name: string, template: string, vars: Record<string, unknown> = {}): void {
  compileTemplate(name, template).render(templateData([], 0, vars));
}
