import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { DependencyError, TransactionRolledBackError } from '../../errors/sluice-error.js';
import { delay, settleWithin } from '../../internal/abort.js';
import { Mutex } from '../../internal/mutex.js';
import { type Clock, systemClock } from '../../internal/clock.js';
import type { InboxDefinition, InboxEntry, InboxResult, InboxRow, InboxStore, InboxWork } from '../inbox-store.js';
import type { EntityVersion } from '../../ordering/ordering-policy.js';
import { type SqliteInboxConfig, SqliteInboxConfigSchema } from './sqlite-inbox-config.js';
import { sqliteInboxDdl } from './sqlite-inbox-ddl.js';
import type { OutboxStore, OutboxStoreOptions } from '../../outbox/outbox-store.js';
import { SqliteOutbox } from './sqlite-outbox.js';

/** The transaction handle a handler gets: the better-sqlite3 database, inside the inbox transaction. */
export type SqliteTransaction = Database.Database;

/** How long one try to take the write lock may block the event loop (SQLite's own busy wait). */
export const BUSY_SLICE_MS = 10;
/** The longest pause between two tries to take the write lock. */
const MAX_BUSY_PAUSE_MS = 100;
/** How long `close()` waits for a running transaction before it closes the database under it. */
export const SQLITE_CLOSE_GRACE_MS = 1_000;
/** What the SQLite inbox calls itself in dependency failures. */
const SQLITE_INBOX = 'inbox (sqlite)';

/**
 * The embedded inbox: one SQLite file in WAL mode. better-sqlite3 is synchronous and a connection
 * holds one transaction at a time, so transactions run one after another (a mutex); handlers that
 * await I/O inside the transaction hold it. Several processes may share the file: a transaction
 * waits for another one's write lock in short tries (each blocks at most {@link BUSY_SLICE_MS})
 * with pauses in between, never blocking the event loop for long, up to `busyTimeoutMs`; then the
 * attempt fails with a `DependencyError`. `find` reads through a second, read-only connection, so
 * it sees only committed rows.
 */
export class SqliteInbox implements InboxStore<SqliteTransaction> {
  readonly kind = 'sqlite';
  readonly #mutex = new Mutex();
  #db: Database.Database | undefined;
  /** The read-only connection of `find` (files only; `:memory:` has one connection). */
  #reader: Database.Database | undefined;
  #closing: Promise<void> | undefined;
  #claim: Database.Statement | undefined;
  #record: Database.Statement | undefined;
  #unclaim: Database.Statement | undefined;
  #readVersion: Database.Statement | undefined;
  #insertVersion: Database.Statement | undefined;
  #updateVersion: Database.Statement | undefined;

