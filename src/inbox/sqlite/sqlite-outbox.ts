import type Database from 'better-sqlite3';
import type { Clock } from '../../internal/clock.js';
import {
  type ClaimOptions,
  type HeldRow,
  type OutboxColumnReaders,
  type OutboxLease,
  type OutboxMessage,
  type OutboxRow,
  type OutboxStats,
  type OutboxStore,
  outboxRowOf,
  type WrittenRow,
} from '../../outbox/outbox-store.js';
import { sqliteOutboxDdl } from './sqlite-outbox-ddl.js';

/** What the SQLite inbox lends its outbox: its one connection, behind its mutex and write lock. */
export interface SqliteOutboxDeps {
  readonly table: string;
  readonly clock: Clock;
  /** Runs `fn` in a write transaction of its own (the inbox's mutex, BEGIN IMMEDIATE, COMMIT). */
  readonly exclusive: <T>(fn: (db: Database.Database) => T) => Promise<T>;
  /** Reads on the read-only connection (committed rows only). */
  readonly read: <T>(fn: (db: Database.Database) => T) => Promise<T>;
}

/**
 * The outbox in the SQLite inbox's file. SQLite serialises writers (one write lock for the file),
 * so `seq` order is commit order, and a claim in its own write transaction can never overlap
 * another process's claim. No notifications: the relay polls.
 */
export class SqliteOutbox implements OutboxStore<Database.Database> {
  readonly #prepared = new WeakMap<Database.Database, { insert: Database.Statement; waiting: Database.Statement }>();
  constructor(private readonly deps: SqliteOutboxDeps) {}

  async init(): Promise<void> {
    await this.deps.exclusive((db) => db.exec(sqliteOutboxDdl(this.deps.table)));
  }

