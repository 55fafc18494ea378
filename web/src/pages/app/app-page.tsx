// The app page: its entries and instances live, the rollout under way, releases, spec, logs, events.
import { useCallback, useEffect, useState } from 'react';
import { get, post } from '../../lib/api';
import type { AppDetailResponse } from '../../lib/model';
import { Link, seg, useTitle } from '../../lib/router';
import { useCan } from '../../lib/session';
import { ActionButton, ErrorBox } from '../../app/ui';
import { EventList, useLiveEvents, useThrottled } from '../event-list';
import { useLiveInstances } from './live-instances';
import { InstancesTab } from './instances';
import { RolloutPanel, useRollout } from './rollout';
import { ReleasesTab } from './releases';
import { SpecTab } from './spec-tab';
import { LogsTab } from './logs';
import { InstanceDetail } from './instance-detail';

const TABS: [string, string][] = [
  ['instances', 'Instances'],
  ['releases', 'Releases'],
  ['spec', 'Spec'],
  ['logs', 'Logs'],
  ['events', 'Events'],
];

export function AppPage({ app, tab, instance }: { app: string; tab: string; instance?: string }) {
  useTitle(app);
  const [detail, setDetail] = useState<AppDetailResponse>();
  const [error, setError] = useState<unknown>();
  const load = useCallback(() => void get<AppDetailResponse>(`/v1/apps/${seg(app)}`).then(setDetail, setError), [app]);
  useEffect(load, [load]);
  const writable = useCan('write', `app/${app}`);
  const canWrite = writable === true;
  const live = useLiveInstances(app);
  const rollout = useRollout(app);
  // The app's events say when its record, rollout or summary moved: refresh those (throttled).
  const { events, open } = useLiveEvents({ app, limit: 200 }, () => {
    load();
    rollout.reload();
  });
  const refreshRollout = useThrottled(rollout.reload, 500);
  useEffect(() => refreshRollout?.(), [live.instances, live.statuses, refreshRollout]);

  if (error && !detail) return <ErrorBox error={error} />;
  if (!detail) return <p className="loading">Loading…</p>;
  const record = detail.app;
  const base = `/apps/${seg(app)}`;
  return (
    <>
      {/* data-can-write: whether the write buttons are decided yet (tests wait for it). */}
      <div className="title-row" data-can-write={writable === undefined ? undefined : String(writable)}>
        <h1>
          {app} <small>release {record.release}</small>
        </h1>
        <div className="meta">
          env <b>{record.env}</b>
          {record.spec.team && (
            <>
              {' '}
              · team <b>{record.spec.team}</b>
            </>
          )}{' '}
          · by {record.updatedBy}
          {record.stopped && <span className="badge state-stopped">stopped</span>}
        </div>
        {canWrite && (
          <div className="actions">
            {record.stopped ? <ActionButton action={() => post(`/v1/apps/${seg(app)}/start`).then(load)}>Start app</ActionButton> : <ActionButton action={() => post(`/v1/apps/${seg(app)}/stop`).then(load)} confirm={`Stop every instance of ${app}?`}>Stop app</ActionButton>}
          </div>
        )}
      </div>
      <ErrorBox error={error} />
      <RolloutPanel app={app} state={rollout} canWrite={canWrite} release={record.release} />
      <nav className="tabs" aria-label="App sections">
        {TABS.map(([key, label]) => (
          <Link key={key} to={key === 'instances' ? base : `${base}/${key}`} aria-current={tab === key || (key === 'instances' && tab === 'instance') ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      {tab === 'instances' && <InstancesTab app={app} detail={detail} live={live} canWrite={canWrite} onScaled={load} />}
      {tab === 'instance' && instance && <InstanceDetail app={app} id={instance} live={live} canWrite={canWrite} />}
      {tab === 'releases' && <ReleasesTab app={app} current={record.release} canWrite={canWrite} />}
      {tab === 'spec' && <SpecTab record={record} canWrite={canWrite} onApplied={load} />}
      {tab === 'logs' && <LogsTab app={app} instances={live.instances} />}
      {tab === 'events' && <EventList events={events} open={open} />}
      {tab !== 'instance' && !TABS.some(([key]) => key === tab) && (
        <p>
          No such section: <Link to={base}>its instances</Link>.
        </p>
      )}
    </>
  );
}
