import type { CausedMessage, HistoryQuery, HistoryRecord, LostTo, StoredHistoryRecord } from './history-record.js';

/** A message consumed on an endpoint: what the outbox's `source_endpoint` + `causation_id` name. */
export interface Consumed {
  readonly endpoint: string;
  readonly messageId: string;
}

/**
 * The history's statements in one store's dialect. Every method runs on a transaction handle of
 * the inbox store (`ctx.tx`'s kind): `write` inside the inbox transaction of the message, the
 * others inside a transaction of their own (`InboxStore.transaction`). No broker or database
 * client is imported: the handle is used through the few methods it has.
 */
export interface HistoryBackend {
  /** Creates the table and its indexes when missing (idempotent). */
  init(tx: unknown): Promise<void>;
  write(tx: unknown, record: HistoryRecord): Promise<void>;
  /** Writes several rows, in this order (one statement where the dialect allows). */
  writeMany(tx: unknown, records: readonly HistoryRecord[]): Promise<void>;
  /** The newest `query.limit` rows that match, returned oldest first. */
  read(tx: unknown, query: HistoryQuery): Promise<StoredHistoryRecord[]>;
  /** Deletes up to `limit` rows recorded before `olderThan`, oldest first; returns how many. */
  cleanup(tx: unknown, olderThan: Date, limit: number): Promise<number>;
  /** The ordering guard's last applied event of (endpoint, key), read without locking it. */
  lastApplied(tx: unknown, endpoint: string, key: string): Promise<LostTo | undefined>;
  /** What the outbox table holds as caused by these consumed messages; `[]` when there is no outbox table. */
  caused(tx: unknown, consumed: readonly Consumed[]): Promise<CausedMessage[]>;
}

/** The history columns, in the order `write` binds them. */
export function recordValues(r: HistoryRecord): unknown[] {
  return [
    r.endpoint,
    r.key,
    r.messageId,
    r.messageType,
    r.occurredAt,
    r.tombstone,
    r.recordedAt,
    r.outcome,
    r.reason,
    r.detail,
    r.lostTo?.messageId ?? null,
    r.lostTo?.occurredAt ?? null,
    r.lostTo === null ? null : r.lostTo.tombstone,
    r.attempts,
    r.data,
  ];
}

export const HISTORY_COLUMNS =
  'endpoint, entity_key, message_id, message_type, occurred_at, tombstone, recorded_at, outcome, reason, detail, ' +
  'lost_to_message_id, lost_to_occurred_at, lost_to_tombstone, attempts, data';

/** A stored row back from either SQL dialect (booleans as 0/1 on SQLite, times as text there). */
export function recordOf(row: Record<string, unknown>): StoredHistoryRecord {
  const lostId = row.lost_to_message_id;
  return {
    seq: Number(row.seq),
    endpoint: String(row.endpoint),
    key: String(row.entity_key),
    messageId: String(row.message_id),
    messageType: String(row.message_type),
    occurredAt: String(row.occurred_at),
    tombstone: truthy(row.tombstone),
    recordedAt: row.recorded_at instanceof Date ? row.recorded_at : new Date(String(row.recorded_at)),
    outcome: String(row.outcome) as StoredHistoryRecord['outcome'],
    reason: textOrNull(row.reason),
    detail: textOrNull(row.detail),
    lostTo:
      lostId === null || lostId === undefined
        ? null
        : {
            messageId: String(lostId),
            occurredAt: String(row.lost_to_occurred_at),
            tombstone: truthy(row.lost_to_tombstone),
          },
    attempts: Number(row.attempts),
    data: textOrNull(row.data),
  };
}

/** An outbox row back from either dialect. */
export function causedOf(row: Record<string, unknown>): CausedMessage {
  return {
    sourceEndpoint: String(row.source_endpoint),
    causationId: String(row.causation_id),
    messageId: String(row.message_id),
    messageType: String(row.message_type),
    destinationKind: String(row.destination_kind),
    destination: String(row.destination),
    createdAt: timeOrNull(row.created_at),
    dispatchedAt: timeOrNull(row.dispatched_at),
    failedAt: timeOrNull(row.failed_at),
    failedReason: textOrNull(row.failed_reason),
  };
}

function truthy(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 't';
}

function textOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function timeOrNull(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : String(value);
}
