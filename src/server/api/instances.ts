// /v1/instances: list, and logs relayed from the instance's agent (an app's merged logs: app-logs.ts).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { InstanceAction, InstanceListResponse } from '../../model/api.js';
import type { Instance } from '../../model/types.js';
import { instanceView } from '../services/views.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { STORE } from '../keys.js';
import { casUpdate } from '../cas.js';
import { requester, visibleTo, type ApiContext } from './context.js';
import { InstanceParams } from './params.js';
import { MAX_BUFFERED_BYTES, openStream } from './streams.js';
import { name, nodeName } from '../../model/names.js';
import { appLogRoutes, LogsQuery } from './app-logs.js';

/** A page of the instance list: at most `limit`, after the cursor `after` (the `next` of the page before). */
export const MAX_INSTANCE_PAGE = 5000;
const DEFAULT_INSTANCE_PAGE = 1000;
const Cursor = z.tuple([z.string().max(256), z.string().max(256), z.number().int(), z.string().max(256)]);
type SortKey = z.infer<typeof Cursor>;
const ListQuery = z.object({
  app: name('app').optional(),
  node: nodeName().optional(),
  limit: z.coerce.number().int().min(1).max(MAX_INSTANCE_PAGE).default(DEFAULT_INSTANCE_PAGE),
  after: z
    .string()
    .max(2048)
    .optional()
    .transform((text, check) => {
      if (text === undefined) return undefined;
      try {
        return Cursor.parse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
      } catch {
        check.addIssue({ code: 'custom', message: 'not a cursor this server gave (pass the `next` of the previous page)' });
        return z.NEVER;
      }
    }),
});

const sortKey = (i: Instance): SortKey => [i.app, i.entry, i.createdAt, i.id];
function compareKeys(a: SortKey, b: SortKey): number {
  return a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]) || a[2] - b[2] || (a[3] < b[3] ? -1 : a[3] > b[3] ? 1 : 0);
}

export function instanceRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/instances', async (request): Promise<InstanceListResponse> => {
    const { app, node, limit, after } = ListQuery.parse(request.query);
    // From the cache's indexes: an app's or a node's instances cost what they hold, not the fleet.
    const candidates = app ? ctx.state.instancesOf(app) : node ? ctx.state.instancesOnNode(node) : [...ctx.state.instances.values()];
    const visible = visibleTo(ctx, request, 'instance');
    const matching = candidates.filter((i) => (!app || i.app === app) && (!node || i.node === node) && visible(i.id) && (!after || compareKeys(sortKey(i), after) > 0));
    const page = matching.sort((a, b) => compareKeys(sortKey(a), sortKey(b))).slice(0, limit);
    const more = matching.length > page.length;
    const appVisible = visibleTo(ctx, request, 'app');
    const unplaced = [...ctx.replicas.unplaced].filter(([name]) => (!app || name === app) && appVisible(name)).flatMap(([name, list]) => list.map((u) => ({ app: name, ...u })));
    return {
      instances: page.map((i) => instanceView(ctx.state, i)),
      unplaced,
      ...(more ? { next: Buffer.from(JSON.stringify(sortKey(page.at(-1)!)), 'utf8').toString('base64url') } : {}),
    };
  });

  // What each action changes on the stored record, checked there (an instance being removed
  // meanwhile is not revived). Rebuild: a new container in the same place (node, ports, volumes);
  // restart: the same container again; stop: this one instance stops and keeps its place (no
  // replacement is started); start: it runs again.
  const missing = (id: string, running: boolean) => new NotFoundError(`no ${running ? 'running ' : ''}instance named "${id}"`);
  const counted = (action: 'rebuild' | 'restart') => (current: Instance): Instance => {
    if (current.desired !== 'running') throw missing(current.id, true);
    return { ...current, [action]: (current[action] ?? 0) + 1 };
  };
  const stopped = (stop: boolean) => (current: Instance): Instance => {
    if (current.desired === 'removed') throw missing(current.id, false);
    if (ctx.state.apps.get(current.app)?.stopped) throw new ConflictError(`app ${current.app} is stopped: gantry start ${current.app} starts all of it`);
    return { ...current, desired: stop ? 'stopped' : 'running', stoppedByUser: stop };
  };
  const changes: Record<InstanceAction, { change: (current: Instance) => Instance; running: boolean }> = {
    rebuild: { change: counted('rebuild'), running: true },
    restart: { change: counted('restart'), running: true },
    stop: { change: stopped(true), running: false },
    start: { change: stopped(false), running: false },
  };
  for (const [action, { change, running }] of Object.entries(changes) as [InstanceAction, (typeof changes)[InstanceAction]][]) {
    server.post(`/v1/instances/:id/${action}`, async (request) => {
      const { id } = InstanceParams.parse(request.params);
      const instance = ctx.state.instances.get(id);
      if (!instance) throw missing(id, running);
      const written = await casUpdate(ctx.store, STORE.instances.key(instance.app, id), STORE.instances, (current) => {
        if (!current) throw missing(id, running);
        return change(current);
      }, { what: `instance ${id}` });
      const next = written.value!;
      await ctx.state.waitFor(written.revision!);
      ctx.events.note({ level: 'info', type: `instance.${action}_requested`, app: instance.app, entry: instance.entry, instance: id, node: instance.node, message: `${action} of ${id} requested by ${requester(request)}` });
      return { instance: instanceView(ctx.state, next) };
    });
  }

  server.get('/v1/instances/:id/logs', async (request, reply) => {
    const { id } = InstanceParams.parse(request.params);
    const { tail, follow } = LogsQuery.parse(request.query);
    const instance = ctx.state.instances.get(id);
    if (!instance) throw new NotFoundError(`no instance named "${id}"`);
    const stream = openStream(ctx.streams, request, reply, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }, () => {
      request.log.warn(`a log stream of ${id} was dropped: its reader fell more than ${MAX_BUFFERED_BYTES} bytes behind`);
    });
    const cancel = ctx.agents.requestLogs(
      instance.node,
      id,
      { tail, follow },
      (lines) => void stream.write(lines.map((l) => `${l}\n`).join('')),
      (error) => stream.end(error ? `gantry: ${error}\n` : undefined),
    );
    stream.onClose(cancel);
  });

  appLogRoutes(server, ctx);
}
