// Release history with what each changed, a diff between any two, and rolling back to one.
import { useEffect, useState } from 'react';
import { get, post, query } from '../../lib/api';
import type { Change, ReleaseRecord } from '../../lib/model';
import { seg } from '../../lib/router';
import { when } from '../../lib/format';
import { ActionButton, ErrorBox, TableHead } from '../../app/ui';

const show = (value: unknown) => (value === undefined ? '' : JSON.stringify(value));

export function ChangeList({ changes }: { changes: Change[] }) {
  if (changes.length === 0) return <p className="muted">No changes.</p>;
  return (
    <ul className="changes">
      {changes.map((c) => (
        <li key={c.path} className={`change ${c.kind}`}>
          <code>{c.path}</code> {c.kind === 'added' ? <>added {show(c.to)}</> : c.kind === 'removed' ? <>removed (was {show(c.from)})</> : <>{show(c.from)} → {show(c.to)}</>}
        </li>
      ))}
    </ul>
  );
}

export function ReleasesTab({ app, current, canWrite }: { app: string; current: number; canWrite: boolean }) {
  const [releases, setReleases] = useState<ReleaseRecord[]>();
  const [error, setError] = useState<unknown>();
  const [from, setFrom] = useState(Math.max(1, current - 1));
  const [to, setTo] = useState(current);
  const [diff, setDiff] = useState<Change[]>();
  useEffect(() => void get<{ releases: ReleaseRecord[] }>(`/v1/apps/${seg(app)}/releases`).then((r) => setReleases(r.releases.sort((a, b) => a.release - b.release)), setError), [app, current]);
  useEffect(() => {
    if (from === to) return setDiff([]);
    void get<{ changes: Change[] }>(`/v1/apps/${seg(app)}/diff${query({ from, to })}`).then((d) => setDiff(d.changes), setError);
  }, [app, from, to]);
  const numbers = (releases ?? []).map((r) => r.release);
  return (
    <section aria-label="Releases">
      <ErrorBox error={error} />
      <div className="diff-picker">
        <label>
          Diff from{' '}
          <select value={from} onChange={(e) => setFrom(Number(e.target.value))}>
            {numbers.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>{' '}
        <label>
          to{' '}
          <select value={to} onChange={(e) => setTo(Number(e.target.value))}>
            {numbers.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
      </div>
      {diff && <ChangeList changes={diff} />}
      <table className="table">
        <TableHead columns={['Release', 'When', 'By', 'Changes', canWrite && '']} />
        <tbody>
          {[...(releases ?? [])].reverse().map((r) => (
            <tr key={r.release}>
              <td>
                {r.release}
                {r.release === current && <span className="badge"> current</span>}
              </td>
              <td>{when(r.createdAt)}</td>
              <td>
                {r.createdBy}
                {r.approvedBy && <small> (approved by {r.approvedBy})</small>}
              </td>
              <td>
                {r.note && <div>{r.note}</div>}
                <small>{r.changes.map((c) => c.path).join(', ') || '–'}</small>
              </td>
              {canWrite && (
                <td>
                  {r.release !== current && (
                    <ActionButton className="small" action={() => post(`/v1/apps/${seg(app)}/rollback`, { release: r.release })} confirm={`Roll ${app} back to release ${r.release}?`}>
                      Roll back to {r.release}
                    </ActionButton>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
