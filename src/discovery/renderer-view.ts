// The upstream renderer's copy of the template data (renderer-template.ts), kept current one
// registry key at a time: a change checks and files just that endpoint, and only its app/env
// group is sorted and grouped again. The whole data (single-file mode) is then the groups in
// order; the data of one file in per-app mode is just that file's groups. The result is the
// same as templateData() over the whole registry, which the renderer used to build per change.
import type { Endpoint } from '../model/registry.js';
import { keyOrder, type EndpointChange } from './source.js';
import { checkEndpoint, groupApps, sortEndpoints, type DataEndpoint, type TemplateData } from './renderer-template.js';

interface Filed {
  /** The group it is filed in; undefined when it was left out. */
  group: string | undefined;
  endpoint: DataEndpoint | undefined;
  refused: string[];
}

class Group {
  readonly members = new Map<string, DataEndpoint>();
  /** The group's endpoints in template order and its `apps` item, until it changes. */
  sorted: DataEndpoint[] | undefined;
  item: TemplateData['apps'][number] | undefined;
  constructor(readonly app: string, readonly env: string) {}

  build(): void {
    // Key order first, so that endpoints equal in template order keep the registry's order.
    this.sorted ??= sortEndpoints([...this.members].sort(keyOrder).map(([, e]) => e));
    this.item ??= groupApps(this.sorted)[0];
  }
}

/** The id of an app/env group: sorts as (app, env) does (names hold no NUL). */
export const groupId = (app: string, env: string): string => `${app}\0${env}`;

/** The app and env of a group id (whether or not the group still has endpoints). */
export function groupOf(id: string): { app: string; env: string } {
  const at = id.indexOf('\0');
  return { app: id.slice(0, at), env: id.slice(at + 1) };
}

/** Where `value` is or would go in the sorted `list`. */
function position(list: readonly string[], value: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class TemplateView {
  private readonly filed = new Map<string, Filed>();
  private readonly groups = new Map<string, Group>();
  /** Group ids in template order. */
  private readonly order: string[] = [];
  /** Registry keys whose endpoint was left out or lost labels. */
  private readonly refusing = new Set<string>();

  constructor(entries: Iterable<readonly [string, Endpoint]> = []) {
    for (const [key, endpoint] of entries) this.put(key, endpoint);
  }

  /** Applies changes; returns the ids of the groups they touched (see group()). */
  apply(changes: readonly EndpointChange[]): Set<string> {
    const touched = new Set<string>();
    for (const change of changes) {
      const was = this.remove(change.key);
      if (was !== undefined) touched.add(was);
      if (change.type === 'put') {
        const now = this.put(change.key, change.endpoint);
        if (now !== undefined) touched.add(now);
      }
    }
    return touched;
  }

  /** Every group id, in template order. */
  groupIds(): readonly string[] {
    return this.order;
  }

  /** A group's app and env, or undefined when it has no endpoints (any more). */
  group(id: string): { app: string; env: string } | undefined {
    return this.groups.get(id);
  }

  /** The template data of the given groups (all of them by default), in template order. */
  data(revision: number, vars: Record<string, unknown>, ids: readonly string[] = this.order): TemplateData {
    const apps: TemplateData['apps'] = [];
    const endpoints: DataEndpoint[] = [];
    for (const id of ids === this.order ? ids : [...ids].sort()) {
      const group = this.groups.get(id);
      if (!group) continue;
      group.build();
      apps.push(group.item!);
      for (const e of group.sorted!) endpoints.push(e);
    }
    return { apps, endpoints, revision, vars };
  }

  /** What is left out or dropped as unsafe, in key order. */
  refused(): string[] {
    return [...this.refusing].sort().flatMap((key) => this.filed.get(key)?.refused ?? []);
  }

  private put(key: string, endpoint: Endpoint): string | undefined {
    const refused: string[] = [];
    const checked = checkEndpoint(endpoint, (what) => refused.push(what));
    const id = checked ? groupId(checked.app, checked.env) : undefined;
    this.filed.set(key, { group: id, endpoint: checked, refused });
    if (refused.length > 0) this.refusing.add(key);
    if (!checked || id === undefined) return undefined;
    let group = this.groups.get(id);
    if (!group) {
      this.groups.set(id, (group = new Group(checked.app, checked.env)));
      this.order.splice(position(this.order, id), 0, id);
    }
    group.members.set(key, checked);
    group.sorted = group.item = undefined;
    return id;
  }

  private remove(key: string): string | undefined {
    const filed = this.filed.get(key);
    if (!filed) return undefined;
    this.filed.delete(key);
    this.refusing.delete(key);
    const id = filed.group;
    const group = id === undefined ? undefined : this.groups.get(id);
    if (!group || id === undefined) return undefined;
    group.members.delete(key);
    group.sorted = group.item = undefined;
    if (group.members.size === 0) {
      this.groups.delete(id);
      this.order.splice(position(this.order, id), 1);
    }
    return id;
  }
}
