// The app's current spec as YAML, editable and applied from here by those who may write it.
import { useMemo } from 'react';
import { stringify } from 'yaml';
import type { AppRecord } from '../../lib/model';
import { SpecEditor } from '../../spec/spec-editor';

export function SpecTab({ record, canWrite, onApplied }: { record: AppRecord; canWrite: boolean; onApplied: () => void }) {
  const yaml = useMemo(() => stringify(record.spec), [record.spec]);
  return <SpecEditor initial={yaml} readOnly={!canWrite} onApplied={onApplied} label={`Spec of release ${record.release} (YAML)`} />;
}
