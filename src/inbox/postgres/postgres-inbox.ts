// The store as the bus sees it: start-up (tables made when missing) and the outbox on the same pool;
// each part of the contract lives beside it — the pool and its transactions (`postgres-pool.ts`),
// claim and commit (`postgres-claims.ts`), the ordering guard's versions and tombstones
// (`postgres-versions.ts`), the processed rows' lookup and cleanup (`postgres-inbox-rows.ts`),
// configuration, DDL and the classification of the driver's errors.
import pg from 'pg';
import type {
  InboxDefinition,
  InboxDeps,
  InboxEntry,
  InboxResult,
  InboxRow,
  InboxStore,
  InboxWork,
} from '../inbox-store.js';
import type { EntityVersion } from '../../ordering/ordering-policy.js';
import { type PostgresInboxConfig, PostgresInboxConfigSchema, queryTimeoutMs } from './postgres-inbox-config.js';
import { DDL_LOCK_TIMEOUT_MS, missingRelations, postgresInboxDdl, runStartupDdl } from './postgres-inbox-ddl.js';
import type { OutboxStore, OutboxStoreOptions } from '../../outbox/outbox-store.js';
import { PostgresOutbox } from './postgres-outbox.js';
import { PostgresClaims } from './postgres-claims.js';
import { PostgresInboxRows } from './postgres-inbox-rows.js';
import { PostgresPool, type PostgresTransaction, runWork } from './postgres-pool.js';
import { PostgresVersions } from './postgres-versions.js';

export type { PostgresTransaction } from './postgres-pool.js';

/**
 * The inbox on PostgreSQL with a `pg` pool. One transaction per message: BEGIN, claim the id with
 * `INSERT … ON CONFLICT DO NOTHING`, the handler's statements on the same client, COMMIT. A second
 * consumer inserting the same id blocks on the primary key until the first commits (then sees a
 * duplicate) or rolls back (then processes it); `lock_timeout` bounds that wait.
 */
export class PostgresInbox implements InboxStore<PostgresTransaction> {
  readonly kind = 'postgres';
  readonly #connections: PostgresPool;
  readonly #pool: pg.Pool;
  readonly #logger: InboxDeps['logger'];
  readonly #claims: PostgresClaims;
  readonly #versions: PostgresVersions;
  readonly #rows: PostgresInboxRows;

  constructor(
    private readonly config: PostgresInboxConfig,
    deps: InboxDeps,
  ) {
    this.#logger = deps.logger;
    this.#connections = new PostgresPool(config, deps);
    this.#pool = this.#connections.pool;
    const qualified = `${config.schema}.${config.table}`;
    const classified = <T>(operation: () => Promise<T>) => this.#classified(operation);
    this.#claims = new PostgresClaims((fn) => this.#transaction(fn), qualified);
    this.#versions = new PostgresVersions(this.#pool, `${config.schema}.${config.table}_versions`, classified);
    this.#rows = new PostgresInboxRows(this.#pool, qualified, classified);
  }

  /**
   * Creates the tables when they are missing. A database that cannot be reached fails with a
   * `DependencyError` (`bus.start()` waits and tries again); anything else (a permission, a name)
   * fails as it is.
   */
  async init(): Promise<void> {
    if (!this.config.createTables) return this.#classified(async () => void (await this.#pool.query('SELECT 1')));
    return this.#classified(() => this.#createTables());
  }

  async #createTables(): Promise<void> {
    if (`${this.config.table}_versions`.length > 63) {
      throw new Error(
        `inbox.table: "${this.config.table}" is too long for its versions table "${this.config.table}_versions" (at most 63 characters)`,
      );
    }
    const { schema, table } = this.config;
    // On a live database the tables are there: check without taking any lock. (`CREATE INDEX IF
    // NOT EXISTS` locks the table against writes even when the index exists, so running the DDL
    // anyway would queue behind every handler transaction in flight and stall new claims.)
    if (await this.#tablesExist()) return;
    // `CREATE … IF NOT EXISTS` is not safe against itself: two instances starting at once both see
    // no table and one fails on a catalog unique index (23505). One transaction-scoped advisory
    // lock serialises every Sluice start-up DDL on this database; the second instance then finds
    // the tables made. The wait has its own timeout, not the pool's short `lockTimeoutMs`.
    await this.#ddl(postgresInboxDdl(schema, table));
  }

  /** Runs start-up DDL in one transaction under the advisory lock every Sluice start-up DDL takes. */
  #ddl(text: string): Promise<void> {
    return this.#transaction((client) => runStartupDdl(client, text, queryTimeoutMs(DDL_LOCK_TIMEOUT_MS)));
  }

  /** The outbox in the inbox's schema, on its pool (see `PostgresOutbox`). */
  outbox(options: OutboxStoreOptions): OutboxStore<PostgresTransaction> {
    const { config } = this;
    return new PostgresOutbox({
      pool: this.#pool,
      schema: config.schema,
      table: options.table,
      instanceId: options.instanceId,
      createTables: config.createTables,
      logger: this.#logger,
      classified: (operation) => this.#classified(operation),
      ddl: (text) => this.#ddl(text),
      listenClient: () =>
        new pg.Client({
          connectionString: config.connectionString,
          connectionTimeoutMillis: config.connectTimeoutMs,
          keepAlive: config.keepAliveMs > 0,
          keepAliveInitialDelayMillis: config.keepAliveMs,
        }),
    });
  }

  /** One transaction without a claim (`bus.transaction`); failures classified as in `runOnce`. */
  transaction<R>(work: (tx: PostgresTransaction) => Promise<R>): Promise<R> {
    return this.#transaction((client) => runWork(() => work(client)));
  }

  #classified<T>(operation: () => Promise<T>): Promise<T> {
    return this.#connections.classified(operation);
  }

  #transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#connections.transaction(fn);
  }

  /** Whether both tables and their indexes exist (catalog lookups only, no locks). */
  async #tablesExist(): Promise<boolean> {
    const { schema, table } = this.config;
    const names = [table, `${table}_processed_at_idx`, `${table}_versions`, `${table}_versions_tombstones_idx`];
    return (
      (await missingRelations(
        this.#pool,
        names.map((name) => `${schema}.${name}`),
      )) === 0
    );
  }

  runOnce<R>(entry: InboxEntry, work: (tx: PostgresTransaction) => Promise<InboxWork<R>>): Promise<InboxResult<R>> {
    return this.#claims.runOnce(entry, work);
  }

  runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: PostgresTransaction, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    return this.#claims.runBatch(entries, work);
  }

  withSavepoint<R>(tx: PostgresTransaction, fn: () => Promise<R>): Promise<R> {
    return this.#claims.withSavepoint(tx, fn);
  }

  cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.#rows.cleanup(olderThan, limit);
  }

  readVersion(tx: PostgresTransaction, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    return this.#versions.readVersion(tx, endpoint, key);
  }

  writeVersion(
    tx: PostgresTransaction,
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

  find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    return this.#rows.find(endpoint, messageId);
  }

  /** Closes the pool (see {@link PostgresPool.close}): idempotent, bounded whatever the database does. */
  close(): Promise<void> {
    return this.#connections.close();
  }
}

/** The PostgreSQL inbox definition: `createBus({ inbox: { kind: 'postgres', connectionString } }, { inbox: postgresInbox() })`. */
export function postgresInbox(): InboxDefinition<PostgresTransaction, PostgresInboxConfig> {
  return {
    kind: 'postgres',
    configSchema: PostgresInboxConfigSchema,
    create: (config, deps) => new PostgresInbox(config, deps),
  };
}
