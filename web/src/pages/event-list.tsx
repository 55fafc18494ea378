// Events as a live list (newest first), from the events stream: every id is a link.
import { memo, useEffect, useMemo, useRef, useState } from 'react';
import type { GantryEvent } from '../lib/model';
import { query } from '../lib/api';
import { Link, seg } from '../lib/router';
import { useEventSource } from '../lib/streams';
import { Live } from '../app/ui';

export interface EventFilter {
  app?: string;
  instance?: string;
  node?: string;
  limit?: number;
}

/**
 * Follows /v1/events with these filters: the recent history first, then each new event as it
 * happens. `onEvent` (throttled to once a second) lets a page refresh what an event changes.
 */
export function useLiveEvents(filter: EventFilter, onEvent?: (event: GantryEvent) => void): { events: GantryEvent[]; open: boolean } {
  const keep = filter.limit ?? 200;
  const [events, setEvents] = useState<GantryEvent[]>([]);
  const [open, setOpen] = useState(false);
  const url = `/v1/events${query({ follow: 1, app: filter.app, instance: filter.instance, node: filter.node, limit: Math.min(keep, 100) })}`;
  useEffect(() => setEvents([]), [url]);
  const throttled = useThrottled(onEvent, 1000);
  // A busy app sends hundreds of events a second: they are added once per animation frame.
  const arrived = useRef<GantryEvent[]>([]);
  const frame = useRef(0);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  const flush = () => {
    frame.current = 0;
    const batch = arrived.current.reverse();
    arrived.current = [];
    setEvents((list) => {
      const seen = new Set(list.map((e) => e.seq));
      return [...batch.filter((e) => !seen.has(e.seq)), ...list].slice(0, keep);
    });
  };
  useEventSource(
    url,
    {
      gantry: (event: GantryEvent) => {
        arrived.current.push(event);
        frame.current ||= requestAnimationFrame(flush);
        throttled?.(event);
      },
    },
    setOpen,
  );
  return { events, open };
}

/** Calls `fn` at most once per `ms`, the last call of a burst always landing. */
export function useThrottled<A extends unknown[]>(fn: ((...args: A) => void) | undefined, ms: number): ((...args: A) => void) | undefined {
  const latest = useRef(fn);
  latest.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const last = useRef(0);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useMemo(() => {
    if (!fn) return undefined;
    return (...args: A) => {
      clearTimeout(timer.current);
      const wait = last.current + ms - Date.now();
      const call = () => {
        last.current = Date.now();
        latest.current?.(...args);
      };
      if (wait <= 0) call();
      else timer.current = setTimeout(call, wait);
    };
    // Rebuilt only when a callback appears or goes: the call reads the latest one through the ref.
  }, [fn === undefined, ms]);
}

export function EventList({ events, open, empty = 'No events yet.' }: { events: GantryEvent[]; open: boolean; empty?: string }) {
  return (
    <div className="events">
      <Live open={open} />
      {events.length === 0 ? (
        <p className="muted">{empty}</p>
      ) : (
        <ol className="event-list" aria-live="polite">
          {events.map((e) => (
            <EventRow key={e.seq ?? `${e.time}-${e.message}`} event={e} />
          ))}
        </ol>
      )}
    </div>
  );
}

const EventRow = memo(function EventRow({ event: e }: { event: GantryEvent }) {
  return (
    <li className={`event level-${e.level}`}>
      <time dateTime={new Date(e.time).toISOString()}>{new Date(e.time).toLocaleTimeString()}</time>
      <span className="type">{e.type}</span>
      <span className="refs">
        {e.app && <Link to={`/apps/${seg(e.app)}`}>{e.app}</Link>}
        {e.instance && (e.app ? <Link to={`/apps/${seg(e.app)}/instances/${seg(e.instance)}`}>{e.instance}</Link> : <span>{e.instance}</span>)}
        {e.node && <Link to={`/nodes#${seg(e.node)}`}>{e.node}</Link>}
      </span>
      <span className="message">{e.message}</span>
    </li>
  );
});
