// Small pieces every page uses: an action button that reports its outcome, errors, meters, state badges.
import { useState, type ReactNode } from 'react';
import { HttpError } from '../lib/api';
import { percent } from '../lib/format';

/** A button that runs `action`, is disabled while it runs, and shows what went wrong (the server's words). */
export function ActionButton({ action, children, confirm, className, label }: { action: () => Promise<unknown>; children: ReactNode; confirm?: string; className?: string; label?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const run = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="action">
      <button type="button" className={className} disabled={busy} onClick={() => void run()} aria-label={label}>
        {children}
      </button>
      {error && (
        <span role="alert" className="error-inline">
          {error}
        </span>
      )}
    </span>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const status = error instanceof HttpError ? ` (${error.status})` : '';
  return (
    <p role="alert" className="error">
      {(error as Error).message ?? String(error)}
      {status}
    </p>
  );
}

export function Meter({ used, total, label, format }: { used: number; total: number; label: string; format: (n: number) => string }) {
  const share = percent(used, total);
  return (
    <div className="meter" title={`${label}: ${format(used)} of ${format(total)}`}>
      <div className="meter-label">
        <span>{label}</span>
        <span>
          {format(used)} / {format(total)}
        </span>
      </div>
      <div className="meter-bar" role="meter" aria-label={label} aria-valuenow={share} aria-valuemin={0} aria-valuemax={100}>
        <div className={share > 90 ? 'full' : ''} style={{ width: `${share}%` }} />
      </div>
    </div>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`}>{state}</span>;
}

export function Live({ open }: { open: boolean }) {
  return <span className={`live ${open ? 'on' : 'off'}`}>{open ? 'live' : 'reconnecting…'}</span>;
}

/** A table's header row; a false column is left out (e.g. Actions for a role that may not act). */
export function TableHead({ columns }: { columns: (string | false)[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c, n) => c !== false && <th key={n}>{c}</th>)}
      </tr>
    </thead>
  );
}
