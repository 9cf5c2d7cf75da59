import { z } from 'zod';
import { sqlTableName } from '../internal/sql-identifier.js';

/** A row `write` inserted: its `seq`, and whether it was leased to the writer (see `write`). */
export interface WrittenRow {
  readonly seq: number;
  readonly leased: boolean;
  /**
   * The last undispatched row of its key when it was written (a store that writes at the commit
   * says it): the in-process dispatch sends the row only after that one.
   */
  readonly after?: number | undefined;
}

/** A write staged for a COMMIT that never came (its transaction or savepoint rolled back first): nothing was written. */
export class OutboxWriteNotSent extends Error {
  constructor() {
    super('the transaction ended before its COMMIT: the outbox write was not sent');
  }
}

/** What an outgoing message is written to the outbox as: the whole message, ready to hand to the broker. */
export interface OutboxMessage {
  readonly messageId: string;
  /** `publish`: routed by type; `send`: to one address. */
  readonly destinationKind: 'publish' | 'send';
  /** The message type for a publish, the broker address for a send. */
  readonly destination: string;
  readonly messageType: string;
  /** The entity key: rows of one key are dispatched in commit order. */
  readonly key: string | undefined;
  /** Transport headers (the producer's `traceparent` among them). */
  readonly headers: Readonly<Record<string, string>>;
  /** The encoded envelope, as it will go to the broker. */
  readonly body: Buffer;
  /** The endpoint whose handler produced it; `undefined` for `bus.transaction`. */
  readonly sourceEndpoint: string | undefined;
  /** The id of the message that handler was consuming. */
  readonly causationId: string | undefined;
}

/** A row of the outbox: the message and its dispatch state. */
export interface OutboxRow extends OutboxMessage {
  /** Insert order (monotonic); for one key also commit order. */
  readonly seq: number;
  readonly createdAt: Date;
  /** Dispatch attempts started (a claim counts one). */
  readonly attempts: number;
  readonly nextAttemptAt: Date;
  readonly dispatchedAt: Date | undefined;
  readonly failedAt: Date | undefined;
  readonly failedReason: string | undefined;
}

/** What the outbox holds, for health and gauges. */
export interface OutboxStats {
  /** Rows not yet dispatched and not moved aside. */
  readonly depth: number;
  /** When the oldest of those was written. */
  readonly oldestCreatedAt: Date | undefined;
  /** Rows moved aside (refused for good). */
  readonly movedAside: number;
}

/** What {@link OutboxStore.claim} may take. */
export interface ClaimOptions {
  readonly limit: number;
  /** How long the claimed rows are leased: no other claim takes them before. */
  readonly leaseMs: number;
}

/**
 * A row as the dispatcher that has it knows it. Its `attempts` is the fencing token of its lease:
 * every claim adds one, so a row whose lease ran out while its holder waited (a slow broker, then a
 * slow database) and that another relay claimed since has other attempts, and the late holder's give-back or
 * move aside leaves it alone: else it would end the new holder's lease, and a third could send the
 * row while the second still does.
 */
export interface HeldRow {
  readonly seq: number;
  readonly attempts: number;
}

/**
 * The outbox beside an inbox store, in the same database and on the same connections.
 *
 * Guarantees: `write` inserts in the caller's transaction (rolled back with it; on PostgreSQL it
 * also takes a transaction-scoped lock per key, so that rows of one key get their `seq` in commit
 * order, and notifies the relays of rows they may take at once). `claim` takes only rows that are committed, due, not dispatched,
 * not moved aside, and the first undispatched row of their key (a keyed row never goes out while an
 * earlier row of its key waits); it leases them (`next_attempt_at` = now + lease, attempts + 1), so
 * that concurrent claims — in this relay, in another relay, in another process — never take the
 * same row twice while the lease runs (nor a row written leased to its writer) (PostgreSQL: `FOR UPDATE SKIP LOCKED`). A failure of the database is
 * thrown as `DependencyError`.
 */
