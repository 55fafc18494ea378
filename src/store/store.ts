// The store interface, modelled on etcd's v3 API so that an etcd implementation can drop in:
// a KV with one global revision, prefix ranges, compare-and-swap transactions, watches that
// resume from a revision, and leases whose expiry deletes the keys attached to them.

export interface KeyValue {
  key: string;
  value: string;
  /** Revision at which the key was created (since its last deletion). */
  createRevision: number;
  /** Revision of the last change to the key. */
  modRevision: number;
  /** Number of changes since creation; 1 after the first put. */
  version: number;
  lease?: string;
}

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision';
export type CompareOp = '==' | '!=' | '<' | '>';

/** A missing key compares as version 0, createRevision 0, modRevision 0 and value undefined. */
export interface Compare {
  key: string;
  target: CompareTarget;
  op: CompareOp;
  value: string | number;
}

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string }
  | { type: 'get'; key: string };

export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** For each 'get' op run, in order, the value found. */
  gets: (KeyValue | undefined)[];
}

export interface RangeOptions {
  /** Stop after this many keys (in key order, or reverse key order with `newestFirst`). */
  limit?: number;
  /** Keys in reverse order: for the newest entries of a log whose keys sort by time. */
  newestFirst?: boolean;
  /** Only keys that sort before this one (exclusive): where the previous page of a reverse read stopped. */
  before?: string;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Store revision the range was read at. */
  revision: number;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  /** For a delete: the key with the revision of the deletion and the last value it had. */
  kv: KeyValue;
  prevKv?: KeyValue;
  revision: number;
}

export interface Watcher {
  close(): void;
}

export interface WatchOptions {
  /** Deliver every change with revision >= fromRevision first (history), then live ones. */
  fromRevision?: number;
  /** Called once if history from fromRevision is gone (compacted): the consumer must re-list. */
  onCompacted?: (compactRevision: number) => void;
}

export class CompactedError extends Error {
  constructor(readonly compactRevision: number) {
    super(`revision has been compacted; oldest available is ${compactRevision}`);
    this.name = 'CompactedError';
  }
}

/**
 * The store cannot be read or written now (its disk is failing, its file is locked or
 * read-only, it is closing), through no fault of the request: the same call may work later.
 * `statusCode` makes the HTTP API answer 503 with the message rather than a 500.
 */
export class StoreUnavailableError extends Error {
  readonly statusCode = 503;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A write found no space left where the store keeps its data. Nothing of the write landed; the
 * store works again, without a restart, as soon as space is freed on `dir`.
 */
export class StoreFullError extends StoreUnavailableError {
  constructor(readonly dir: string, options?: { cause?: unknown }) {
    super(`store full: free space on ${dir}`, options);
    this.name = 'StoreFullError';
  }
}

export interface Store {
  get(key: string): Promise<KeyValue | undefined>;
  range(prefix: string, options?: RangeOptions): Promise<RangeResult>;
  /** Returns the revision of the write. */
  put(key: string, value: string, options?: { lease?: string }): Promise<number>;
  /** Returns the revision of the deletion, or undefined when the key did not exist. */
  delete(key: string): Promise<number | undefined>;
  txn(request: TxnRequest): Promise<TxnResult>;
  /**
   * Calls `onEvents` with batches of changes to keys under `prefix`, in revision order, each
   * change exactly once. Events of one transaction arrive in one batch.
   */
  watch(prefix: string, onEvents: (events: WatchEvent[]) => void, options?: WatchOptions): Watcher;
  /** Grants a lease; keys put with it are deleted when it expires or is revoked. */
  grantLease(ttlMs: number): Promise<string>;
  /** Extends a lease by its TTL; false when it has already expired. */
  keepAlive(lease: string): Promise<boolean>;
  revokeLease(lease: string): Promise<void>;
  /** Milliseconds a lease has left; undefined when it has expired (reaped or not) or never existed. */
  leaseTimeToLive(lease: string): Promise<number | undefined>;
  /** The current revision. */
  revision(): Promise<number>;
  /** Forget history before `revision`; watches from before it fail with CompactedError. */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

export function encode(value: unknown): string {
  return JSON.stringify(value);
}

export function decode<T>(kv: KeyValue): T {
  return JSON.parse(kv.value) as T;
}
