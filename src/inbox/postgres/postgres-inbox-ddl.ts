/** The DDL the store runs on start (idempotent); also in docs/inbox.md for DBAs. */
export function postgresInboxDdl(schema: string, table: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${schema}.${table} (
  endpoint     text        NOT NULL,
  message_id   text        NOT NULL,
  message_type text        NOT NULL,
  entity_key   text,
  occurred_at  text        NOT NULL,
  received_at  timestamptz NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  outcome      text        NOT NULL DEFAULT 'completed',
  attempts     integer     NOT NULL,
  envelope     jsonb,
  PRIMARY KEY (endpoint, message_id)
);
CREATE INDEX IF NOT EXISTS ${table}_processed_at_idx ON ${schema}.${table} (processed_at);
${postgresVersionsDdl(schema, table)}`;
}

/**
 * The ordering guard's table `<table>_versions`: the last applied event per (endpoint, key), and the
 * tombstones. `occurred_ms` + `occurred_ns` hold the instant at full precision (compared);
 * `occurred_at` is the text as sent (for people).
 */
export function postgresVersionsDdl(schema: string, table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${schema}.${table}_versions (
  endpoint    text        NOT NULL,
  entity_key  text        NOT NULL,
  occurred_at text        NOT NULL,
  occurred_ms bigint      NOT NULL,
  occurred_ns integer     NOT NULL,
  message_id  text        NOT NULL,
  tombstone   boolean     NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (endpoint, entity_key)
);
CREATE INDEX IF NOT EXISTS ${table}_versions_tombstones_idx ON ${schema}.${table}_versions (endpoint, updated_at) WHERE tombstone;`;
}

/** What start-up DDL needs of a `pg` client: a query with an optional client-side timeout. */
export interface DdlQueryable {
  query(config: { text: string; values?: unknown[]; query_timeout?: number }): Promise<{
    rows: Record<string, unknown>[];
  }>;
}

/** The advisory lock key of start-up DDL: the bytes of "sluice" read as a number. */
const DDL_LOCK_KEY = '126909663503205';
/** How long start-up DDL waits for the DDL lock and for the tables it alters. */
export const DDL_LOCK_TIMEOUT_MS = 60_000;

/**
 * Runs start-up DDL inside the caller's transaction, under the one transaction-scoped advisory
 * lock every Sluice start-up DDL on the database takes (inbox, outbox, history):
 * `CREATE … IF NOT EXISTS` is not safe against itself, and two instances starting at once would
 * otherwise both see no table and one fail on a catalog unique index (23505). The wait has its own
 * timeouts, on the server and in the client (`queryTimeoutMs` the client's), not the pool's short
 * `lockTimeoutMs`.
 */
export async function runStartupDdl(client: DdlQueryable, text: string, queryTimeoutMs: number): Promise<void> {
  await client.query({ text: `SET LOCAL lock_timeout = ${DDL_LOCK_TIMEOUT_MS}` });
  await client.query({ text: `SET LOCAL statement_timeout = ${DDL_LOCK_TIMEOUT_MS}` });
  await client.query({
    query_timeout: queryTimeoutMs,
    text: 'SELECT pg_advisory_xact_lock($1)',
    values: [DDL_LOCK_KEY],
  });
  await client.query({ query_timeout: queryTimeoutMs, text });
}

/**
 * How many of the qualified relations (tables, indexes) are missing: catalog lookups only, no
 * locks, so that a live database's start-up runs no DDL at all.
 */
export async function missingRelations(client: DdlQueryable, qualifiedNames: readonly string[]): Promise<number> {
  const { rows } = await client.query({
    text: 'SELECT count(*) FILTER (WHERE to_regclass(name) IS NULL)::int AS missing FROM unnest($1::text[]) AS name',
    values: [qualifiedNames],
  });
  return Number(rows[0]?.missing ?? 0);
}