  /** `clock` stamps rows and versions (the bus's: a manual clock's virtual time in tests). */
  constructor(
    private readonly config: SqliteInboxConfig,
    private readonly logger?: Logger,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Opens the file and creates the tables. A file locked by another process past `busyTimeoutMs`
   * fails with a `DependencyError` (`bus.start()` waits and tries again), and leaves nothing open.
   */
  async init(): Promise<void> {
    if (this.#db) return;
    if (this.#closing) throw new Error('the SQLite inbox is closed');
    const { path } = this.config;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      // The busy timeout first: switching to WAL and the DDL then wait a little for another process
      // opening the same file at the same moment; longer waits are retried without blocking.
      db.pragma(`busy_timeout = ${BUSY_SLICE_MS}`);
      const opened = db;
      await this.#whenNotBusy(() => this.#setUp(opened));
    } catch (error) {
      db?.close();
      throw classifySqlite(error, 'store');
    }
  }

  #setUp(db: Database.Database): void {
    const { path, table } = this.config;
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.config.synchronous.toUpperCase()}`);
    db.exec(sqliteInboxDdl(table));
    this.#claim = db.prepare(
      `INSERT INTO ${table} (endpoint, message_id, message_type, entity_key, occurred_at, received_at, processed_at, outcome, attempts, envelope)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?) ON CONFLICT (endpoint, message_id) DO NOTHING`,
    );
    this.#record = db.prepare(`UPDATE ${table} SET outcome = ? WHERE endpoint = ? AND message_id = ?`);
    this.#unclaim = db.prepare(`DELETE FROM ${table} WHERE endpoint = ? AND message_id = ?`);
    this.#readVersion = db.prepare(
      `SELECT occurred_at, occurred_ms, occurred_ns, message_id, tombstone FROM ${table}_versions WHERE endpoint = ? AND entity_key = ?`,
    );
    this.#insertVersion = db.prepare(
      `INSERT INTO ${table}_versions (endpoint, entity_key, occurred_at, occurred_ms, occurred_ns, message_id, tombstone, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, entity_key) DO NOTHING`,
    );
    this.#updateVersion = db.prepare(
      `UPDATE ${table}_versions SET occurred_at = ?, occurred_ms = ?, occurred_ns = ?, message_id = ?, tombstone = ?, updated_at = ?
       WHERE endpoint = ? AND entity_key = ?`,
    );
    if (path !== ':memory:') {
      const reader = new Database(path, { readonly: true, fileMustExist: true });
      reader.pragma(`busy_timeout = ${BUSY_SLICE_MS}`);
      this.#reader = reader;
    }
    this.#db = db;
  }

  /**
   * Runs `operation` (synchronous, one statement that may need the write lock) until SQLite stops
   * answering SQLITE_BUSY, pausing between tries without blocking the event loop, up to
   * `busyTimeoutMs`; then fails with a `DependencyError`.
   */
  async #whenNotBusy<T>(operation: () => T): Promise<T> {
    const deadline = Date.now() + this.config.busyTimeoutMs;
    let pause = 1;
    for (;;) {
      try {
        return operation();
      } catch (error) {
        if (!isBusy(error)) throw error;
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new DependencyError(
            `${SQLITE_INBOX}: the database is locked by another connection or process for longer than ` +
              `${this.config.busyTimeoutMs} ms (inbox.busyTimeoutMs)`,
            { dependency: SQLITE_INBOX, cause: error },
          );
        }
        await delay(Math.min(pause, left));
        pause = Math.min(pause * 2, MAX_BUSY_PAUSE_MS);
      }
    }
  }

  /** BEGIN IMMEDIATE: takes the write lock now, waiting for it as {@link #whenNotBusy} does. */
  #begin(db: Database.Database): Promise<void> {
    return this.#whenNotBusy(() => void db.exec('BEGIN IMMEDIATE'));
  }

  /** COMMIT, unless SQLite already rolled the transaction back (after SQLITE_FULL, IOERR, ...). */
  #commit(db: Database.Database): void {
    if (!db.inTransaction) {
      throw new TransactionRolledBackError(
        'the inbox transaction did not commit: SQLite had rolled it back after a failed statement the handler went on from',
      );
    }
    db.exec('COMMIT');
  }

  #open(): Database.Database {
    if (!this.#db) throw new Error('the SQLite inbox is not initialised (bus not started?)');
    return this.#db;
  }

  runOnce<R>(entry: InboxEntry, work: (tx: SqliteTransaction) => Promise<InboxWork<R>>): Promise<InboxResult<R>> {
    return this.#mutex.run(async () => {
      const db = this.#open();
      await this.#begin(db);
      let source: 'store' | 'work' = 'store';
      try {
        if (this.#claimRow(entry, new Date(this.clock.now()).toISOString()) === 0) {
          if (entry.duplicate) {
            await entry.duplicate(db);
            this.#commit(db);
          } else db.exec('ROLLBACK');
          return { status: 'duplicate' } as const;
        }
        source = 'work';
        const done = await work(db);
        source = 'store';
        if (done.recordAs !== undefined && done.recordAs !== 'completed') {
          this.#record?.run(done.recordAs, entry.endpoint, entry.messageId);
        }
        this.#commit(db);
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
    return this.#mutex.run(async () => {
      const db = this.#open();
      await this.#begin(db);
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
        this.#commit(db);
        return results;
      } catch (error) {
        rollback(db);
        throw classifySqlite(error, source);
      }
    });
  }

  /** One transaction without a claim (`bus.transaction`), behind the same mutex and write lock. */
  transaction<R>(work: (tx: SqliteTransaction) => Promise<R>): Promise<R> {
    return this.#mutex.run(async () => {
      const db = this.#open();
      await this.#begin(db);
      let source: 'store' | 'work' = 'work';
      try {
        const result = await work(db);
        source = 'store';
        this.#commit(db);
        return result;
      } catch (error) {
        rollback(db);
        throw classifySqlite(error, source);
      }
    });
  }

  /** The outbox in this file (see `SqliteOutbox`). */
  outbox(options: OutboxStoreOptions): OutboxStore<SqliteTransaction> {
    return new SqliteOutbox({
      table: options.table,
      clock: this.clock,
      exclusive: (fn) =>
        this.#mutex.run(async () => {
          const db = this.#open();
          await this.#begin(db);
          try {
            const result = fn(db);
            this.#commit(db);
            return result;
          } catch (error) {
            rollback(db);
            throw classifySqlite(error, 'store');
          }
        }),
      read: async (fn) => {
        const reader = this.#reader;
        try {
          return reader
            ? await this.#whenNotBusy(() => fn(reader))
            : await this.#mutex.run(async () => fn(this.#open()));
        } catch (error) {
          throw classifySqlite(error, 'store');
        }
      },
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

  cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.#mutex.run(async () => {
      const { table } = this.config;
      const statement = this.#open().prepare(
        `DELETE FROM ${table} WHERE (endpoint, message_id) IN
             (SELECT endpoint, message_id FROM ${table} WHERE processed_at < ? LIMIT ?)`,
      );
      try {
        return (await this.#whenNotBusy(() => statement.run(olderThan.toISOString(), limit))).changes;
      } catch (error) {
        throw classifySqlite(error, 'store');
      }
    });
  }

  // The inbox transaction (BEGIN IMMEDIATE) holds the file's write lock: reads and writes of
  // versions inside it are serialised with every other consumer of the file, no row lock needed.
  async readVersion(_tx: SqliteTransaction, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    const row = this.#readVersion?.get(endpoint, key) as Record<string, string | number> | undefined;
    if (!row) return undefined;
    return {
      occurredAt: String(row.occurred_at),
      instant: { epochMs: Number(row.occurred_ms), nanos: Number(row.occurred_ns) },
      messageId: String(row.message_id),
      tombstone: Number(row.tombstone) === 1,
    };
  }

  async writeVersion(
    _tx: SqliteTransaction,
    endpoint: string,
    key: string,
    version: EntityVersion,
    first: boolean,
  ): Promise<boolean> {
    const row = [
      version.occurredAt,
      version.instant.epochMs,
      version.instant.nanos,
      version.messageId,
      version.tombstone ? 1 : 0,
      new Date(this.clock.now()).toISOString(),
    ];
    const changes = first
      ? this.#insertVersion?.run(endpoint, key, ...row).changes
      : this.#updateVersion?.run(...row, endpoint, key).changes;
    return changes === 1;
  }

  cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    return this.#mutex.run(async () => {
      const { table } = this.config;
      const statement = this.#open().prepare(
        `DELETE FROM ${table}_versions WHERE (endpoint, entity_key) IN
             (SELECT endpoint, entity_key FROM ${table}_versions WHERE endpoint = ? AND tombstone = 1 AND updated_at < ? LIMIT ?)`,
      );
      try {
        return (await this.#whenNotBusy(() => statement.run(endpoint, olderThan.toISOString(), limit))).changes;
      } catch (error) {
        throw classifySqlite(error, 'store');
      }
    });
  }

  /**
   * Reads one row as committed: through the read-only connection, so that a transaction in flight
   * (another message's, on the main connection) is not seen before it commits. A `:memory:`
   * database has only the one connection: there `find` waits for the transaction in flight (do not
   * call it from inside a handler).
   */
  async find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    const read = (db: Database.Database) =>
      db.prepare(`SELECT * FROM ${this.config.table} WHERE endpoint = ? AND message_id = ?`).get(endpoint, messageId) as
        | Record<string, string | number | null>
        | undefined;
    this.#open();
    const reader = this.#reader;
    let row: Record<string, string | number | null> | undefined;
    try {
      row = reader
        ? await this.#whenNotBusy(() => read(reader))
        : await this.#mutex.run(async () => read(this.#open()));
    } catch (error) {
      throw classifySqlite(error, 'store');
    }
    if (!row) return undefined;
    return {
      endpoint: String(row.endpoint),
      messageId: String(row.message_id),
      messageType: String(row.message_type),
      key: row.entity_key === null ? null : String(row.entity_key),
      occurredAt: String(row.occurred_at),
      receivedAt: new Date(String(row.received_at)),
      processedAt: new Date(String(row.processed_at)),
      outcome: String(row.outcome),
      attempts: Number(row.attempts),
      envelope: row.envelope === null ? null : JSON.parse(String(row.envelope)),
    };
  }

  /**
   * Closes the database. Idempotent. Waits up to {@link SQLITE_CLOSE_GRACE_MS} for a transaction in
   * flight (a handler that hangs), then closes under it: SQLite rolls it back.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const closed = this.#mutex.run(async () => this.#closeNow());
    if ((await settleWithin(closed, SQLITE_CLOSE_GRACE_MS)) === 'timeout') {
      this.logger?.warn('SQLite inbox: a transaction is still running at close; closing the database under it');
      this.#closeNow();
    }
  }

  #closeNow(): void {
    this.#reader?.close();
    this.#reader = undefined;
    this.#db?.close();
    this.#db = undefined;
  }
}

/** SQLite result codes that mean the database (the file, the disk, the lock), not the statement, failed. */
const SQLITE_DEPENDENCY = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|NOLFS)/;

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * A failure of the database becomes a `DependencyError`. From the handler's work (`source`), only a
 * better-sqlite3 error counts: another library's error code is the handler's business.
 */
function classifySqlite(error: unknown, source: 'store' | 'work'): unknown {
  if (error instanceof DependencyError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const fromSqlite = source === 'store' || error instanceof Database.SqliteError;
  if (fromSqlite && typeof code === 'string' && SQLITE_DEPENDENCY.test(code)) {
    return new DependencyError(`${SQLITE_INBOX}: ${(error as Error).message}`, {
      dependency: SQLITE_INBOX,
      cause: error,
    });
  }
  return error;
}

/** Rolls back whatever is open; a failed rollback leaves SQLite to roll back on the next BEGIN. */
function rollback(db: Database.Database): void {
  try {
    if (db.open && db.inTransaction) db.exec('ROLLBACK');
  } catch {
    // SQLite rolls an interrupted transaction back itself; the error that matters is the first one.
  }
}

/** The SQLite inbox definition: `createBus({ inbox: { kind: 'sqlite', path } }, { inbox: sqliteInbox() })`. */
export function sqliteInbox(): InboxDefinition<SqliteTransaction, SqliteInboxConfig> {
  return {
    kind: 'sqlite',
    configSchema: SqliteInboxConfigSchema,
    create: (config, deps) => new SqliteInbox(config, deps.logger, deps.clock),
  };
}
