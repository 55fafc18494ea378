// Logs: a live tail of the whole app (merged by time, each line prefixed with its instance) or
// of one instance, with a search over what is shown and a download of it.
import { useEffect, useMemo, useRef, useState } from 'react';
import { query } from '../../lib/api';
import type { Instance } from '../../lib/model';
import { seg } from '../../lib/router';
import { followLines } from '../../lib/streams';
import { ErrorBox, Live } from '../../app/ui';

/** Lines kept in the page: the oldest go first past this. */
const MAX_LINES = 5000;

export function LogsTab({ app, instances, only }: { app: string; instances: ReadonlyMap<string, Instance>; only?: string }) {
  const [instance, setInstance] = useState(only ?? '');
  const [lines, setLines] = useState<string[]>([]);
  const [search, setSearch] = useState('');
  const [error, setError] = useState<unknown>();
  const [open, setOpen] = useState(false);
  const bottom = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  useEffect(() => {
    const controller = new AbortController();
    setLines([]);
    setError(undefined);
    setOpen(true);
    const url = instance ? `/v1/instances/${seg(instance)}/logs${query({ follow: 1, tail: 200 })}` : `/v1/apps/${seg(app)}/logs${query({ follow: 1, tail: 200 })}`;
    followLines(url, controller.signal, (more) => setLines((current) => [...current, ...more].slice(-MAX_LINES)))
      .catch((err: Error) => {
        if (!controller.signal.aborted) setError(err);
      })
      .finally(() => setOpen(false));
    return () => controller.abort();
  }, [app, instance]);
  const shown = useMemo(() => {
    if (!search) return lines;
    const needle = search.toLowerCase();
    return lines.filter((l) => l.toLowerCase().includes(needle));
  }, [lines, search]);
  useEffect(() => {
    if (follow) bottom.current?.scrollIntoView({ block: 'nearest' });
  }, [shown, follow]);
  const download = () => {
    const blob = new Blob([shown.join('\n') + '\n'], { type: 'text/plain' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `${instance || app}.log`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  };
  return (
    <section aria-label="Logs" className="logs">
      <div className="toolbar">
        {!only && (
          <label>
            Instance{' '}
            <select value={instance} onChange={(e) => setInstance(e.target.value)}>
              <option value="">all of {app}</option>
              {[...instances.values()]
                .filter((i) => i.desired !== 'removed')
                .map((i) => (
                  <option key={i.id} value={i.id}>
                    {i.id}
                  </option>
                ))}
            </select>
          </label>
        )}
        <label>
          Search <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="text in a line" />
        </label>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
        </label>
        <button type="button" onClick={download} disabled={shown.length === 0}>
          Download
        </button>
        <Live open={open} />
        <span className="muted">
          {shown.length} of {lines.length} lines
        </span>
      </div>
      <ErrorBox error={error} />
      <pre className="log-lines" tabIndex={0} aria-label="Log lines">
        {shown.join('\n')}
        <div ref={bottom} />
      </pre>
    </section>
  );
}
