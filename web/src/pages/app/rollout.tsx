// The rollout under way (or the last one): its phase, progress per entry, steps, and the buttons
// that steer it: Pause, Resume, Promote, Abort, and Rollback to the release before.
import { useCallback, useEffect, useState } from 'react';
import { get, post } from '../../lib/api';
import type { RolloutStatusResponse } from '../../lib/model';
import { seg } from '../../lib/router';
import { ActionButton } from '../../app/ui';
import { when } from '../../lib/format';

export interface RolloutState extends RolloutStatusResponse {
  reload: () => void;
}

export function useRollout(app: string): RolloutState {
  const [state, setState] = useState<RolloutStatusResponse>({ rollout: null, entries: [] });
  const reload = useCallback(() => void get<RolloutStatusResponse>(`/v1/apps/${seg(app)}/rollout`).then(setState, () => undefined), [app]);
  useEffect(reload, [reload]);
  return { ...state, reload };
}

const ACTIVE = new Set(['progressing', 'paused', 'awaiting-promotion']);

export function RolloutPanel({ app, state, canWrite, release }: { app: string; state: RolloutState; canWrite: boolean; release: number }) {
  const { rollout, entries } = state;
  if (!rollout) return null;
  const active = ACTIVE.has(rollout.phase);
  const act = (action: string) => () => post(`/v1/apps/${seg(app)}/rollout/${action}`).then(state.reload);
  return (
    <section className={`rollout phase-${rollout.phase}`} aria-label="Rollout" data-phase={rollout.phase}>
      <div className="rollout-head">
        <h2>
          Rollout {rollout.from} → {rollout.to}: <span className="phase">{rollout.phase}</span>
        </h2>
        {canWrite && (
          <div className="actions">
            {rollout.phase === 'progressing' && <ActionButton action={act('pause')}>Pause</ActionButton>}
            {rollout.phase === 'paused' && <ActionButton action={act('resume')}>Resume</ActionButton>}
            {rollout.phase === 'awaiting-promotion' && <ActionButton action={act('promote')}>Promote</ActionButton>}
            {active && (
              <ActionButton action={act('abort')} confirm={`Abort the rollout of ${app} and go back to release ${rollout.from}?`}>
                Abort
              </ActionButton>
            )}
            {!active && release > 1 && (
              <ActionButton action={() => post(`/v1/apps/${seg(app)}/rollback`, {}).then(state.reload)} confirm={`Roll ${app} back to the release before ${release}?`}>
                Rollback
              </ActionButton>
            )}
          </div>
        )}
      </div>
      {rollout.reason && <p className="warn">{rollout.reason}</p>}
      <ul className="progress">
        {entries.map((e) => (
          <li key={e.entry}>
            <span>
              {e.entry} ({e.strategy})
            </span>
            <progress max={Math.max(1, e.replicas)} value={Math.min(e.healthy, e.replicas)} aria-label={`${e.entry}: ${e.healthy} of ${e.replicas} updated and healthy`} />
            <span data-testid={`progress-${e.entry}`}>
              {e.healthy}/{e.replicas} updated and healthy · {e.old} old
            </span>
          </li>
        ))}
      </ul>
      {rollout.steps.length > 0 && (
        <details>
          <summary>Steps ({rollout.steps.length})</summary>
          <ol className="steps">
            {rollout.steps.slice(-20).map((s, n) => (
              <li key={n}>
                <time>{when(s.time)}</time> {s.message}
              </li>
            ))}
          </ol>
        </details>
      )}
    </section>
  );
}
