import pg from 'pg';
import { DependencyError, TransactionRolledBackError } from '../../errors/sluice-error.js';

/** What the PostgreSQL inbox calls itself in dependency failures (logs, kill switch view). */
export const POSTGRES_INBOX = 'inbox (postgres)';

/**
 * SQLSTATE classes and codes that mean the database (not the statement) failed: connection
 * exceptions (08), invalid authorization (28), no such database (3D), insufficient resources (53:
 * too many connections, out of memory, disk full), operator intervention except a statement
 * timeout (57P: admin or crash shutdown, cannot connect now), system errors (58: I/O).
 */
const DEPENDENCY_SQLSTATE = /^(08|28|3D|53|57P|58)/;

/** Socket errors from Node: the server cannot be reached or went away. */
const SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/**
 * `pg` reports these without a code; their text is all there is to go by (pg 8). Matched here, in
 * the one place that knows the driver, never elsewhere.
 */
const PG_CONNECTION_MESSAGES = [
  'Connection terminated', // "…unexpectedly", "…due to connection timeout"
  'timeout exceeded when trying to connect', // the pool: no connection within connectTimeoutMs
  'Query read timeout', // no answer within the query timeout
  'is not queryable', // "Client has encountered a connection error…", "Client was closed…"
  'Cannot use a pool after calling end on the pool', // the store is closing
];

/** The idle-in-transaction timeout ended the session: the handler held the transaction idle too long. */
const IDLE_IN_TRANSACTION_TIMEOUT = '25P03';

const MAX_CAUSE_DEPTH = 8;

/**
 * Whether an error means the database failed, not the statement. `source`: `store` for the store's
 * own operations (connect, BEGIN, the claim, COMMIT), where a socket error can only be the
 * database's; `work` for what a handler threw, where only a server error or a `pg` connection
 * error counts — a refused connection may just as well be the handler's own downstream (a webhook
 * target), which is the handler's to mark (`dependencyErrors`). Looks through `cause` chains.
 */
export function isPostgresDependencyFailure(error: unknown, source: 'store' | 'work' = 'store'): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth++) {
    if (current instanceof DependencyError) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (code === IDLE_IN_TRANSACTION_TIMEOUT) return false;
      const serverError = source === 'store' || current instanceof pg.DatabaseError;
      if (serverError && DEPENDENCY_SQLSTATE.test(code)) return true;
      if (source === 'store' && SOCKET_ERRORS.has(code)) return true;
    }
    const message = current.message;
    if (PG_CONNECTION_MESSAGES.some((m) => message.includes(m))) return true;
    current = current.cause;
  }
  return false;
}

/**
 * The error a failed inbox transaction ends with. `error` is what a statement or the handler's work
 * threw (`source`); `clientError` what the connection reported meanwhile (`'error'` on the
 * client), which says why a later statement found the client unusable.
 */
export function transactionFailure(error: unknown, source: 'store' | 'work', clientError: Error | undefined): unknown {
  if (error instanceof DependencyError || error instanceof TransactionRolledBackError) return error;
  const root = clientError ?? error;
  if ((root as { code?: unknown }).code === IDLE_IN_TRANSACTION_TIMEOUT) {
    return new TransactionRolledBackError(
      'PostgreSQL ended the inbox transaction: it sat idle longer than the idle-in-transaction timeout ' +
        '(inbox.idleInTransactionTimeoutMs); the handler awaited something else while holding it',
      { cause: root },
    );
  }
  if (clientError !== undefined && isPostgresDependencyFailure(clientError, 'store')) return dependencyError(root);
  if (isPostgresDependencyFailure(error, source)) return dependencyError(error);
  return error;
}

/** Wraps a database failure as a `DependencyError` of the PostgreSQL inbox. */
export function dependencyError(cause: unknown): DependencyError {
  const what = cause instanceof Error ? cause.message : String(cause);
  return new DependencyError(`${POSTGRES_INBOX}: ${what}`, { dependency: POSTGRES_INBOX, cause });
}

/** Whether a connection that failed this way can still run a ROLLBACK: not when it is gone or silent. */
export function connectionUsable(failure: unknown, clientError: Error | undefined): boolean {
  return clientError === undefined && !(failure instanceof DependencyError);
}

/**
 * Closes a client's socket at once. `client.end()` says goodbye and waits for the server's answer,
 * which never comes from a database that stopped answering: the socket would outlive the pool.
 */
export function destroyClient(client: pg.ClientBase): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
