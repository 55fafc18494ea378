// One instance: where it runs, its status, stop/start, restart and rebuild, its logs and a terminal into it.
import type { InstanceStatus } from '../../lib/model';
import { Link, seg } from '../../lib/router';
import { useCan } from '../../lib/session';
import { ago, cpu, when } from '../../lib/format';
import { StateBadge } from '../../app/ui';
import type { LiveInstances } from './live-instances';
import { InstanceActions } from './instances';
import { LogsTab } from './logs';
import { lazy, Suspense, useState } from 'react';

// xterm.js is most of the console's script: loaded when a terminal is first opened.
const Terminal = lazy(() => import('../terminal').then((m) => ({ default: m.Terminal })));

export function InstanceDetail({ app, id, live, canWrite }: { app: string; id: string; live: LiveInstances; canWrite: boolean }) {
  const instance = live.instances.get(id);
  const status: InstanceStatus | undefined = live.statuses.get(id);
  // The exec route's rule is write on the instance (src/server/policy.ts): owners, developers, admins.
  const execAllowed = useCan('write', `instance/${id}`);
  const canExec = execAllowed === true;
  const [terminal, setTerminal] = useState(false);
  if (!instance) return <p className="muted">{live.ready ? `No instance ${id} in ${app} (it may have been replaced).` : 'Loading…'}</p>;
  const running = status?.state === 'running' || status?.state === 'unhealthy' || status?.state === 'starting';
  return (
    <section aria-label={`Instance ${id}`} className="instance-detail" data-can-exec={execAllowed === undefined ? undefined : String(execAllowed)}>
      <h2>
        {id} <StateBadge state={status?.state ?? 'pending'} />
      </h2>
      <dl className="facts">
        <dt>Entry</dt>
        <dd>{instance.entry}</dd>
        <dt>Node</dt>
        <dd>
          <Link to={`/nodes#${seg(instance.node)}`}>{instance.node}</Link>
        </dd>
        <dt>Release</dt>
        <dd>{instance.release}</dd>
        <dt>Runtime</dt>
        <dd>{instance.runtime}</dd>
        <dt>CPU</dt>
        <dd>{instance.cpu ? (instance.cpu.mode === 'bound' ? `cores ${instance.cpu.exclusive.join(', ') || '–'}${instance.cpu.fragment ? ` + ${instance.cpu.fragment.shares}/${instance.cpu.shareBase} of core ${instance.cpu.fragment.core}` : ''}` : `${cpu(instance.cpu.shares / instance.cpu.shareBase)} shared`) : '–'}</dd>
        <dt>Ports</dt>
        <dd>{instance.ports.map((p) => `${p.name} ${p.container ?? ''}→${p.host}/${p.protocol}`).join(', ') || '–'}</dd>
        <dt>Health</dt>
        <dd>{status?.healthy === null || status?.healthy === undefined ? '–' : status.healthy ? `healthy for ${ago(status.healthySince)}` : 'unhealthy'}</dd>
        <dt>Restarts</dt>
        <dd>{status?.restarts ?? 0}</dd>
        <dt>Started</dt>
        <dd>{status?.startedAt ? when(status.startedAt) : '–'}</dd>
        {status?.message && (
          <>
            <dt>Message</dt>
            <dd>{status.message}</dd>
          </>
        )}
      </dl>
      <div className="actions">
        {canWrite && <InstanceActions id={id} stopped={instance.desired === 'stopped'} />}
        {canExec && running && (
          <button type="button" onClick={() => setTerminal((t) => !t)} aria-expanded={terminal}>
            {terminal ? 'Close terminal' : 'Terminal'}
          </button>
        )}
      </div>
      {terminal && (
        <Suspense fallback={<p className="loading">Loading the terminal…</p>}>
          <Terminal instance={id} onClose={() => setTerminal(false)} />
        </Suspense>
      )}
      <h3>Logs</h3>
      <LogsTab app={app} instances={live.instances} only={id} />
    </section>
  );
}
