// One class, one statement per InboxStore method: over 400 lines because the store's contract is
// wide (runOnce, runBatch, savepoints, versions, cleanup, find), not because it holds other concerns
// — configuration, DDL and the classification of the driver's errors live beside it.
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
import { TransactionRolledBackError } from '../../errors/sluice-error.js';
import { settleWithin } from '../../internal/abort.js';
import { connectionUsable, destroyClient, transactionFailure } from './pg-errors.js';
import { type PostgresInboxConfig, PostgresInboxConfigSchema, queryTimeoutMs } from './postgres-inbox-config.js';
import { DDL_LOCK_TIMEOUT_MS, missingRelations, postgresInboxDdl, runStartupDdl } from './postgres-inbox-ddl.js';
import type { OutboxStore, OutboxStoreOptions } from '../../outbox/outbox-store.js';
import { PostgresOutbox } from './postgres-outbox.js';

/** The transaction handle a handler gets: a `pg` client inside the inbox transaction. */
export type PostgresTransaction = pg.PoolClient;

const LOCK_NOT_AVAILABLE = '55P03';
/** How long `close()` waits for connections in use before it closes their sockets (twice at most). */
export const CLOSE_GRACE_MS = 1_000;

/**
 * The inbox on PostgreSQL with a `pg` pool. One transaction per message: BEGIN, claim the id with
 * `INSERT … ON CONFLICT DO NOTHING`, the handler's statements on the same client, COMMIT. A second
 * consumer inserting the same id blocks on the primary key until the first commits (then sees a
 * duplicate) or rolls back (then processes it); `lock_timeout` bounds that wait.
 */
export class PostgresInbox implements InboxStore<PostgresTransaction> {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;
  readonly #claim: string;
  readonly #record: string;
  readonly #qualified: string;
  readonly #versions: string;
  readonly #logger: InboxDeps['logger'];
  /** Clients checked out of the pool (in a transaction): closed by force if `close()` must. */
  readonly #checkedOut = new Set<pg.PoolClient>();
  /** Every client the pool opened and has not yet removed. */
  readonly #clients = new Set<pg.Client>();
  #closing: Promise<void> | undefined;

