import {
  causedOf,
  type Consumed,
  HISTORY_COLUMNS,
  type HistoryBackend,
  recordOf,
  recordValues,
} from './history-backend.js';
import type { CausedMessage, HistoryQuery, HistoryRecord, LostTo, StoredHistoryRecord } from './history-record.js';

/** What the history uses of a better-sqlite3 database (the SQLite inbox's transaction handle). */
interface SqliteStatement {
  run(...values: unknown[]): { changes: number };
  all(...values: unknown[]): unknown[];
  get(...values: unknown[]): unknown;
}
interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
}

export interface SqliteHistoryNames {
  readonly table: string;
  /** The inbox table: the ordering guard's versions are in `<inboxTable>_versions`. */
  readonly inboxTable: string;
  readonly outboxTable: string;
}

/** The history table's DDL on SQLite (also in docs/explain.md). */
export function sqliteHistoryDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  seq                 INTEGER PRIMARY KEY,
  endpoint            TEXT    NOT NULL,
  entity_key          TEXT    NOT NULL,
  message_id          TEXT    NOT NULL,
  message_type        TEXT    NOT NULL,
  occurred_at         TEXT    NOT NULL,
  tombstone           INTEGER NOT NULL,
  recorded_at         TEXT    NOT NULL,
  outcome             TEXT    NOT NULL,
  reason              TEXT,
  detail              TEXT,
  lost_to_message_id  TEXT,
  lost_to_occurred_at TEXT,
  lost_to_tombstone   INTEGER,
  attempts            INTEGER NOT NULL,
  data                TEXT
);
CREATE INDEX IF NOT EXISTS ${table}_key_idx ON ${table} (entity_key, seq);
CREATE INDEX IF NOT EXISTS ${table}_message_idx ON ${table} (message_id);`;
}

/** The history in the SQLite inbox's file, through its transaction handle (the database). */
export class SqliteHistory implements HistoryBackend {
  /** The prepared insert per database (a store reopened after close gets a new one). */
  readonly #inserts = new WeakMap<object, SqliteStatement>();

  constructor(private readonly names: SqliteHistoryNames) {}

  async init(tx: unknown): Promise<void> {
    (tx as SqliteDatabase).exec(sqliteHistoryDdl(this.names.table));
  }

  async write(tx: unknown, record: HistoryRecord): Promise<void> {
    const db = tx as SqliteDatabase;
    let insert = this.#inserts.get(db);
    if (!insert) {
      insert = db.prepare(
        `INSERT INTO ${this.names.table} (${HISTORY_COLUMNS}) VALUES (${Array(15).fill('?').join(', ')})`,
      );
      this.#inserts.set(db, insert);
    }
    insert.run(...recordValues(record).map(sqliteValue));
  }

  /** In process, one prepared insert per row costs microseconds: no multi-row statement needed. */
  async writeMany(tx: unknown, records: readonly HistoryRecord[]): Promise<void> {
    for (const r of records) await this.write(tx, r);
  }

  async read(tx: unknown, query: HistoryQuery): Promise<StoredHistoryRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (query.key !== undefined) where.push('entity_key = ?') && values.push(query.key);
    if (query.messageId !== undefined) where.push('message_id = ?') && values.push(query.messageId);
    if (query.endpoints !== undefined) {
      where.push(`endpoint IN (${query.endpoints.map(() => '?').join(', ') || 'NULL'})`);
      values.push(...query.endpoints);
    }
    if (query.since !== undefined) where.push('recorded_at >= ?') && values.push(query.since.toISOString());
    const rows = (tx as SqliteDatabase)
      .prepare(
        `SELECT seq, ${HISTORY_COLUMNS} FROM ${this.names.table}
         WHERE ${where.length > 0 ? where.join(' AND ') : '1'} ORDER BY seq DESC LIMIT ?`,
      )
      .all(...values, query.limit) as Record<string, unknown>[];
    return rows.map(recordOf).reverse();
  }

  async cleanup(tx: unknown, olderThan: Date, limit: number): Promise<number> {
    const { table } = this.names;
    return (tx as SqliteDatabase)
      .prepare(
        `DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE recorded_at < ? ORDER BY seq LIMIT ?)`,
      )
      .run(olderThan.toISOString(), limit).changes;
  }

  async lastApplied(tx: unknown, endpoint: string, key: string): Promise<LostTo | undefined> {
    const row = (tx as SqliteDatabase)
      .prepare(
        `SELECT occurred_at, message_id, tombstone FROM ${this.names.inboxTable}_versions WHERE endpoint = ? AND entity_key = ?`,
      )
      .get(endpoint, key) as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      occurredAt: String(row.occurred_at),
      messageId: String(row.message_id),
      tombstone: Number(row.tombstone) === 1,
    };
  }

  async caused(tx: unknown, consumed: readonly Consumed[]): Promise<CausedMessage[]> {
    return readSqliteOutbox(tx as SqliteDatabase, this.names.outboxTable, consumed);
  }
}

/**
 * The outbox reader on SQLite: the rows of `outboxTable` (issue 13's columns) whose
 * `source_endpoint` and `causation_id` name one of the consumed messages. No table: `[]`.
 */
export function readSqliteOutbox(
  db: SqliteDatabase,
  outboxTable: string,
  consumed: readonly Consumed[],
): CausedMessage[] {
  if (consumed.length === 0) return [];
  const present = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(outboxTable);
  if (present === undefined) return [];
  const select = db.prepare(
    `SELECT source_endpoint, causation_id, message_id, message_type, destination_kind, destination,
            created_at, dispatched_at, failed_at, failed_reason
       FROM ${outboxTable} WHERE source_endpoint = ? AND causation_id = ? ORDER BY seq`,
  );
  return consumed.flatMap((c) => (select.all(c.endpoint, c.messageId) as Record<string, unknown>[]).map(causedOf));
}

function sqliteValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}
