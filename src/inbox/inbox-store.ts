import type { Logger } from 'pino';
import { z } from 'zod';
import type { Clock } from '../internal/clock.js';
import type { EntityVersion } from '../ordering/ordering-policy.js';
import type { OutboxStore, OutboxStoreOptions } from '../outbox/outbox-store.js';

/** What the inbox records about a message it processes. */
export interface InboxEntry {
  readonly endpoint: string;
  readonly messageId: string;
  readonly messageType: string;
  readonly key: string | undefined;
  /** RFC 3339 as the producer sent it. */
  readonly occurredAt: string;
  readonly receivedAt: Date;
  /** 1-based attempt that processed it. */
  readonly attempts: number;
  /** The whole envelope as JSON, when the store is configured to keep it for audit. */
  readonly envelopeJson: string | undefined;
  /**
   * Called inside the claim's transaction when the id was processed before (the work does not
   * run): the history records the duplicate there (docs/explain.md). Its failure fails the claim.
   */
  readonly duplicate?: ((tx: unknown) => Promise<void>) | undefined;
}

/** What a unit of work tells the store to record besides its result. */
export interface InboxWork<R> {
  readonly result: R;
  /** The outcome column; `completed` unless the work says otherwise (e.g. `stale`). */
  readonly recordAs?: string;
  /**
   * What a group committer writes for all its members at once, before the commit (the history's
   * rows, through its `flush`); stores ignore it.
   */
  readonly deferred?: unknown;
}

export type InboxResult<R> =
  | { readonly status: 'processed'; readonly value: R }
  /** Processed before (in a committed transaction): the work did not run. */
  | { readonly status: 'duplicate' }
  /** Another consumer holds the same message id right now (it waited past its lock timeout). */
  | { readonly status: 'busy' };

/** A row of the inbox, for "why is this entity in this state?". */
export interface InboxRow {
  readonly endpoint: string;
  readonly messageId: string;
  readonly messageType: string;
  readonly key: string | null;
  readonly occurredAt: string;
  readonly receivedAt: Date;
  readonly processedAt: Date;
  readonly outcome: string;
  readonly attempts: number;
  readonly envelope: unknown;
}

/** How a store's driver returns the inbox columns that are not plain text or numbers. */
export interface InboxColumnReaders {
  date(value: unknown): Date;
  envelope(value: unknown): unknown;
}

/** An {@link InboxRow} from a row of the inbox table (its column names, as in the DDL). */
export function inboxRowOf(row: Record<string, unknown>, read: InboxColumnReaders): InboxRow {
  return {
    endpoint: String(row.endpoint),
    messageId: String(row.message_id),
    messageType: String(row.message_type),
    key: row.entity_key === null || row.entity_key === undefined ? null : String(row.entity_key),
    occurredAt: String(row.occurred_at),
    receivedAt: read.date(row.received_at),
    processedAt: read.date(row.processed_at),
    outcome: String(row.outcome),
    attempts: Number(row.attempts),
    envelope: row.envelope === null || row.envelope === undefined ? null : read.envelope(row.envelope),
  };
}

/**
 * Runs a handler once per (endpoint, message id), inside a transaction it hands to the handler,
 * so that the handler's own writes and the record that the message was processed commit together.
 *
 * Guarantees: `runOnce` claims the id first, in the same transaction; if the work throws, the
 * transaction rolls back and nothing is recorded (the message runs again on redelivery). Two
 * concurrent `runOnce` calls for one id — in one process or several — run the work once: the loser
 * waits for the winner's commit and sees `duplicate`, or `busy` past the store's lock timeout.
 * A result is returned only after the commit succeeded: a commit that did not commit throws
 * (`TransactionRolledBackError`).
 *
 * Failures of the store's database (refused, reset or silent connections, a database shutting
 * down, a file locked past the busy timeout) are thrown as `DependencyError`: the store is the one
 * that knows its driver's errors. The retry stage then releases the message without spending an
 * attempt, and the kill switch counts a dependency failure. Every wait of a store is bounded, and
 * `close()` is idempotent and returns within a bounded time even with work still running.
 */
