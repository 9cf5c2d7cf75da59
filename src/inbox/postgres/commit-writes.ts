import pg from 'pg';
import { OutboxWriteNotSent } from '../../outbox/outbox-store.js';

/**
 * Statements a transaction sends together with its COMMIT, in the same simple query (one round trip
 * instead of one more per statement): the outbox's write, which is the last thing a transaction does
 * anyway. Each is staged on the transaction's client and answered when the COMMIT query comes back;
 * statements of a savepoint rolled back, or of a transaction that never reached its COMMIT, are
 * dropped unsent (rejected with `OutboxWriteNotSent`).
 */
interface Staged {
  readonly sql: string;
  readonly resolve: (rows: Record<string, unknown>[]) => void;
  readonly reject: (error: unknown) => void;
}

const { DatabaseError } = pg;
const staged = new WeakMap<pg.ClientBase, Staged[]>();

/** Stages `sql` (values inlined as escaped literals) to run right before `client`'s COMMIT; resolves with its rows. */
export function stageBeforeCommit(client: pg.ClientBase, sql: string): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const list = staged.get(client);
    const entry = { sql, resolve, reject };
    if (list) list.push(entry);
    else staged.set(client, [entry]);
  });
}

/** How many statements `client` has staged (a savepoint remembers it, to drop what it rolls back). */
export function stagedCount(client: pg.ClientBase): number {
  return staged.get(client)?.length ?? 0;
}

/** Drops, unsent, the statements staged after the first `keep` (a rolled-back savepoint's, or all). */
export function dropStaged(client: pg.ClientBase, keep = 0): void {
  const list = staged.get(client);
  if (!list) return;
  dropList(list.splice(keep));
  if (list.length === 0) staged.delete(client);
}

function dropList(list: readonly Staged[]): void {
  for (const entry of list) entry.reject(new OutboxWriteNotSent());
}

/**
 * Commits `client`'s transaction, its staged statements first in the same query. Returns what
 * PostgreSQL answered the COMMIT with (`ROLLBACK` when the transaction had failed before). A
 * statement that fails fails the query: nothing is committed, and every staged statement learns
 * the error (the COMMIT's fate is then unknown only if the connection broke).
 */
export async function commitWithStaged(client: pg.ClientBase): Promise<string> {
  const list = staged.get(client);
  staged.delete(client);
  // A transaction that already failed (the handler caught a failed statement and went on) is
  // answered ROLLBACK without its staged statements: nothing to write, and nothing of the messages
  // in the server's log of the failed statement.
  if (list && list.length > 0 && client.getTransactionStatus() === 'E') dropList(list);
  else if (list && list.length > 0) return commitStaged(client, list);
  return (await client.query('COMMIT')).command;
}

async function commitStaged(client: pg.ClientBase, list: readonly Staged[]): Promise<string> {
  let results: pg.QueryResult[];
  try {
    const answered = (await client.query(`${list.map((s) => s.sql).join(';\n')};\nCOMMIT`)) as unknown;
    results = answered as pg.QueryResult[];
  } catch (error) {
    // The server refused a statement: the transaction did not commit (the COMMIT comes last), so
    // nothing was written. A broken connection, or the server going away, leaves it unknown.
    const refused = error instanceof DatabaseError && !/^(08|57P)/.test(error.code ?? '');
    for (const entry of list) entry.reject(refused ? new OutboxWriteNotSent() : error);
    throw error;
  }
  for (const [i, entry] of list.entries()) entry.resolve(results[i]?.rows ?? []);
  return results[results.length - 1]?.command ?? 'COMMIT';
}
