import type Database from 'better-sqlite3';
import type { Clock } from '../../internal/clock.js';
import type { InboxEntry, InboxResult, InboxWork } from '../inbox-store.js';
import { classifySqlite, rollback, type SqliteConnection, type SqliteTransaction } from './sqlite-connection.js';

/**
 * The SQLite inbox's claim and commit: one write transaction (BEGIN IMMEDIATE) per message
 * (`runOnce`), per group (`runBatch`) or per `bus.transaction`, each id claimed with a prepared
 * `INSERT … ON CONFLICT DO NOTHING`, the outcome recorded, COMMIT; and the savepoints that isolate
 * one member of a group.
 */
export class SqliteClaims {
  #claim: Database.Statement | undefined;
  #record: Database.Statement | undefined;
  #unclaim: Database.Statement | undefined;

  /** `clock` stamps the rows (the bus's: a manual clock's virtual time in tests). */
  constructor(
    private readonly connection: SqliteConnection,
    private readonly clock: Clock,
  ) {}

  /** Prepares the statements on a connection just opened (its tables made). */
  prepare(db: Database.Database, table: string): void {
    this.#claim = db.prepare(
      `INSERT INTO ${table} (endpoint, message_id, message_type, entity_key, occurred_at, received_at, processed_at, outcome, attempts, envelope)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?) ON CONFLICT (endpoint, message_id) DO NOTHING`,
    );
    this.#record = db.prepare(`UPDATE ${table} SET outcome = ? WHERE endpoint = ? AND message_id = ?`);
    this.#unclaim = db.prepare(`DELETE FROM ${table} WHERE endpoint = ? AND message_id = ?`);
  }

  runOnce<R>(entry: InboxEntry, work: (tx: SqliteTransaction) => Promise<InboxWork<R>>): Promise<InboxResult<R>> {
    return this.connection.run(async () => {
      const db = this.connection.open();
      await this.connection.begin(db);
      let source: 'store' | 'work' = 'store';
      try {
        if (this.#claimRow(entry, new Date(this.clock.now()).toISOString()) === 0) {
          if (entry.duplicate) {
            await entry.duplicate(db);
            this.connection.commit(db);
          } else db.exec('ROLLBACK');
          return { status: 'duplicate' } as const;
        }
        source = 'work';
        const done = await work(db);
        source = 'store';
        if (done.recordAs !== undefined && done.recordAs !== 'completed') {
          this.#record?.run(done.recordAs, entry.endpoint, entry.messageId);
        }
        this.connection.commit(db);
        return { status: 'processed', value: done.result } as const;
      } catch (error) {
        rollback(db);
        throw classifySqlite(error, source);
      }
    });
  }

  runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: SqliteTransaction, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    return this.connection.run(async () => {
      const db = this.connection.open();
      await this.connection.begin(db);
      let source: 'store' | 'work' = 'store';
      try {
        // In process, one prepared insert per row costs microseconds: no multi-row statement needed.
        const now = new Date(this.clock.now()).toISOString();
        const fresh = entries.map((e) => this.#claimRow(e, now) === 1);
        source = 'work';
        const done = await work(db, fresh);
        source = 'store';
        const results = entries.map((entry, i): InboxResult<R> => {
          const d = done[i];
          if (fresh[i] && !d) this.#unclaim?.run(entry.endpoint, entry.messageId);
          if (!fresh[i] || !d) return { status: 'duplicate' };
          if (d.recordAs !== undefined && d.recordAs !== 'completed') {
            this.#record?.run(d.recordAs, entry.endpoint, entry.messageId);
          }
          return { status: 'processed', value: d.result };
        });
        this.connection.commit(db);
        return results;
      } catch (error) {
        rollback(db);
        throw classifySqlite(error, source);
      }
    });
  }

  /** One transaction without a claim (`bus.transaction`), behind the same mutex and write lock. */
  transaction<R>(work: (tx: SqliteTransaction) => Promise<R>): Promise<R> {
    return this.connection.run(async () => {
      const db = this.connection.open();
      await this.connection.begin(db);
      let source: 'store' | 'work' = 'work';
      try {
        const result = await work(db);
        source = 'store';
        this.connection.commit(db);
        return result;
      } catch (error) {
        rollback(db);
        throw classifySqlite(error, source);
      }
    });
  }

  #claimRow(entry: InboxEntry, now: string): number {
    return (
      this.#claim?.run(
        entry.endpoint,
        entry.messageId,
        entry.messageType,
        entry.key ?? null,
        entry.occurredAt,
        entry.receivedAt.toISOString(),
        now,
        entry.attempts,
        entry.envelopeJson ?? null,
      ).changes ?? 0
    );
  }

  async withSavepoint<R>(tx: SqliteTransaction, fn: () => Promise<R>): Promise<R> {
    tx.exec('SAVEPOINT sluice_item');
    try {
      const result = await fn();
      tx.exec('RELEASE sluice_item');
      return result;
    } catch (error) {
      tx.exec('ROLLBACK TO sluice_item');
      tx.exec('RELEASE sluice_item');
      throw error;
    }
  }
}