export interface OutboxStore<TTx> {
  /** Creates the table if missing (idempotent); called by `bus.start()` after the inbox's `init`. */
  init(): Promise<void>;
  /**
   * Inserts `messages` inside `tx`, in order; returns their `seq`s. A row is written **leased** to
   * the writer `lease.owner` (attempts 1, `next_attempt_at` = now + `lease.ms`, `leased_by` = the
   * owner), for its in-process dispatch right after the commit without a claim, when `lease.ms` > 0
   * and it has no key, or every earlier undispatched row of its key (committed before this write,
   * which on PostgreSQL waited for the key's lock first; or earlier in this write) is leased to the
   * same owner and its lease runs: the owner dispatches them in order. Other rows are written due:
   * the relay takes them in their key's order (on PostgreSQL the write then notifies the relays).
   *
   * With {@link writesAtCommit} the write runs with the transaction's COMMIT and the promise
   * resolves only once that came back: the caller must not await it inside the transaction.
   */
  write(tx: TTx, messages: readonly OutboxMessage[], lease: OutboxLease): Promise<readonly WrittenRow[]>;
  /** The write is sent with the transaction's COMMIT (one round trip less); see {@link write}. */
  readonly writesAtCommit?: boolean;
  claim(options: ClaimOptions): Promise<OutboxRow[]>;
  /** Marks rows dispatched (or deletes them: `remove`, retention 0). */
  markDispatched(seqs: readonly number[], remove: boolean): Promise<void>;
  /**
   * Gives rows back for another attempt after their delay (the broker failed; or an earlier row of
   * their key did, delay 0); the lease ends and the rows are the relays' (`leased_by` cleared).
   * Only rows still held: see {@link HeldRow}.
   */
  retryAfter(rows: readonly (HeldRow & { readonly delayMs: number })[]): Promise<void>;
  /**
   * Moves a row aside for good with its reason: never claimed again, and no longer blocks its key.
   * Only a row still held: see {@link HeldRow}.
   */
  moveAside(row: HeldRow, reason: string): Promise<void>;
  stats(): Promise<OutboxStats>;
  /** Deletes up to `limit` rows dispatched before `olderThan`; returns how many. */
  cleanup(olderThan: Date, limit: number): Promise<number>;
  /** The rows, in `seq` order (tests, tools). */
  rows(limit: number): Promise<OutboxRow[]>;
  /**
   * Wakes `onWake` when another instance commits rows (PostgreSQL LISTEN/NOTIFY); the listening
   * connection reconnects on its own. Absent: the store is polled.
   */
  listen?(onWake: () => void): Promise<{ close(): Promise<void> }>;
}

