import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { DependencyError, TransactionRolledBackError } from '../../errors/sluice-error.js';
import { delay, settleWithin } from '../../internal/abort.js';
import { Mutex } from '../../internal/mutex.js';
import type { SqliteInboxConfig } from './sqlite-inbox-config.js';
import { sqliteInboxDdl } from './sqlite-inbox-ddl.js';

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
 * The SQLite inbox's file: opened in WAL mode with its tables, one transaction at a time behind a
 * mutex (better-sqlite3 is synchronous and a connection holds one transaction), the write lock
 * taken in short tries that never block the event loop for long, a second read-only connection for
 * committed reads, a close bounded whatever a handler does, and the classification of SQLite's
 * errors. The inbox's statements (claims, versions, rows) run on it.
 */
export class SqliteConnection {
  readonly #mutex = new Mutex();
  #db: Database.Database | undefined;
  /** The read-only connection of `find` (files only; `:memory:` has one connection). */
  #reader: Database.Database | undefined;
  #closing: Promise<void> | undefined;

  /** `prepare` makes the store's statements on the new connection, before anything runs on it. */
  constructor(
    private readonly config: SqliteInboxConfig,
    private readonly logger: Logger | undefined,
    private readonly prepare: (db: Database.Database) => void,
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
      await this.whenNotBusy(() => this.#setUp(opened));
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
    this.prepare(db);
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
  async whenNotBusy<T>(operation: () => T): Promise<T> {
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

  /** BEGIN IMMEDIATE: takes the write lock now, waiting for it as {@link whenNotBusy} does. */
  begin(db: Database.Database): Promise<void> {
    return this.whenNotBusy(() => void db.exec('BEGIN IMMEDIATE'));
  }

  /** COMMIT, unless SQLite already rolled the transaction back (after SQLITE_FULL, IOERR, ...). */
  commit(db: Database.Database): void {
    if (!db.inTransaction) {
      throw new TransactionRolledBackError(
        'the inbox transaction did not commit: SQLite had rolled it back after a failed statement the handler went on from',
      );
    }
    db.exec('COMMIT');
  }

  /** The connection, inside {@link run}; throws before `init`. */
  open(): Database.Database {
    if (!this.#db) throw new Error('the SQLite inbox is not initialised (bus not started?)');
    return this.#db;
  }

  /** The read-only connection (files only), for reads that must see committed rows alone. */
  get reader(): Database.Database | undefined {
    return this.#reader;
  }

  /** Runs `section` alone on the connection: one transaction at a time, in call order. */
  run<T>(section: () => Promise<T>): Promise<T> {
    return this.#mutex.run(section);
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
export function classifySqlite(error: unknown, source: 'store' | 'work'): unknown {
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
export function rollback(db: Database.Database): void {
  try {
    if (db.open && db.inTransaction) db.exec('ROLLBACK');
  } catch {
    // SQLite rolls an interrupted transaction back itself; the error that matters is the first one.
  }
}
