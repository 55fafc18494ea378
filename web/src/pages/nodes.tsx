// Nodes: state, pool, labels, memory and CPU allocated, each core as a cell showing which
// instance holds it (whole, or a fragment of it), cordon/drain/uncordon, and the capacity query.
import { memo, useCallback, useEffect, useState, type FormEvent } from 'react';
import { get, post, query } from '../lib/api';
import { bytes, cpu } from '../lib/format';
import type { AppListResponse, CapacityResult, InstanceListResponse, InstanceView, NodeListResponse } from '../lib/model';
import { Link, seg, useTitle } from '../lib/router';
import { useCan } from '../lib/session';
import { ActionButton, ErrorBox, Live, Meter, StateBadge } from '../app/ui';
import { useLiveEvents } from './event-list';

type NodeItem = NodeListResponse['nodes'][number];

export function NodesPage() {
  useTitle('Nodes');
  const [nodes, setNodes] = useState<NodeItem[]>();
  const [instances, setInstances] = useState<InstanceView[]>([]);
  const [error, setError] = useState<unknown>();
  const load = useCallback(() => {
    get<NodeListResponse>('/v1/nodes').then((n) => setNodes(n.nodes), setError);
    get<InstanceListResponse>(`/v1/instances${query({ limit: 5000 })}`).then((i) => setInstances(i.instances), setError);
  }, []);
  useEffect(load, [load]);
  // Node and placement events change what this page shows: each refreshes it (throttled).
  const { open } = useLiveEvents({ limit: 1 }, load);
  const canWrite = useCan('write', 'node') === true;
  useEffect(() => {
    if (nodes && location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
  }, [nodes]);
  return (
    <>
      <h1>Nodes</h1>
      <Live open={open} />
      <ErrorBox error={error} />
      <CapacityQuery />
      <div className="nodes">
        {nodes?.map((node) => (
          <NodeCard key={node.name} node={node} instances={instances.filter((i) => i.node === node.name && i.desired !== 'removed')} canWrite={canWrite} onChanged={load} />
        ))}
      </div>
    </>
  );
}

const NodeCard = memo(function NodeCard({ node, instances, canWrite, onChanged }: { node: NodeItem; instances: InstanceView[]; canWrite: boolean; onChanged: () => void }) {
  const act = (action: string) => () => post(`/v1/nodes/${seg(node.name)}/${action}`).then(onChanged);
  const usable = node.cores - node.reserved.cores;
  return (
    <section className="card node" id={node.name} aria-labelledby={`node-${node.name}`} data-state={node.state}>
      <div className="node-head">
        <h2 id={`node-${node.name}`}>{node.name}</h2>
        <StateBadge state={node.state} />
        <span className="muted">
          pool {node.pool}
          {node.dedicatedTo && ` · dedicated to ${node.dedicatedTo}`} · {node.address} · agent {node.agentVersion}
        </span>
        {canWrite && (
          <div className="actions">
            {node.state === 'ready' && <ActionButton action={act('cordon')}>Cordon</ActionButton>}
            {(node.state === 'ready' || node.state === 'cordoned') && (
              <ActionButton action={act('drain')} confirm={`Drain ${node.name}: move all its instances elsewhere?`}>
                Drain
              </ActionButton>
            )}
            {(node.state === 'cordoned' || node.state === 'draining') && <ActionButton action={act('uncordon')}>Uncordon</ActionButton>}
          </div>
        )}
      </div>
      {Object.keys(node.labels).length > 0 && (
        <p className="labels">
          {Object.entries(node.labels).map(([k, v]) => (
            <span key={k} className="label">
              {k}={v}
            </span>
          ))}
        </p>
      )}
      <Meter label="CPU allocated" used={node.allocated.cpu} total={usable} format={cpu} />
      <Meter label="Memory allocated" used={node.allocated.memoryBytes} total={node.memoryBytes - node.reserved.memoryBytes} format={bytes} />
      <CoreGrid node={node} instances={instances} />
      <p className="muted">
        {node.allocated.instances} instances · runtimes {node.runtimes.join(', ')}
      </p>
    </section>
  );
});

/** Each core of the node: reserved for the host, held whole by one instance, or shared in fragments. */
function CoreGrid({ node, instances }: { node: NodeItem; instances: InstanceView[] }) {
  const holders: { id: string; app: string; shares?: number }[][] = Array.from({ length: node.cores }, () => []);
  const shared: InstanceView[] = [];
  for (const i of instances) {
    if (i.cpu?.mode === 'bound') {
      for (const core of i.cpu.exclusive) holders[core]?.push({ id: i.id, app: i.app });
      if (i.cpu.fragment) holders[i.cpu.fragment.core]?.push({ id: i.id, app: i.app, shares: i.cpu.fragment.shares });
    } else shared.push(i);
  }
  return (
    <div>
      <ol className="cores" aria-label={`Cores of ${node.name}`}>
        {holders.map((held, core) => {
          const reserved = core < node.reserved.cores;
          const whole = held.find((h) => h.shares === undefined);
          return (
            <li key={core} className={`core ${reserved ? 'reserved' : whole ? 'whole' : held.length > 0 ? 'fragments' : 'free'}`} title={reserved ? `core ${core}: reserved for the host` : held.length === 0 ? `core ${core}: free (shared pool)` : `core ${core}: ${held.map((h) => `${h.id}${h.shares === undefined ? '' : ` ${h.shares}/${node.shareBase}`}`).join(', ')}`}>
              <span className="core-n">{core}</span>
              {reserved && <span className="muted">host</span>}
              {held.map((h) => (
                <Link key={h.id} to={`/apps/${seg(h.app)}/instances/${seg(h.id)}`}>
                  {h.id}
                  {h.shares !== undefined && <small> {Math.round((h.shares / node.shareBase) * 100)}%</small>}
                </Link>
              ))}
            </li>
          );
        })}
      </ol>
      {shared.length > 0 && (
        <p className="shared">
          On the shared pool:{' '}
          {shared.map((i) => (
            <Link key={i.id} to={`/apps/${seg(i.app)}/instances/${seg(i.id)}`}>
              {i.id}
              {i.cpu && <small> {cpu(i.cpu.shares / i.cpu.shareBase)}</small>}
            </Link>
          ))}
        </p>
      )}
    </div>
  );
}

/** "How many more of this entry fit, and where" (GET /v1/capacity). */
function CapacityQuery() {
  const [apps, setApps] = useState<AppListResponse['apps']>([]);
  const [app, setApp] = useState('');
  const [entry, setEntry] = useState('');
  const [result, setResult] = useState<CapacityResult>();
  const [error, setError] = useState<unknown>();
  useEffect(() => void get<AppListResponse>('/v1/apps').then((a) => setApps(a.apps), setError), []);
  const entries = apps.find((a) => a.name === app)?.entries ?? [];
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      setResult(await get<CapacityResult>(`/v1/capacity${query({ app, entry })}`));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <details className="capacity">
      <summary>Capacity: how many more of an entry fit, and where</summary>
      <form className="inline" onSubmit={(e) => void submit(e)}>
        <label>
          App{' '}
          <select value={app} onChange={(e) => (setApp(e.target.value), setEntry(''))} required>
            <option value="">–</option>
            {apps.map((a) => (
              <option key={a.name}>{a.name}</option>
            ))}
          </select>
        </label>
        <label>
          Entry{' '}
          <select value={entry} onChange={(e) => setEntry(e.target.value)} required>
            <option value="">–</option>
            {entries.map((e) => (
              <option key={e.name}>{e.name}</option>
            ))}
          </select>
        </label>
        <button type="submit">Ask</button>
      </form>
      <ErrorBox error={error} />
      {result && (
        <div role="status">
          <p>
            <b>{result.total}</b> more fit{result.nodes.length > 0 && ': '}
            {result.nodes.map((n) => `${n.node} ${n.count}`).join(', ')}
          </p>
          {result.blocked && <p className="muted">{result.blocked}</p>}
        </div>
      )}
    </details>
  );
}