/** The outbox's settings (`outbox` in the bus configuration); see docs/outbox.md. */
export const OutboxConfigSchema = z
  .strictObject({
    /** Off: handlers publish at once, and `bus.transaction` is refused. */
    enabled: z.boolean().default(true),
    /** The table, in the inbox's database (and schema). */
    table: sqlTableName('_pending_key_idx').default('sluice_outbox'),
    /**
     * How long dispatched rows are kept (what happened to an entity, for its history); `0` deletes a
     * row when it is dispatched. Moved-aside rows are kept until someone deletes them.
     */
    retentionMs: z
      .number()
      .int()
      .min(0)
      .default(7 * 24 * 3_600_000),
    /** How often dispatched rows past the retention are deleted, in batches of `cleanupBatchSize`. */
    cleanupIntervalMs: z.number().int().min(1_000).default(60_000),
    cleanupBatchSize: z.number().int().min(1).max(100_000).default(1_000),
    /** How often the relay looks for rows left behind, on a store without notifications (SQLite, memory). */
    pollIntervalMs: z.number().int().min(10).max(600_000).default(500),
    /** The backup poll where commits wake the relay (PostgreSQL NOTIFY can be lost). */
    backupPollIntervalMs: z.number().int().min(100).max(600_000).default(5_000),
    /** Rows per claim. */
    batchSize: z.number().int().min(1).max(10_000).default(200),
    /**
     * How long a claimed row is leased to the dispatcher that claimed it; another claims it only
     * after. Keep it above `dispatchTimeoutMs`.
     */
    leaseMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /**
     * Rows committed and handed to this process's dispatch, not yet confirmed by the broker, before a
     * commit waits (back-pressure): a delivery is settled when its transaction commits, without
     * waiting for the broker, until a broker slower than the commits lets this many pile up.
     */
    dispatchBacklog: z.number().int().min(1).max(1_000_000).default(2_000),
    /** A broker that has not confirmed a message within this is a failed attempt (retried). */
    dispatchTimeoutMs: z.number().int().min(50).max(600_000).default(5_000),
    /** The wait before a row the broker refused or could not take is tried again: `initial × factor^(n−1)`, capped. */
    retryDelayMs: z
      .strictObject({
        initial: z.number().int().min(1).max(3_600_000).default(500),
        factor: z.number().min(1).max(100).default(2),
        max: z.number().int().min(1).max(3_600_000).default(60_000),
      })
      .refine((c) => c.max >= c.initial, { message: 'max must be at least initial', path: ['max'] })
      .default({ initial: 500, factor: 2, max: 60_000 }),
    /** How often depth, oldest age and moved-aside count are read for health and gauges. */
    statsIntervalMs: z.number().int().min(100).max(600_000).default(5_000),
  })
  .refine((c) => c.leaseMs > c.dispatchTimeoutMs, {
    message: 'must be greater than dispatchTimeoutMs',
    path: ['leaseMs'],
  });
export type OutboxConfig = z.infer<typeof OutboxConfigSchema>;
export type OutboxConfigInput = z.input<typeof OutboxConfigSchema>;

/** The delay before the next try of a row after its `attempts`-th failed attempt. */
export function outboxRetryDelayMs(attempts: number, backoff: OutboxConfig['retryDelayMs']): number {
  return Math.min(backoff.max, backoff.initial * backoff.factor ** Math.max(0, attempts - 1));
}

/** Whose in-process dispatch a write leases its rows to, and for how long (`ms` 0: to nobody). */
export interface OutboxLease {
  readonly ms: number;
  /** The writing bus instance. */
  readonly owner: string;
}

/** What a store needs to make its outbox: the table (in the inbox's database) and how it is named to relays. */
export interface OutboxStoreOptions {
  readonly table: string;
  /** This bus instance: its own notifications do not wake its own relay (it dispatches in process). */
  readonly instanceId: string;
}

/** How a dialect's driver returns the outbox table's timestamp and JSON columns. */
export interface OutboxColumnReaders {
  date(value: unknown): Date;
  headers(value: unknown): Record<string, string>;
}

/** An {@link OutboxRow} from a row of the outbox table (its column names, as in docs/outbox.md). */
export function outboxRowOf(r: Record<string, unknown>, read: OutboxColumnReaders): OutboxRow {
  const text = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
  const date = (v: unknown) => (v === null || v === undefined ? undefined : read.date(v));
  return {
    seq: Number(r.seq),
    messageId: String(r.message_id),
    destinationKind: r.destination_kind === 'send' ? 'send' : 'publish',
    destination: String(r.destination),
    messageType: String(r.message_type),
    key: text(r.entity_key),
    headers: read.headers(r.headers),
    body: r.body as Buffer,
    createdAt: read.date(r.created_at),
    sourceEndpoint: text(r.source_endpoint),
    causationId: text(r.causation_id),
    attempts: Number(r.attempts),
    nextAttemptAt: read.date(r.next_attempt_at),
    dispatchedAt: date(r.dispatched_at),
    failedAt: date(r.failed_at),
    failedReason: text(r.failed_reason),
  };
}