  #now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  async write(
    tx: Database.Database,
    messages: readonly OutboxMessage[],
    lease: OutboxLease,
  ): Promise<readonly WrittenRow[]> {
    const { insert, waiting } = this.#writeStatements(tx);
    const now = this.#now();
    const leasedUntil = new Date(this.deps.clock.now() + lease.ms).toISOString();
    return messages.map((m) => {
      // Rows inserted earlier in this write count too: they are this owner's (or not) alike.
      const leased = lease.ms > 0 && (m.key === undefined || waiting.get(m.key, lease.owner, now) === undefined);
      const seq = Number(
        insert.run(
          m.messageId,
          m.destinationKind,
          m.destination,
          m.messageType,
          m.key ?? null,
          JSON.stringify(m.headers),
          m.body,
          now,
          m.sourceEndpoint ?? null,
          m.causationId ?? null,
          leased ? 1 : 0,
          leased ? leasedUntil : now,
          leased ? lease.owner : null,
        ).lastInsertRowid,
      );
      return { seq, leased };
    });
  }

  /** The write's statements, prepared once per connection (the write runs for every message that publishes). */
  #writeStatements(db: Database.Database): { insert: Database.Statement; waiting: Database.Statement } {
    let statements = this.#prepared.get(db);
    if (!statements) {
      const t = this.deps.table;
      statements = {
        insert: db.prepare(
          `INSERT INTO ${t} (message_id, destination_kind, destination, message_type, entity_key, headers, body,
             created_at, source_endpoint, causation_id, attempts, next_attempt_at, leased_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        // The write lock of the transaction serialises writers: what this sees is every earlier row.
        // An earlier row of the key holds the new one back unless the same owner's lease on it runs.
        waiting: db.prepare(
          `SELECT 1 FROM ${t} WHERE entity_key = ? AND dispatched_at IS NULL AND failed_at IS NULL
             AND NOT (leased_by IS ? AND next_attempt_at > ?) LIMIT 1`,
        ),
      };
      this.#prepared.set(db, statements);
    }
    return statements;
  }

  claim(options: ClaimOptions): Promise<OutboxRow[]> {
    const t = this.deps.table;
    return this.deps.exclusive((db) => {
      const now = this.#now();
      const select = db.prepare(
        `SELECT o.* FROM ${t} o
         WHERE o.dispatched_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= ?
           AND (o.entity_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM ${t} p WHERE p.entity_key = o.entity_key AND p.seq < o.seq
               AND p.dispatched_at IS NULL AND p.failed_at IS NULL))
         ORDER BY o.seq LIMIT ?`,
      );
      const rows = select.all(now, options.limit) as Record<string, unknown>[];
      const leased = new Date(this.deps.clock.now() + options.leaseMs).toISOString();
      const update = db.prepare(
        `UPDATE ${t} SET attempts = attempts + 1, next_attempt_at = ?, leased_by = NULL WHERE seq = ?`,
      );
      return rows.map((r) => {
        update.run(leased, r.seq);
        return rowOf({ ...r, attempts: Number(r.attempts) + 1, next_attempt_at: leased });
      });
    });
  }

  async markDispatched(seqs: readonly number[], remove: boolean): Promise<void> {
    if (seqs.length === 0) return;
    const t = this.deps.table;
    await this.deps.exclusive((db) => {
      const list = JSON.stringify(seqs);
      if (remove) db.prepare(`DELETE FROM ${t} WHERE seq IN (SELECT value FROM json_each(?))`).run(list);
      else
        db.prepare(`UPDATE ${t} SET dispatched_at = ? WHERE seq IN (SELECT value FROM json_each(?))`).run(
          this.#now(),
          list,
        );
    });
  }

  async retryAfter(rows: readonly (HeldRow & { delayMs: number })[]): Promise<void> {
    if (rows.length === 0) return;
    await this.deps.exclusive((db) => {
      const update = db.prepare(
        `UPDATE ${this.deps.table} SET next_attempt_at = ?, leased_by = NULL WHERE seq = ? AND attempts = ?`,
      );
      const now = this.deps.clock.now();
      for (const r of rows) update.run(new Date(now + r.delayMs).toISOString(), r.seq, r.attempts);
    });
  }

  async moveAside(row: HeldRow, reason: string): Promise<void> {
    await this.deps.exclusive((db) =>
      db
        .prepare(`UPDATE ${this.deps.table} SET failed_at = ?, failed_reason = ? WHERE seq = ? AND attempts = ?`)
        .run(this.#now(), reason, row.seq, row.attempts),
    );
  }

  stats(): Promise<OutboxStats> {
    const t = this.deps.table;
    return this.deps.read((db) => {
      const row = db
        .prepare(
          `SELECT
             (SELECT count(*) FROM ${t} WHERE dispatched_at IS NULL AND failed_at IS NULL) AS depth,
             (SELECT created_at FROM ${t} WHERE dispatched_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT 1) AS oldest,
             (SELECT count(*) FROM ${t} WHERE failed_at IS NOT NULL) AS moved`,
        )
        .get() as { depth: number; oldest: string | null; moved: number };
      return {
        depth: Number(row.depth),
        oldestCreatedAt: row.oldest === null ? undefined : new Date(row.oldest),
        movedAside: Number(row.moved),
      };
    });
  }

  cleanup(olderThan: Date, limit: number): Promise<number> {
    const t = this.deps.table;
    return this.deps.exclusive(
      (db) =>
        db
          .prepare(`DELETE FROM ${t} WHERE seq IN (SELECT seq FROM ${t} WHERE dispatched_at < ? LIMIT ?)`)
          .run(olderThan.toISOString(), limit).changes,
    );
  }

  rows(limit: number): Promise<OutboxRow[]> {
    return this.deps.read((db) =>
      (db.prepare(`SELECT * FROM ${this.deps.table} ORDER BY seq LIMIT ?`).all(limit) as Record<string, unknown>[]).map(
        rowOf,
      ),
    );
  }
}

/** SQLite keeps times as ISO 8601 text and the headers as JSON text. */
const SQLITE_COLUMNS: OutboxColumnReaders = {
  date: (v) => new Date(String(v)),
  headers: (v) => JSON.parse(String(v)) as Record<string, string>,
};
const rowOf = (r: Record<string, unknown>): OutboxRow => outboxRowOf(r, SQLITE_COLUMNS);
