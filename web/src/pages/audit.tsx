// The audit log: who changed what, when, from where, with what outcome; filtered by user, team, age.
import { useEffect, useState, type FormEvent } from 'react';
import { get, query } from '../lib/api';
import type { AuditRecord } from '../lib/model';
import { Link, seg, useTitle } from '../lib/router';
import { when } from '../lib/format';
import { ErrorBox, TableHead } from '../app/ui';

interface Filter {
  user: string;
  team: string;
  since: string;
}

export function AuditPage() {
  useTitle('Audit');
  const [filter, setFilter] = useState<Filter>({ user: '', team: '', since: '24h' });
  const [draft, setDraft] = useState<Filter>(filter);
  const [entries, setEntries] = useState<AuditRecord[]>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    setError(undefined);
    get<{ entries: AuditRecord[] }>(`/v1/audit${query({ user: filter.user, team: filter.team, since: filter.since, limit: 500 })}`).then((a) => setEntries(a.entries), setError);
  }, [filter]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setFilter(draft);
  };
  return (
    <>
      <h1>Audit</h1>
      <form className="filters" onSubmit={submit}>
        <label>
          User <input value={draft.user} onChange={(e) => setDraft({ ...draft, user: e.target.value })} />
        </label>
        <label>
          Team <input value={draft.team} onChange={(e) => setDraft({ ...draft, team: e.target.value })} />
        </label>
        <label>
          Since <input value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} placeholder="24h" size={6} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={error} />
      {entries && entries.length === 0 && <p className="muted">Nothing in this range.</p>}
      {entries && entries.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <TableHead columns={['When', 'Who', 'Request', 'Target', 'Summary', 'Outcome', 'From']} />
            <tbody>
              {entries.map((a, n) => (
                <tr key={`${a.time}-${n}`} className={`outcome-${a.outcome}`}>
                  <td>{when(a.time)}</td>
                  <td>
                    {a.who}
                    {a.role && <small> ({a.role})</small>}
                  </td>
                  <td>
                    <code>
                      {a.method} {a.route}
                    </code>
                  </td>
                  <td>
                    {Object.entries(a.target).map(([k, v]) => (
                      <span key={k} className="label">
                        {k === 'app' ? <Link to={`/apps/${seg(v)}`}>{v}</Link> : `${k}=${v}`}
                      </span>
                    ))}
                  </td>
                  <td>{a.summary}</td>
                  <td>
                    {a.outcome} ({a.status})
                  </td>
                  <td>{a.from}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
