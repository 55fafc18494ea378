// A YAML editor for an app spec: checked as you type against the JSON Schema (field paths as the
// CLI gives them), applied with POST /v1/apps; the server's own refusals show the same way.
import { useEffect, useMemo, useState } from 'react';
import { api, HttpError } from '../lib/api';
import type { ApplyResponse, SpecProblem } from '../lib/model';
import { checkSpecText } from './validate';

export function SpecEditor({ initial, readOnly, onApplied, label = 'Spec (YAML)' }: { initial: string; readOnly?: boolean; onApplied?: (result: ApplyResponse) => void; label?: string }) {
  const [text, setText] = useState(initial);
  const [debounced, setDebounced] = useState(initial);
  const [serverProblems, setServerProblems] = useState<SpecProblem[]>([]);
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState(false);
  useEffect(() => setText(initial), [initial]);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(text), 250);
    return () => clearTimeout(timer);
  }, [text]);
  const checked = useMemo(() => checkSpecText(debounced), [debounced]);
  const problems = checked.problems.length > 0 ? checked.problems : serverProblems;
  const apply = async () => {
    const local = checkSpecText(text);
    setDebounced(text);
    setMessage(undefined);
    setServerProblems([]);
    if (local.problems.length > 0) return setMessage({ ok: false, text: 'Fix the problems listed first.' });
    setBusy(true);
    try {
      const result = await api<ApplyResponse>('POST', '/v1/apps', text, 'text/yaml');
      setMessage({ ok: true, text: !result.changed ? 'Unchanged: the spec is the stored one.' : `${result.created ? 'Created' : 'Applied'} ${result.app.name}, release ${result.app.release}.` });
      onApplied?.(result);
    } catch (err) {
      setMessage({ ok: false, text: (err as Error).message });
      if (err instanceof HttpError && err.problems) setServerProblems(err.problems);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="spec-editor">
      <label htmlFor="spec-text">{label}</label>
      <textarea
        id="spec-text"
        className="code"
        spellCheck={false}
        value={text}
        readOnly={readOnly}
        onChange={(e) => {
          setText(e.target.value);
          setServerProblems([]);
        }}
        rows={Math.min(40, Math.max(12, text.split('\n').length + 2))}
        aria-invalid={problems.length > 0}
        aria-describedby="spec-problems"
      />
      <div id="spec-problems" aria-live="polite">
        {problems.length > 0 ? (
          <ul className="problems">
            {problems.map((p, n) => (
              <li key={n}>
                <code className="path">{p.path || '(root)'}</code>: {p.message}
              </li>
            ))}
          </ul>
        ) : (
          <p className="ok">The spec is valid.</p>
        )}
      </div>
      {!readOnly && (
        <button type="button" onClick={() => void apply()} disabled={busy}>
          {busy ? 'Applying…' : 'Apply'}
        </button>
      )}
      {message && (
        <p role={message.ok ? 'status' : 'alert'} className={message.ok ? 'ok' : 'error'}>
          {message.text}
        </p>
      )}
    </div>
  );
}
