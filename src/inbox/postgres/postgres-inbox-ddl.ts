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
