// Overview: every app with running/desired and healthy, nodes up and down, CPU and memory
// allocated against capacity, and the latest events (live).
import { useCallback, useEffect, useState } from 'react';
import { get } from '../lib/api';
import { bytes, cpu } from '../lib/format';
import type { AppListResponse, NodeListResponse } from '../lib/model';
import { Link, seg, useTitle } from '../lib/router';
import { ErrorBox, Meter, TableHead } from '../app/ui';
import { EventList, useLiveEvents } from './event-list';
import { useCan } from '../lib/session';

export function Overview() {
  useTitle('Overview');
  const [apps, setApps] = useState<AppListResponse['apps']>();
  const [nodes, setNodes] = useState<NodeListResponse['nodes']>();
  const [error, setError] = useState<unknown>();
  // Members read only their teams' apps: the cluster's nodes are for admins and operators.
  const canReadNodes = useCan('read', 'node');
  const load = useCallback(() => {
    get<AppListResponse>('/v1/apps').then((a) => setApps(a.apps), setError);
    if (canReadNodes) get<NodeListResponse>('/v1/nodes').then((n) => setNodes(n.nodes), setError);
  }, [canReadNodes]);
  useEffect(load, [load]);
  // Counts change with events (placements, exits, health, nodes): each one refreshes the summary.
  const { events, open } = useLiveEvents({ limit: 15 }, load);

  const up = nodes?.filter((n) => n.state !== 'down').length ?? 0;
  const capacity = nodes?.reduce((sum, n) => ({ cpu: sum.cpu + n.cores - n.reserved.cores, mem: sum.mem + n.memoryBytes - n.reserved.memoryBytes }), { cpu: 0, mem: 0 });
  const allocated = nodes?.reduce((sum, n) => ({ cpu: sum.cpu + n.allocated.cpu, mem: sum.mem + n.allocated.memoryBytes }), { cpu: 0, mem: 0 });
  return (
    <>
      <h1>Overview</h1>
      <ErrorBox error={error} />
      <div className="cards">
        {canReadNodes && <section className="card" aria-labelledby="nodes-h">
          <h2 id="nodes-h">
            <Link to="/nodes">Nodes</Link>
          </h2>
          <p className="big">
            <span className="ok">{up} up</span>
            {nodes && nodes.length - up > 0 && <span className="bad"> · {nodes.length - up} down</span>}
          </p>
          {capacity && allocated && (
            <>
              <Meter label="CPU allocated" used={allocated.cpu} total={capacity.cpu} format={cpu} />
              <Meter label="Memory allocated" used={allocated.mem} total={capacity.mem} format={bytes} />
            </>
          )}
        </section>}
        <section className="card wide" aria-labelledby="apps-h">
          <h2 id="apps-h">Apps</h2>
          {apps && apps.length === 0 && (
            <p>
              No apps yet. <Link to="/deploy">Deploy one</Link>.
            </p>
          )}
          {apps && apps.length > 0 && (
            <div className="table-wrap">
            <table className="table">
              <TableHead columns={['App', 'Env', 'Release', 'Running', 'Healthy']} />
              <tbody>
                {apps.map((app) => {
                  const desired = app.entries.reduce((s, e) => s + e.desired, 0);
                  const running = app.entries.reduce((s, e) => s + e.running, 0);
                  const healthy = app.entries.reduce((s, e) => s + e.healthy, 0);
                  return (
                    <tr key={app.name}>
                      <td>
                        <Link to={`/apps/${seg(app.name)}`}>{app.name}</Link>
                        {app.stopped && <span className="badge state-stopped"> stopped</span>}
                      </td>
                      <td>{app.env}</td>
                      <td>{app.release}</td>
                      <td className={running < desired ? 'warn' : 'ok'}>
                        {running}/{desired}
                      </td>
                      <td className={healthy < desired ? 'warn' : 'ok'}>{healthy}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            </div>
          )}
        </section>
      </div>
      <section aria-labelledby="events-h">
        <h2 id="events-h">
          <Link to="/events">Recent events</Link>
        </h2>
        <EventList events={events} open={open} />
      </section>
    </>
  );
}
