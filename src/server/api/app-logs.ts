// GET /v1/apps/:app/logs: every instance's lines, from every node that runs one, merged by time
// (services/log-merge.ts says how exactly) and prefixed with the instance id. Following, instances
// that start later are joined as the cluster cache sees them, and one that goes away just ends.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Instance, InstanceState } from '../../model/types.js';
import { name } from '../../model/names.js';
import { grepMatcher, grepProblem, MAX_GREP_LENGTH } from '../../model/log-grep.js';
import { parseLongDuration } from '../../model/units.js';
import { NotFoundError } from '../errors.js';
import { LogMerge } from '../services/log-merge.js';
import type { ApiContext } from './context.js';
import { AppParams } from './params.js';
import { MAX_BUFFERED_BYTES, openStream } from './streams.js';

/** How long a followed line waits for the other instances' lines before it is written anyway. */
export const LOG_MERGE_WINDOW_MS = 500;
/** Text waiting in the merge before the oldest lines are written regardless of order. */
const MAX_MERGE_BYTES = 4 * 1024 * 1024;
/** Following: how often, and how far apart, an instance whose agent could not read its logs yet is asked again. */
const JOIN_ATTEMPTS = 5;
const JOIN_RETRY_MS = 1000;
const NOT_STARTED: ReadonlySet<InstanceState> = new Set(['pending', 'pulling']);

/** "10m", "2h", "7d", or a time Date.parse reads ("2026-11-30T20:00:00Z"): ms since the epoch. */
export function parseSince(text: string, now = Date.now()): number | undefined {
  const ago = parseLongDuration(text);
  if (ago !== undefined) return Math.max(0, now - ago);
  if (!/^\d{4}-\d\d-\d\d/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** One instance's logs (instances.ts) and an app's. */
export const LogsQuery = z.object({
  tail: z.coerce.number().int().min(0).max(100_000).optional(),
  follow: z.enum(['1', 'true', '0', 'false']).optional().transform((v) => v === '1' || v === 'true'),
});

const AppLogsQuery = LogsQuery.extend({
  entry: name('entry').optional(),
  since: z
    .string()
    .max(64)
    .optional()
    .transform((text, check) => {
      if (text === undefined) return undefined;
      const at = parseSince(text);
      if (at === undefined) {
        check.addIssue({ code: 'custom', message: 'a duration back from now (30s, 10m, 2h, 7d) or a time (2026-11-30T20:00:00Z)' });
        return z.NEVER;
      }
      return at;
    }),
  grep: z
    .string()
    .max(MAX_GREP_LENGTH)
    .optional()
    .superRefine((pattern, check) => {
      const problem = pattern === undefined ? undefined : grepProblem(pattern);
      if (problem) check.addIssue({ code: 'custom', message: problem });
    }),
});

export function appLogRoutes(server: FastifyInstance, ctx: ApiContext): void {
  server.get('/v1/apps/:app/logs', async (request, reply) => {
    const { app } = AppParams.parse(request.params);
    const { entry, tail, follow, since, grep } = AppLogsQuery.parse(request.query);
    if (!ctx.state.apps.has(app)) throw new NotFoundError(`no app named "${app}"`);
    const stream = openStream(ctx.streams, request, reply, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }, () => {
      request.log.warn(`a log stream of app ${app} was dropped: its reader fell more than ${MAX_BUFFERED_BYTES} bytes behind`);
    });
    let finished = false;
    const merge = new LogMerge((line) => void stream.write(`${line.instance} | ${line.text}\n`), { ...(follow ? { windowMs: LOG_MERGE_WINDOW_MS } : {}), maxBytes: MAX_MERGE_BYTES });
    const cancels = new Map<string, () => void>();
    // An agent older than the server ignores grep, since and timestamps (it sends no times): its
    // lines are grepped here, and dated as they arrive.
    const matches = grep === undefined ? undefined : grepMatcher(grep);
    const fromOldAgent = (lines: string[], times: number[] | undefined) => (times !== undefined || !matches ? lines : lines.filter(matches));
    const finishIfDone = () => {
      if (follow || finished || !merge.done) return;
      finished = true;
      stream.end();
    };
    // Following, an instance is joined once its agent reported it started (before, its node has no logs of it).
    const started = (i: Instance) => !NOT_STARTED.has(ctx.state.statuses.get(i.id)?.state ?? 'pending');
    const wanted = (i: Instance) => (entry === undefined || i.entry === entry) && (!follow || started(i));
    let closed = false;
    const retries = new Set<NodeJS.Timeout>();
    const join = (instance: Instance, attempt = 0) => {
      if (attempt === 0 && merge.has(instance.id)) return;
      merge.add(instance.id);
      let ended = false;
      const cancel = ctx.agents.requestLogs(
        instance.node,
        instance.id,
        { tail, follow, timestamps: true, ...(since !== undefined ? { since } : {}), ...(grep !== undefined ? { grep } : {}) },
        (lines, times) => merge.push(instance.id, fromOldAgent(lines, times), times),
        (error) => {
          ended = true;
          cancels.delete(instance.id);
          // Reported started a moment before its runtime can read its logs: asked again shortly.
          if (error && follow && !closed && attempt < JOIN_ATTEMPTS && ctx.state.instances.has(instance.id)) {
            merge.end(instance.id);
            const retry = setTimeout(() => {
              retries.delete(retry);
              if (!closed) join(instance, attempt + 1);
            }, JOIN_RETRY_MS);
            retries.add(retry);
            return;
          }
          if (error) merge.push(instance.id, [`gantry: ${error}`], undefined);
          merge.end(instance.id);
          finishIfDone();
        },
      );
      if (!ended) cancels.set(instance.id, cancel);
    };
    const joinAll = () => {
      for (const instance of ctx.state.instancesOf(app)) if (wanted(instance)) join(instance);
    };
    joinAll();
    finishIfDone();
    if (follow) {
      const stopWatching = ctx.state.onChange((kind) => {
        if (kind === 'instance' || kind === 'status') joinAll();
      });
      const timer = setInterval(() => merge.flush(), 100);
      stream.onClose(() => {
        stopWatching();
        clearInterval(timer);
      });
    }
    stream.onClose(() => {
      closed = true;
      for (const retry of retries) clearTimeout(retry);
      for (const cancel of cancels.values()) cancel();
      cancels.clear();
    });
  });
}
