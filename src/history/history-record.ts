/** The final outcomes the history keeps (a release by the kill switch or a dependency failure is not final). */
export type HistoryOutcome = 'applied' | 'duplicate' | 'stale' | 'tombstoned' | 'dead-lettered';

/** The last applied event a refused one lost to (stale, tombstoned). */
export interface LostTo {
  readonly messageId: string;
  readonly occurredAt: string;
  readonly tombstone: boolean;
}

/** One row of the history: what happened to one message on one endpoint, and why. */
export interface HistoryRecord {
  readonly endpoint: string;
  readonly key: string;
  readonly messageId: string;
  readonly messageType: string;
  /** As the producer sent it (RFC 3339 with offset). */
  readonly occurredAt: string;
  /** The message deleted the entity. */
  readonly tombstone: boolean;
  /** When the outcome was recorded (the bus's clock). */
  readonly recordedAt: Date;
  readonly outcome: HistoryOutcome;
  /** Dead letters: the fault's reason (`schema-violation`, `exhausted`, ...); skips: the skip reason. */
  readonly reason: string | null;
  /** The precise text: the ordering guard's comparison, the fault's description. */
  readonly detail: string | null;
  readonly lostTo: LostTo | null;
  /** The attempt that reached the outcome (1-based). */
  readonly attempts: number;
  /** The event's data as JSON text, when `history.data.enabled` and it fits in `maxBytes`. */
  readonly data: string | null;
}

/** A stored row: the record and its place in the table (increasing in recording order). */
export interface StoredHistoryRecord extends HistoryRecord {
  readonly seq: number;
}

/** A message the outbox holds as caused by a message an endpoint consumed (issue 13's table). */
export interface CausedMessage {
  readonly sourceEndpoint: string;
  readonly causationId: string;
  readonly messageId: string;
  readonly messageType: string;
  readonly destinationKind: string;
  readonly destination: string;
  readonly createdAt: string | null;
  readonly dispatchedAt: string | null;
  readonly failedAt: string | null;
  readonly failedReason: string | null;
}

/** What `read` selects. */
export interface HistoryQuery {
  readonly key?: string;
  readonly messageId?: string;
  /** Only these endpoints (all when absent). */
  readonly endpoints?: readonly string[];
  /** Only rows recorded at or after this. */
  readonly since?: Date;
  /** The newest `limit` rows. */
  readonly limit: number;
}