  constructor(
    private readonly config: PostgresInboxConfig,
    deps: InboxDeps,
  ) {
    this.#logger = deps.logger;
    // The timeouts are startup parameters of each connection: no extra round trip per message.
    const options = [
      `-c lock_timeout=${config.lockTimeoutMs}`,
      `-c statement_timeout=${config.statementTimeoutMs}`,
      `-c idle_in_transaction_session_timeout=${config.idleInTransactionTimeoutMs}`,
    ].join(' ');
    this.#pool = new pg.Pool({
      connectionString: config.connectionString,
      max: config.poolSize,
      options,
      connectionTimeoutMillis: config.connectTimeoutMs,
      query_timeout: queryTimeoutMs(config.statementTimeoutMs),
      keepAlive: config.keepAliveMs > 0,
      keepAliveInitialDelayMillis: config.keepAliveMs,
    });
    this.#pool.on('error', (error) => deps.logger.warn({ err: error }, 'idle PostgreSQL inbox connection failed'));
    this.#pool.on('connect', (client) => this.#clients.add(client));
    this.#pool.on('remove', (client) => this.#clients.delete(client));
    this.#qualified = `${config.schema}.${config.table}`;
    this.#versions = `${config.schema}.${config.table}_versions`;
    this.#claim = `INSERT INTO ${this.#qualified}
      (endpoint, message_id, message_type, entity_key, occurred_at, received_at, attempts, envelope)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (endpoint, message_id) DO NOTHING`;
    this.#record = `UPDATE ${this.#qualified} SET outcome = $3 WHERE endpoint = $1 AND message_id = $2`;
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

  /** Runs a store operation outside a transaction; a database failure becomes a `DependencyError`. */
  async #classified<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw transactionFailure(error, 'store', undefined);
    }
  }

  /**
   * Runs `fn` in one transaction on a pooled client: COMMIT after it, ROLLBACK if it throws.
   *
   * - A COMMIT that PostgreSQL answers with ROLLBACK (a statement failed and the handler caught it)
   *   is a failed attempt: `TransactionRolledBackError`, never a success.
   * - The connection may die while checked out (a restart, `pg_terminate_backend`, the idle-in-
   *   transaction timeout): its `'error'` is caught here (the pool listens only while it is idle;
   *   an unhandled one would kill the process), the attempt fails, the client is destroyed.
   * - A failure of the database itself becomes a `DependencyError` (see `pg-errors.ts`); a client
   *   that failed that way, or whose ROLLBACK failed, is destroyed rather than reused.
   */
  async #transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let clientError: Error | undefined;
    const onError = (error: Error) => {
      clientError ??= error;
    };
    let client: pg.PoolClient;
    try {
      client = await checkOut(this.#pool, onError);
    } catch (error) {
      throw transactionFailure(error, 'store', undefined);
    }
    this.#checkedOut.add(client);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      const committed = await client.query('COMMIT');
      if (committed.command !== 'COMMIT') {
        throw new TransactionRolledBackError(
          `the inbox transaction did not commit (PostgreSQL answered COMMIT with ${committed.command}): ` +
            'a statement in it failed and the handler went on; nothing of this attempt was kept',
        );
      }
      return result;
    } catch (thrown) {
      const fromWork = thrown instanceof WorkFailure;
      const error = fromWork ? thrown.error : thrown;
      const failure = transactionFailure(error, fromWork ? 'work' : 'store', clientError);
      if (connectionUsable(failure, clientError)) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
      } else broken = clientError ?? (failure as Error);
      throw failure;
    } finally {
      this.#checkedOut.delete(client);
      client.removeListener('error', onError);
      if (broken) destroyClient(client);
      client.release(broken);
    }
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

  async runOnce<R>(
    entry: InboxEntry,
    work: (tx: PostgresTransaction) => Promise<InboxWork<R>>,
  ): Promise<InboxResult<R>> {
    // Only the claim waiting behind another consumer means "busy"; a lock timeout inside the
    // handler's own statements is the handler's failure, for the retry policy to judge.
    let claiming = true;
    try {
      return await this.#transaction(async (client): Promise<InboxResult<R>> => {
        const claimed = await client.query({
          name: `sluice-claim-${this.#qualified}`,
          text: this.#claim,
          values: [
            entry.endpoint,
            entry.messageId,
            entry.messageType,
            entry.key ?? null,
            entry.occurredAt,
            entry.receivedAt,
            entry.attempts,
            entry.envelopeJson ?? null,
          ],
        });
        claiming = false;
        // Nothing was written: the transaction ends without effect.
        if (claimed.rowCount === 0) {
          await entry.duplicate?.(client);
          return { status: 'duplicate' };
        }
        const done = await runWork(() => work(client));
        if (done.recordAs !== undefined && done.recordAs !== 'completed') {
          await client.query(this.#record, [entry.endpoint, entry.messageId, done.recordAs]);
        }
        return { status: 'processed', value: done.result };
      });
    } catch (error) {
      if (claiming && (error as { code?: string }).code === LOCK_NOT_AVAILABLE) return { status: 'busy' };
      throw error;
    }
  }

  async runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: PostgresTransaction, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    return this.#transaction(async (client) => {
      // One multi-row insert claims the whole batch; RETURNING names the ids that are new.
      const values: unknown[] = [];
      const rows: string[] = [];
      for (const e of entries) {
        const b = values.length;
        rows.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8})`);
        values.push(
          e.endpoint,
          e.messageId,
          e.messageType,
          e.key ?? null,
          e.occurredAt,
          e.receivedAt,
          e.attempts,
          e.envelopeJson ?? null,
        );
      }
      const claimed = await client.query(
        `INSERT INTO ${this.#qualified}
             (endpoint, message_id, message_type, entity_key, occurred_at, received_at, attempts, envelope)
           VALUES ${rows.join(', ')} ON CONFLICT (endpoint, message_id) DO NOTHING RETURNING endpoint, message_id`,
        values,
      );
      const isNew = new Set(
        claimed.rows.map((r: { endpoint: string; message_id: string }) => `${r.endpoint}\u0000${r.message_id}`),
      );
      const fresh = entries.map((e) => isNew.delete(`${e.endpoint}\u0000${e.messageId}`));
      const done = await runWork(() => work(client, fresh));
      const failed = entries.filter((_, i) => fresh[i] && !done[i]);
      if (failed.length > 0) {
        await client.query(`DELETE FROM ${this.#qualified} WHERE endpoint = $1 AND message_id = ANY($2)`, [
          failed[0]?.endpoint,
          failed.map((e) => e.messageId),
        ]);
      }
      const results: InboxResult<R>[] = [];
      for (let i = 0; i < entries.length; i++) {
        const d = done[i];
        const entry = entries[i] as InboxEntry;
        if (!fresh[i] || !d) {
          results.push({ status: 'duplicate' });
          continue;
        }
        if (d.recordAs !== undefined && d.recordAs !== 'completed') {
          await client.query(this.#record, [entry.endpoint, entry.messageId, d.recordAs]);
        }
        results.push({ status: 'processed', value: d.result });
      }
      return results;
    });
  }

  async withSavepoint<R>(tx: PostgresTransaction, fn: () => Promise<R>): Promise<R> {
    await tx.query('SAVEPOINT sluice_item');
    try {
      const result = await fn();
      // On an aborted transaction (a statement failed and fn went on) the release fails: then fn's
      // statements are rolled back below and fn counts as failed, alone.
      const released = await tx.query('RELEASE SAVEPOINT sluice_item');
      if (released.command !== 'RELEASE') {
        throw new TransactionRolledBackError(
          `the savepoint was not released (PostgreSQL answered ${released.command})`,
        );
      }
      return result;
    } catch (error) {
      await tx.query('ROLLBACK TO SAVEPOINT sluice_item');
      throw error;
    }
  }

  async cleanup(olderThan: Date, limit: number): Promise<number> {
    return this.#classified(() => this.#cleanup(olderThan, limit));
  }

  async #cleanup(olderThan: Date, limit: number): Promise<number> {
    const result = await this.#pool.query(
      `DELETE FROM ${this.#qualified} WHERE ctid IN
         (SELECT ctid FROM ${this.#qualified} WHERE processed_at < $1 LIMIT $2)`,
      [olderThan, limit],
    );
    return result.rowCount ?? 0;
  }

  async readVersion(tx: PostgresTransaction, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    const { rows } = await tx.query({
      name: `sluice-read-version-${this.#versions}`,
      text: `SELECT occurred_at, occurred_ms, occurred_ns, message_id, tombstone FROM ${this.#versions}
             WHERE endpoint = $1 AND entity_key = $2 FOR UPDATE`,
      values: [endpoint, key],
    });
    const row = rows[0] as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      occurredAt: String(row.occurred_at),
      instant: { epochMs: Number(row.occurred_ms), nanos: Number(row.occurred_ns) },
      messageId: String(row.message_id),
      tombstone: row.tombstone === true,
    };
  }

  async writeVersion(
    tx: PostgresTransaction,
    endpoint: string,
    key: string,
    version: EntityVersion,
    first: boolean,
  ): Promise<boolean> {
    const values = [
      endpoint,
      key,
      version.occurredAt,
      version.instant.epochMs,
      version.instant.nanos,
      version.messageId,
      version.tombstone,
    ];
    if (first) {
      // Blocks on a concurrent first insert of the key until it commits (then inserts nothing).
      const inserted = await tx.query({
        name: `sluice-insert-version-${this.#versions}`,
        text: `INSERT INTO ${this.#versions} (endpoint, entity_key, occurred_at, occurred_ms, occurred_ns, message_id, tombstone)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (endpoint, entity_key) DO NOTHING`,
        values,
      });
      return inserted.rowCount === 1;
    }
    await tx.query({
      name: `sluice-update-version-${this.#versions}`,
      text: `UPDATE ${this.#versions} SET occurred_at = $3, occurred_ms = $4, occurred_ns = $5, message_id = $6,
               tombstone = $7, updated_at = now() WHERE endpoint = $1 AND entity_key = $2`,
      values,
    });
    return true;
  }

  async cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    // SKIP LOCKED: a tombstone a running transaction holds is left for the next run.
    const result = await this.#classified(() =>
      this.#pool.query(
        `DELETE FROM ${this.#versions} WHERE ctid IN
         (SELECT ctid FROM ${this.#versions} WHERE endpoint = $1 AND tombstone AND updated_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`,
        [endpoint, olderThan, limit],
      ),
    );
    return result.rowCount ?? 0;
  }

  async find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    const { rows } = await this.#classified(() =>
      this.#pool.query(
        `SELECT endpoint, message_id, message_type, entity_key, occurred_at, received_at, processed_at, outcome, attempts, envelope
       FROM ${this.#qualified} WHERE endpoint = $1 AND message_id = $2`,
        [endpoint, messageId],
      ),
    );
    const row = rows[0] as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      endpoint: String(row.endpoint),
      messageId: String(row.message_id),
      messageType: String(row.message_type),
      key: row.entity_key === null ? null : String(row.entity_key),
      occurredAt: String(row.occurred_at),
      receivedAt: row.received_at as Date,
      processedAt: row.processed_at as Date,
      outcome: String(row.outcome),
      attempts: Number(row.attempts),
      envelope: row.envelope ?? null,
    };
  }

  /**
   * Closes the pool. Idempotent. Bounded whatever the database does: connections still in use
   * after {@link CLOSE_GRACE_MS} (a handler that hangs, a database that stopped answering) have
   * their sockets closed, and it returns at the latest {@link CLOSE_GRACE_MS} after that.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const ended = this.#pool.end();
    if ((await settleWithin(ended, CLOSE_GRACE_MS)) === 'timeout') {
      this.#logger.warn(
        { inUse: this.#checkedOut.size },
        'PostgreSQL inbox: connections still in use at close; closing their sockets',
      );
      for (const client of this.#checkedOut) destroyClient(client);
      await settleWithin(ended, CLOSE_GRACE_MS);
    }
    // A connection the pool ended with a goodbye the server never answered would keep its socket.
    for (const client of this.#clients) destroyClient(client);
    this.#clients.clear();
  }
}

/**
 * Checks a client out of the pool with `onError` listening from the tick the pool hands it over.
 * The pool stops listening when it hands a client out; with `await pool.connect()` the caller's
 * listener would come one microtask later, and an error the same socket read carries (a
 * `pg_terminate_backend` right after a new connection's ReadyForQuery) would be emitted with no
 * listener and kill the process.
 */
function checkOut(pool: pg.Pool, onError: (error: Error) => void): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    pool.connect((error, client) => {
      if (error || !client) return reject(error ?? new Error('the pool handed out no client'));
      client.on('error', onError);
      resolve(client);
    });
  });
}

/** Marks an error as thrown by the handler's work (not by one of the store's own statements). */
class WorkFailure {
  constructor(readonly error: unknown) {}
}

async function runWork<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new WorkFailure(error);
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
