// The store as the bus sees it, and the outbox in the same file; each part of the contract lives
// beside it — the file, its write lock and its errors (`sqlite-connection.ts`), claim and commit
// (`sqlite-claims.ts`), the ordering guard's versions and tombstones (`sqlite-versions.ts`), the
// processed rows' lookup and cleanup (`sqlite-inbox-rows.ts`), configuration and DDL.
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../../internal/clock.js';
import type { InboxDefinition, InboxEntry, InboxResult, InboxRow, InboxStore, InboxWork } from '../inbox-store.js';
import type { EntityVersion } from '../../ordering/ordering-policy.js';
import { type SqliteInboxConfig, SqliteInboxConfigSchema } from './sqlite-inbox-config.js';
import type { OutboxStore, OutboxStoreOptions } from '../../outbox/outbox-store.js';
import { SqliteOutbox } from './sqlite-outbox.js';
import { SqliteClaims } from './sqlite-claims.js';
import {
  BUSY_SLICE_MS,
  classifySqlite,
  rollback,
  SqliteConnection,
  type SqliteTransaction,
} from './sqlite-connection.js';
import { SqliteInboxRows } from './sqlite-inbox-rows.js';
import { SqliteVersions } from './sqlite-versions.js';

export type { SqliteTransaction } from './sqlite-connection.js';

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
  readonly #connection: SqliteConnection;
  readonly #claims: SqliteClaims;
  readonly #versions: SqliteVersions;
  readonly #rows: SqliteInboxRows;

  /** `clock` stamps rows and versions (the bus's: a manual clock's virtual time in tests). */
  constructor(
    config: SqliteInboxConfig,
    logger?: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.#connection = new SqliteConnection(config, logger, (db) => {
      this.#claims.prepare(db, config.table);
      this.#versions.prepare(db, config.table);
    });
    this.#claims = new SqliteClaims(this.#connection, clock);
    this.#versions = new SqliteVersions(this.#connection, config, clock);
    this.#rows = new SqliteInboxRows(this.#connection, config);
  }

  /**
   * Opens the file and creates the tables. A file locked by another process past `busyTimeoutMs`
   * fails with a `DependencyError` (`bus.start()` waits and tries again), and leaves nothing open.
   */
  init(): Promise<void> {
    return this.#connection.init();
  }

  runOnce<R>(entry: InboxEntry, work: (tx: SqliteTransaction) => Promise<InboxWork<R>>): Promise<InboxResult<R>> {
    return this.#claims.runOnce(entry, work);
  }

  runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: SqliteTransaction, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    return this.#claims.runBatch(entries, work);
  }

  /** One transaction without a claim (`bus.transaction`), behind the same mutex and write lock. */
  transaction<R>(work: (tx: SqliteTransaction) => Promise<R>): Promise<R> {
    return this.#claims.transaction(work);
  }

  /** The outbox in this file (see `SqliteOutbox`). */
  outbox(options: OutboxStoreOptions): OutboxStore<SqliteTransaction> {
    return new SqliteOutbox({
      table: options.table,
      clock: this.clock,
      exclusive: (fn) =>
        this.#connection.run(async () => {
          const db = this.#connection.open();
          await this.#connection.begin(db);
          try {
            const result = fn(db);
            this.#connection.commit(db);
            return result;
          } catch (error) {
            rollback(db);
            throw classifySqlite(error, 'store');
          }
        }),
      read: async (fn) => {
        const reader = this.#connection.reader;
        try {
          return reader
            ? await this.#connection.whenNotBusy(() => fn(reader))
            : await this.#connection.run(async () => fn(this.#connection.open()));
        } catch (error) {
          throw classifySqlite(error, 'store');
        }
      },
    });
  }

  withSavepoint<R>(tx: SqliteTransaction, fn: () => Promise<R>): Promise<R> {
    return this.#claims.withSavepoint(tx, fn);
  }

  cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.#rows.cleanup(olderThan, limit);
  }

  readVersion(tx: SqliteTransaction, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    return this.#versions.readVersion(tx, endpoint, key);
  }

  writeVersion(
    tx: SqliteTransaction,
    endpoint: string,
    key: string,
    version: EntityVersion,
    first: boolean,
  ): Promise<boolean> {
    return this.#versions.writeVersion(tx, endpoint, key, version, first);
  }

  cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    return this.#versions.cleanupTombstones(endpoint, olderThan, limit);
  }

  /** Reads one row as committed (see {@link SqliteInboxRows.find}). */
  find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    return this.#rows.find(endpoint, messageId);
  }

  /** Closes the database (see {@link SqliteConnection.close}): idempotent, bounded. */
  close(): Promise<void> {
    return this.#connection.close();
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