export interface InboxStore<TTx> {
  readonly kind: string;
  /**
   * Creates the tables if they do not exist (idempotent). Called by `bus.start()`, again after a
   * `DependencyError` (the database cannot be reached), until the store's `startupWaitMs`.
   */
  init(): Promise<void>;
  runOnce<R>(entry: InboxEntry, work: (tx: TTx) => Promise<InboxWork<R>>): Promise<InboxResult<R>>;
  /**
   * Group commit: claims every entry with one multi-row insert in one transaction, calls `work`
   * with which entries are new (the first occurrence of an id not processed before), records and
   * commits once. A new entry whose work result is `undefined` failed on its own (savepoint): its
   * claim is removed before the commit, so it is not recorded as processed. If `work` throws,
   * everything rolls back and the error is rethrown.
   */
  runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: TTx, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]>;
  /** Runs `fn` inside a savepoint of `tx`: a throw rolls back only `fn`'s statements. */
  withSavepoint<R>(tx: TTx, fn: () => Promise<R>): Promise<R>;
  /** Deletes up to `limit` rows processed before `olderThan`; returns how many. */
  cleanup(olderThan: Date, limit: number): Promise<number>;
  /**
   * Ordering guard: the last applied version of (endpoint, key), read inside `tx` (the transaction
   * of `runOnce`/`runBatch`) and locked until that transaction ends, so that two consumers of one
   * key run their read-decide-write one after the other (PostgreSQL `SELECT … FOR UPDATE`; SQLite's
   * write transaction locks the whole file; memory: a per-key lock). `undefined`: nothing applied yet
   * (or its tombstone expired).
   */
  readVersion(tx: TTx, endpoint: string, key: string): Promise<EntityVersion | undefined>;
  /**
   * Records `version` as the last applied of (endpoint, key) inside `tx`; rolled back with it.
   * `first` (readVersion found none): inserts, and returns `false` when another transaction inserted
   * the key's first version meanwhile — read again and decide again. Otherwise replaces the row
   * `readVersion` locked and returns `true`. The caller decides; the store compares nothing.
   */
  writeVersion(tx: TTx, endpoint: string, key: string, version: EntityVersion, first: boolean): Promise<boolean>;
  /** Deletes up to `limit` tombstones of `endpoint` recorded before `olderThan`; returns how many. */
  cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number>;
  find(endpoint: string, messageId: string): Promise<InboxRow | undefined>;
  close(): Promise<void>;
  /**
   * The outbox in this store's database, on its connections (see `OutboxStore`). Absent: the store
   * has none, and handlers publish at once.
   */
  outbox?(options: OutboxStoreOptions): OutboxStore<TTx>;
  /**
   * Runs `work` in one transaction of the store, without a claim: COMMIT after it, ROLLBACK and
   * rethrow when it throws. A result means committed, as for `runOnce`; a failure of the database
   * is thrown as `DependencyError`. Used by `bus.transaction` and by the history (its writes outside
   * a message's transaction, its table, reads and cleanup). Optional: a store without it has no
   * `bus.transaction` and keeps no history.
   */
  transaction?<R>(work: (tx: TTx) => Promise<R>): Promise<R>;
}

/** Settings every store shares. */
export const InboxCommonConfigShape = {
  /** Keep the whole envelope (JSON) in each row, for audit. */
  storeEnvelope: z.boolean().default(false),
  /** Rows older than this are deleted. Keep it longer than any redelivery can take (DLQ redrives!). */
  retentionMs: z
    .number()
    .int()
    .min(60_000)
    .default(30 * 24 * 3_600_000),
  cleanupIntervalMs: z.number().int().min(1_000).default(3_600_000),
  /** Rows deleted per statement: cleanup never holds long locks. */
  cleanupBatchSize: z.number().int().min(1).max(100_000).default(1_000),
  /**
   * How long `bus.start()` waits for a store that does not answer (a database down or unreachable
   * at start-up), trying again with backoff; `0` fails at once.
   */
  startupWaitMs: z.number().int().min(0).max(3_600_000).default(60_000),
};

export interface InboxDeps {
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * Registers an inbox store kind. `createBus(config, { inbox: sqliteInbox() })` validates
 * `config.inbox` with `configSchema` (errors name `inbox.<field>`) and types `ctx.tx` as `TTx`.
 */
export interface InboxDefinition<
  TTx,
  TConfig extends InboxCommonConfig & { kind: string } = InboxCommonConfig & { kind: string },
> {
  readonly kind: string;
  readonly configSchema: z.ZodType<TConfig>;
  create(config: TConfig, deps: InboxDeps): InboxStore<TTx>;
}

export interface InboxCommonConfig {
  readonly storeEnvelope: boolean;
  readonly retentionMs: number;
  readonly cleanupIntervalMs: number;
  readonly cleanupBatchSize: number;
  readonly startupWaitMs: number;
}

export { SqlIdentifierSchema } from '../internal/sql-identifier.js';
