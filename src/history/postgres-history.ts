import {
  DDL_LOCK_TIMEOUT_MS,
  type DdlQueryable,
  missingRelations,
  runStartupDdl,
} from '../inbox/postgres/postgres-inbox-ddl.js';
import { queryTimeoutMs } from '../inbox/postgres/postgres-inbox-config.js';
import {
  causedOf,
  type Consumed,
  HISTORY_COLUMNS,
  type HistoryBackend,
  recordOf,
  recordValues,
} from './history-backend.js';
import type { CausedMessage, HistoryQuery, HistoryRecord, LostTo, StoredHistoryRecord } from './history-record.js';

/** What the history uses of a `pg` client (the PostgreSQL inbox's transaction handle). */
interface PgQueryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{
    rows: Record<string, unknown>[];
    rowCount: number | null;
  }>;
}

export interface PostgresHistoryNames {
  readonly schema: string;
  readonly table: string;
  /** The inbox table: the ordering guard's versions are in `<inboxTable>_versions`. */
  readonly inboxTable: string;
  readonly outboxTable: string;
  /** The inbox's `createTables`: when false, a missing history table fails `init` naming it. */
  readonly createTables: boolean;
}

/** The history table's DDL on PostgreSQL (also in docs/explain.md). */
export function postgresHistoryDdl(schema: string, table: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${schema}.${table} (
  seq                 bigserial   PRIMARY KEY,
  endpoint            text        NOT NULL,
  entity_key          text        NOT NULL,
  message_id          text        NOT NULL,
  message_type        text        NOT NULL,
  occurred_at         text        NOT NULL,
  tombstone           boolean     NOT NULL,
  recorded_at         timestamptz NOT NULL,
  outcome             text        NOT NULL,
  reason              text,
  detail              text,
  lost_to_message_id  text,
  lost_to_occurred_at text,
  lost_to_tombstone   boolean,
  attempts            integer     NOT NULL,
  data                text
);
CREATE INDEX IF NOT EXISTS ${table}_key_idx ON ${schema}.${table} (entity_key, seq);
CREATE INDEX IF NOT EXISTS ${table}_message_idx ON ${schema}.${table} (message_id);`;
}

/** The history on the PostgreSQL inbox's database, through its transaction handle (a `pg` client). */
export class PostgresHistory implements HistoryBackend {
  readonly #history: string;
  readonly #insert: string;

  constructor(private readonly names: PostgresHistoryNames) {
    this.#history = `${names.schema}.${names.table}`;
    const params = Array.from({ length: 15 }, (_, i) => `$${i + 1}`).join(', ');
    this.#insert = `INSERT INTO ${this.#history} (${HISTORY_COLUMNS}) VALUES (${params})`;
  }

  async init(tx: unknown): Promise<void> {
    const pg = tx as DdlQueryable;
    const { schema, table } = this.names;
    // Catalog lookups first: on a live database the DDL (which locks) does not run at all.
    const names = [table, `${table}_key_idx`, `${table}_message_idx`].map((n) => `${schema}.${n}`);
    if ((await missingRelations(pg, names)) === 0) return;
    if (!this.names.createTables) {
      throw new Error(
        `history.table: ${schema}.${table} or its indexes are missing and inbox.createTables is false: ` +
          'create them (postgresHistoryDdl, docs/explain.md) or turn history off',
      );
    }
    // Under the lock (and timeouts) of every Sluice start-up DDL on this database.
    await runStartupDdl(pg, postgresHistoryDdl(schema, table), queryTimeoutMs(DDL_LOCK_TIMEOUT_MS));
  }

  async write(tx: unknown, record: HistoryRecord): Promise<void> {
    await (tx as PgQueryable).query({
      name: `sluice-history-${this.#history}`,
      text: this.#insert,
      values: recordValues(record),
    });
  }

  async writeMany(tx: unknown, records: readonly HistoryRecord[]): Promise<void> {
    if (records.length === 1) return this.write(tx, records[0] as HistoryRecord);
    const values: unknown[] = [];
    const rows: string[] = [];
    for (const r of records) {
      const b = values.length;
      rows.push(`(${Array.from({ length: 15 }, (_, i) => `$${b + i + 1}`).join(', ')})`);
      values.push(...recordValues(r));
    }
    await (tx as PgQueryable).query({
      text: `INSERT INTO ${this.#history} (${HISTORY_COLUMNS}) VALUES ${rows.join(', ')}`,
      values,
    });
  }

  async read(tx: unknown, query: HistoryQuery): Promise<StoredHistoryRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (query.key !== undefined) add('entity_key = ?', query.key);
    if (query.messageId !== undefined) add('message_id = ?', query.messageId);
    if (query.endpoints !== undefined) add('endpoint = ANY(?)', [...query.endpoints]);
    if (query.since !== undefined) add('recorded_at >= ?', query.since);
    values.push(query.limit);
    const { rows } = await (tx as PgQueryable).query({
      text: `SELECT seq, ${HISTORY_COLUMNS} FROM ${this.#history}
             WHERE ${where.length > 0 ? where.join(' AND ') : 'true'} ORDER BY seq DESC LIMIT $${values.length}`,
      values,
    });
    return rows.map(recordOf).reverse();
  }

  async cleanup(tx: unknown, olderThan: Date, limit: number): Promise<number> {
    // Walks the primary key from the oldest row: rows are recorded in time order.
    const result = await (tx as PgQueryable).query({
      text: `DELETE FROM ${this.#history} WHERE seq IN
               (SELECT seq FROM ${this.#history} WHERE recorded_at < $1 ORDER BY seq LIMIT $2)`,
      values: [olderThan, limit],
    });
    return result.rowCount ?? 0;
  }

  async lastApplied(tx: unknown, endpoint: string, key: string): Promise<LostTo | undefined> {
    const { rows } = await (tx as PgQueryable).query({
      text: `SELECT occurred_at, message_id, tombstone FROM ${this.names.schema}.${this.names.inboxTable}_versions
             WHERE endpoint = $1 AND entity_key = $2`,
      values: [endpoint, key],
    });
    const row = rows[0];
    if (!row) return undefined;
    return {
      occurredAt: String(row.occurred_at),
      messageId: String(row.message_id),
      tombstone: row.tombstone === true,
    };
  }

  async caused(tx: unknown, consumed: readonly Consumed[]): Promise<CausedMessage[]> {
    return readPostgresOutbox(tx as PgQueryable, this.names.schema, this.names.outboxTable, consumed);
  }
}

