import { z } from 'zod';
import { sqlTableName } from '../../internal/sql-identifier.js';
import { InboxCommonConfigShape, SqlIdentifierSchema } from '../inbox-store.js';

/** The settings of the PostgreSQL inbox (`inbox` in the bus configuration); see docs/inbox.md. */
export const PostgresInboxConfigSchema = z.strictObject({
  kind: z.literal('postgres'),
  /** `postgres://user:password@host:5432/db`. A secret: never logged. */
  connectionString: z.string().min(1),
  schema: SqlIdentifierSchema.default('public'),
  table: sqlTableName('_versions_tombstones_idx').default('sluice_inbox'),
  poolSize: z.number().int().min(1).max(1_000).default(10),
  /**
   * How long a consumer waits for another consumer that holds the same message id in an open
   * transaction; past it the delivery is released with a short delay instead.
   */
  lockTimeoutMs: z.number().int().min(1).max(600_000).default(10_000),
  /** Create the schema and table on start; off when a DBA creates them (see docs/inbox.md). */
  createTables: z.boolean().default(true),
  /**
   * How long getting a connection may take: opening one, or waiting for a free one of the pool.
   * Past it the attempt fails as a dependency failure (the message goes back, no attempt spent).
   */
  connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /**
   * PostgreSQL's `statement_timeout` for the store's and the handlers' statements on the inbox
   * connection: a slower statement fails (the handler's failure). The client also gives up on a
   * statement that got no answer at all, after twice this (at most 5 s more): the database stopped
   * answering (a dependency failure; the connection is closed, never reused).
   */
  statementTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
  /**
   * PostgreSQL's `idle_in_transaction_session_timeout`: a handler that keeps the inbox transaction
   * idle longer (awaiting something else) loses it, and the attempt fails. `0` turns it off.
   */
  idleInTransactionTimeoutMs: z.number().int().min(0).max(3_600_000).default(60_000),
  /** TCP keep-alive on idle connections after this long idle, so that a dead peer is noticed; `0` off. */
  keepAliveMs: z.number().int().min(0).max(3_600_000).default(10_000),
  ...InboxCommonConfigShape,
});
export type PostgresInboxConfig = z.infer<typeof PostgresInboxConfigSchema>;

/**
 * The client gives up on a statement that got no answer at all this long after the server's
 * `statement_timeout` would have ended it: the statement timeout again, at most 5 s.
 */
export function queryTimeoutMs(statementTimeoutMs: number): number {
  return statementTimeoutMs + Math.min(statementTimeoutMs, 5_000);
}
