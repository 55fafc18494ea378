// An app's instances and their statuses, live: two watch streams (/v1/watch?prefix=instances and
// prefix=status, each for this app only) give a snapshot and then every change. Changes are gathered and applied once per
// animation frame, and only the changed records get new objects, so a row whose instance did not
// change is not re-rendered (a 500-instance app stays cheap under a stream of status reports).
import { useEffect, useMemo, useRef, useState } from 'react';
import type { Instance, InstanceStatus } from '../../lib/model';
import { useEventSource } from '../../lib/streams';

interface WatchItem {
  key: string;
  value: unknown;
}
interface WatchChange {
  type: 'put' | 'delete';
  key: string;
  value?: unknown;
}

export interface LiveInstances {
  instances: ReadonlyMap<string, Instance>;
  statuses: ReadonlyMap<string, InstanceStatus>;
  /** Both streams have sent their snapshot. */
  ready: boolean;
  open: boolean;
}

type Pending = { reset?: Map<string, unknown>; puts: Map<string, unknown | null> };

function useWatchedMap<T>(prefix: 'instances' | 'status', app: string, keyPrefix: string, onOpen: (open: boolean) => void) {
  const [map, setMap] = useState<ReadonlyMap<string, T>>(new Map());
  const [ready, setReady] = useState(false);
  const pending = useRef<Pending>({ puts: new Map() });
  const frame = useRef(0);
  const flush = () => {
    frame.current = 0;
    const { reset, puts } = pending.current;
    pending.current = { puts: new Map() };
    setMap((current) => {
      const next = new Map((reset ?? current) as Map<string, T>);
      for (const [id, value] of puts) {
        if (value === null) next.delete(id);
        else next.set(id, value as T);
      }
      return next;
    });
    if (reset) setReady(true);
  };
  const schedule = () => {
    frame.current ||= requestAnimationFrame(flush);
  };
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  const idOf = (key: string) => (key.startsWith(keyPrefix) ? key.slice(keyPrefix.length) : undefined);
  useEventSource(
    `/v1/watch?prefix=${prefix}&app=${encodeURIComponent(app)}`,
    {
      snapshot: (data: { items: WatchItem[] }) => {
        const reset = new Map<string, unknown>();
        for (const item of data.items) {
          const id = idOf(item.key);
          if (id !== undefined) reset.set(id, item.value);
        }
        pending.current = { reset, puts: new Map() };
        schedule();
      },
      change: (data: { changes: WatchChange[] }) => {
        for (const change of data.changes) {
          const id = idOf(change.key);
          if (id !== undefined) pending.current.puts.set(id, change.type === 'put' ? change.value : null);
        }
        schedule();
      },
    },
    onOpen,
  );
  return { map, ready };
}

/** The page remounts per app (keyed by its name), so the watched prefix never changes under a hook. */
export function useLiveInstances(app: string): LiveInstances {
  const [openInstances, setOpenInstances] = useState(false);
  const [openStatus, setOpenStatus] = useState(false);
  const instances = useWatchedMap<Instance>('instances', app, `/instances/${app}/`, setOpenInstances);
  // Statuses are keyed by instance id alone (the server picks this app's): kept to the instances known here.
  const all = useWatchedMap<InstanceStatus>('status', app, '/status/', setOpenStatus);
  const [statuses, setStatuses] = useState<ReadonlyMap<string, InstanceStatus>>(new Map());
  useEffect(() => {
    setStatuses((current) => {
      const next = new Map<string, InstanceStatus>();
      let same = true;
      for (const id of instances.map.keys()) {
        const status = all.map.get(id);
        if (status) next.set(id, status);
        if (current.get(id) !== status) same = false;
      }
      return same && next.size === current.size ? current : next;
    });
  }, [instances.map, all.map]);
  const ready = instances.ready && all.ready;
  const open = openInstances && openStatus;
  return useMemo(() => ({ instances: instances.map, statuses, ready, open }), [instances.map, statuses, ready, open]);
}
