import pg from 'pg';
import type { InboxDeps } from '../inbox-store.js';
import { TransactionRolledBackError } from '../../errors/sluice-error.js';
import { settleWithin } from '../../internal/abort.js';
import { commitWithStaged, dropStaged } from './commit-writes.js';
import { connectionUsable, destroyClient, transactionFailure } from './pg-errors.js';
import { type PostgresInboxConfig, queryTimeoutMs } from './postgres-inbox-config.js';

/** The transaction handle a handler gets: a `pg` client inside the inbox transaction. */
export type PostgresTransaction = pg.PoolClient;

/** SQLSTATE of a statement sent in a transaction that already failed. */
const IN_FAILED_TRANSACTION = '25P02';

/** How long `close()` waits for connections in use before it closes their sockets (twice at most). */
export const CLOSE_GRACE_MS = 1_000;

/**
 * The PostgreSQL inbox's `pg` pool: one transaction per unit of work on a pooled client, the
 * classification of failures outside a transaction, and a close bounded whatever the database does.
 * The statements of the inbox (claims, versions, rows) run through it.
 */
export class PostgresPool {
  readonly #pool: pg.Pool;
  readonly #logger: InboxDeps['logger'];
  /** Clients checked out of the pool (in a transaction): closed by force if `close()` must. */
  readonly #checkedOut = new Set<pg.PoolClient>();
  /** Every client the pool opened and has not yet removed. */
  readonly #clients = new Set<pg.Client>();
  #closing: Promise<void> | undefined;

  constructor(config: PostgresInboxConfig, deps: InboxDeps) {
    this.#logger = deps.logger;
    // The timeouts are startup parameters of each connection: no extra round trip per message.
    const options = [
      `-c lock_timeout=${config.lockTimeoutMs}`,
      `-c statement_timeout=${config.statementTimeoutMs}`,
      `-c idle_in_transaction_session_timeout=${config.idleInTransactionTimeoutMs}`,
      // The outbox's write goes with its values inline: their escaping assumes UTF-8 on the wire,
      // whatever encoding the database or role would give a client (node-postgres decodes UTF-8).
      '-c client_encoding=UTF8',
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
  }

  /** The pool itself, for statements outside a transaction (classify their failures with {@link classified}). */
  get pool(): pg.Pool {
    return this.#pool;
  }

  /** Runs a store operation outside a transaction; a database failure becomes a `DependencyError`. */
  async classified<T>(operation: () => Promise<T>): Promise<T> {
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
   *
   * Wrap the handler's part of `fn` in {@link runWork}: its errors are the work's, not the store's.
   */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
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
      const committed = await commitWithStaged(client).catch((error: unknown) => {
        // A staged statement (the outbox's write) ran in a transaction that had already failed.
        throw (error as { code?: unknown }).code === IN_FAILED_TRANSACTION ? rolledBack('ROLLBACK', error) : error;
      });
      if (committed !== 'COMMIT') throw rolledBack(committed);
      return result;
    } catch (thrown) {
      dropStaged(client);
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

/** A statement in the transaction failed and the handler went on: PostgreSQL rolled it back at COMMIT. */
function rolledBack(answer: string, cause?: unknown): TransactionRolledBackError {
  return new TransactionRolledBackError(
    `the inbox transaction did not commit (PostgreSQL answered COMMIT with ${answer}): ` +
      'a statement in it failed and the handler went on; nothing of this attempt was kept',
    cause === undefined ? {} : { cause },
  );
}

/** Marks an error as thrown by the handler's work (not by one of the store's own statements). */
class WorkFailure {
  constructor(readonly error: unknown) {}
}

/** Runs the handler's work inside a transaction: what it throws is the work's failure, not the store's. */
export async function runWork<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new WorkFailure(error);
  }
}

/** How the inbox's statements run a transaction or a classified operation (a {@link PostgresPool}'s). */
export type Transact = <T>(fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>;
export type Classify = <T>(operation: () => Promise<T>) => Promise<T>;
