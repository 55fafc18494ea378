// Key rotation's one step for any record holding a sealed value: open it with the key it was
// sealed with (a previous one) and seal it again with the current key, as a compare-and-swap
// write of the record, so a change made meanwhile is re-read instead of undone.
import type { Store } from '../store/store.js';
import type { Sealed } from '../model/types.js';
import type { SecretBox } from './secret-box.js';
import { UNCHANGED, casUpdate, type Codec } from './cas.js';

export interface SealedField<T> {
  get(record: T): Sealed;
  set(record: T, sealed: Sealed): T;
}

/** Re-seals the sealed field of each record at `keys` not sealed with the current key; how many were written. */
export async function resealAll<T>(store: Store, box: SecretBox, keys: string[], codec: Codec<T>, field: SealedField<T>): Promise<number> {
  let resealed = 0;
  for (const key of keys) {
    const written = await casUpdate(store, key, codec, (current) => {
      if (!current || box.isCurrent(field.get(current))) return UNCHANGED;
      return field.set(current, box.seal(box.open(field.get(current), key), key));
    }, { what: key });
    if (written.revision !== undefined) resealed++;
  }
  return resealed;
}
