// Every event, live, filtered by app, instance or node (by the server) and by type or level (here).
import { useState, type FormEvent } from 'react';
import { useTitle } from '../lib/router';
import { EventList, useLiveEvents, type EventFilter } from './event-list';

export function EventsPage() {
  useTitle('Events');
  const initial = new URLSearchParams(location.search);
  const [filter, setFilter] = useState<EventFilter>({ app: initial.get('app') ?? undefined, instance: initial.get('instance') ?? undefined, node: initial.get('node') ?? undefined, limit: 500 });
  const [draft, setDraft] = useState({ app: filter.app ?? '', instance: filter.instance ?? '', node: filter.node ?? '' });
  const [type, setType] = useState('');
  const [level, setLevel] = useState('');
  const { events, open } = useLiveEvents(filter);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const next = { app: draft.app || undefined, instance: draft.instance || undefined, node: draft.node || undefined, limit: 500 };
    setFilter(next);
    history.replaceState(null, '', `/events?${new URLSearchParams(Object.entries(next).filter(([k, v]) => k !== 'limit' && v) as [string, string][]).toString()}`);
  };
  const shown = events.filter((e) => (!type || e.type.includes(type)) && (!level || e.level === level));
  return (
    <>
      <h1>Events</h1>
      <form className="filters" onSubmit={submit}>
        {(['app', 'instance', 'node'] as const).map((field) => (
          <label key={field}>
            {field[0]!.toUpperCase() + field.slice(1)} <input value={draft[field]} onChange={(e) => setDraft({ ...draft, [field]: e.target.value })} />
          </label>
        ))}
        <button type="submit">Filter</button>
        <label>
          Type <input value={type} onChange={(e) => setType(e.target.value)} placeholder="e.g. instance." />
        </label>
        <label>
          Level{' '}
          <select value={level} onChange={(e) => setLevel(e.target.value)}>
            <option value="">any</option>
            <option>info</option>
            <option>warning</option>
            <option>error</option>
          </select>
        </label>
      </form>
      <EventList events={shown} open={open} empty="No events match." />
    </>
  );
}
