// What one reconcile pass writes: every store operation and compare goes into one transaction,
// the events are recorded once it has landed.
import type { Compare, TxnOp } from '../../store/store.js';
import type { Instance } from '../../model/types.js';
import type { EventLog } from '../services/events.js';

export type Note = Parameters<EventLog['record']>[0];

export interface PassWrites {
  ops: TxnOp[];
  compares: Compare[];
  notes: Note[];
  /** Desired states changed in this pass (the cache shows them once the write lands). */
  desired: Map<string, Instance['desired']>;
}