/**
 * The outbox reader on PostgreSQL: the rows of `<schema>.<outboxTable>` (issue 13's columns) whose
 * `source_endpoint` and `causation_id` name one of the consumed messages. No table: `[]`.
 */
export async function readPostgresOutbox(
  pg: PgQueryable,
  schema: string,
  outboxTable: string,
  consumed: readonly Consumed[],
): Promise<CausedMessage[]> {
  if (consumed.length === 0) return [];
  const { rows: found } = await pg.query({
    text: 'SELECT to_regclass($1) IS NOT NULL AS present',
    values: [`${schema}.${outboxTable}`],
  });
  if (found[0]?.present !== true) return [];
  const { rows } = await pg.query({
    text: `SELECT o.source_endpoint, o.causation_id, o.message_id, o.message_type, o.destination_kind, o.destination,
                  o.created_at, o.dispatched_at, o.failed_at, o.failed_reason
             FROM ${schema}.${outboxTable} o
             JOIN unnest($1::text[], $2::text[]) AS c(endpoint, message_id)
               ON o.source_endpoint = c.endpoint AND o.causation_id = c.message_id
            ORDER BY o.seq`,
    values: [consumed.map((c) => c.endpoint), consumed.map((c) => c.messageId)],
  });
  return rows.map(causedOf);
}
