// Entries (desired, running, healthy, scale) and their instances, one memoized row each.
import { memo, useMemo, useState, type FormEvent } from 'react';
import { post } from '../../lib/api';
import { ago } from '../../lib/format';
import type { AppDetailResponse, Instance, InstanceStatus } from '../../lib/model';
import { Link, seg } from '../../lib/router';
import { ActionButton, Live, StateBadge, TableHead } from '../../app/ui';
import type { LiveInstances } from './live-instances';

/** Memoized: the app page re-renders for its events and rollout too, which change no row. */
export const InstancesTab = memo(function InstancesTab({ app, detail, live, canWrite, onScaled }: { app: string; detail: AppDetailResponse; live: LiveInstances; canWrite: boolean; onScaled: () => void }) {
  const byEntry = useMemo(() => {
    const groups = new Map<string, Instance[]>();
    for (const entry of Object.keys(detail.app.spec.entrypoints)) groups.set(entry, []);
    for (const instance of live.instances.values()) {
      if (instance.desired === 'removed') continue;
      const list = groups.get(instance.entry) ?? [];
      list.push(instance);
      groups.set(instance.entry, list);
    }
    for (const list of groups.values()) list.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    return groups;
  }, [live.instances, detail.app.spec.entrypoints]);
  return (
    <section aria-label="Instances">
      <Live open={live.open} />
      {[...byEntry].map(([entry, instances]) => {
        const spec = detail.app.spec.entrypoints[entry];
        const running = instances.filter((i) => live.statuses.get(i.id)?.state === 'running').length;
        const unplaced = detail.unplaced.find((u) => u.entry === entry);
        return (
          <div key={entry} className="entry">
            <div className="entry-head">
              <h2>{entry}</h2>
              <span className="muted">
                {detail.summary.entries.find((e) => e.name === entry)?.runtime ?? ''} · <span data-testid={`running-${entry}`}>{running}</span>/{spec?.replicas ?? 0} running
              </span>
              {canWrite && spec && <ScaleForm app={app} entry={entry} replicas={spec.replicas} onScaled={onScaled} />}
            </div>
            {unplaced && (
              <p className="warn">
                {unplaced.count} not placed: {unplaced.reason}
              </p>
            )}
            <div className="table-wrap">
              <table className="table instances">
                <TableHead columns={['Instance', 'Node', 'Release', 'State', 'Health', 'Restarts', 'Ports', 'Age', canWrite && 'Actions']} />
                <tbody>
                  {instances.map((i) => (
                    <InstanceRow key={i.id} app={app} instance={i} status={live.statuses.get(i.id)} canWrite={canWrite} />
                  ))}
                </tbody>
              </table>
            </div>
          </div>
        );
      })}
    </section>
  );
});

/** Re-rendered only when its own instance or status record changed (new objects come only for changed keys). */
const InstanceRow = memo(function InstanceRow({ app, instance: i, status, canWrite }: { app: string; instance: Instance; status: InstanceStatus | undefined; canWrite: boolean }) {
  return (
    <tr data-instance={i.id}>
      <td>
        <Link to={`/apps/${seg(app)}/instances/${seg(i.id)}`}>{i.id}</Link>
      </td>
      <td>
        <Link to={`/nodes#${seg(i.node)}`}>{i.node}</Link>
      </td>
      <td>{i.release}</td>
      <td>
        <StateBadge state={i.desired === 'stopped' && !status ? 'stopped' : (status?.state ?? 'pending')} />
      </td>
      <td>{status?.healthy === null || status?.healthy === undefined ? '–' : status.healthy ? 'healthy' : 'unhealthy'}</td>
      <td>{status?.restarts ?? 0}</td>
      <td>{i.ports.map((p) => `${p.name}:${p.host}`).join(' ')}</td>
      <td>{ago(status?.startedAt ?? i.createdAt)}</td>
      {canWrite && (
        <td className="row-actions">
          <InstanceActions id={i.id} stopped={i.desired === 'stopped'} />
        </td>
      )}
    </tr>
  );
});

/** Restart and rebuild; stop (it keeps its place, no replacement starts) or start it again. */
export function InstanceActions({ id, stopped }: { id: string; stopped: boolean }) {
  return (
    <>
      {stopped ? (
        <ActionButton className="small" action={() => post(`/v1/instances/${seg(id)}/start`)} label={`Start ${id}`}>
          Start
        </ActionButton>
      ) : (
        <ActionButton className="small" action={() => post(`/v1/instances/${seg(id)}/stop`)} confirm={`Stop ${id}? It stays stopped (no replacement starts) until you start it.`} label={`Stop ${id}`}>
          Stop
        </ActionButton>
      )}
      <ActionButton className="small" action={() => post(`/v1/instances/${seg(id)}/restart`)} label={`Restart ${id}`}>
        Restart
      </ActionButton>
      <ActionButton className="small" action={() => post(`/v1/instances/${seg(id)}/rebuild`)} confirm={`Rebuild ${id} (a new container in the same place)?`} label={`Rebuild ${id}`}>
        Rebuild
      </ActionButton>
    </>
  );
}

function ScaleForm({ app, entry, replicas, onScaled }: { app: string; entry: string; replicas: number; onScaled: () => void }) {
  const [value, setValue] = useState(String(replicas));
  const [error, setError] = useState<string>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      await post(`/v1/apps/${seg(app)}/entries/${seg(entry)}/scale`, { replicas: Number(value) });
      onScaled();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form className="inline" onSubmit={(e) => void submit(e)}>
      <label>
        Replicas
        <input type="number" min={0} max={10000} value={value} onChange={(e) => setValue(e.target.value)} aria-label={`Replicas of ${entry}`} />
      </label>
      <button type="submit">Scale</button>
      {error && (
        <span role="alert" className="error-inline">
          {error}
        </span>
      )}
    </form>
  );
}
