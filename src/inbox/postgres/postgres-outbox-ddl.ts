/**
 * The outbox table the store creates on start (idempotent); also in docs/outbox.md for DBAs.
 * `seq` is insert order; a transaction-scoped lock per key makes it commit order for one key.
 * The partial indexes keep the relay's claim and the health counts off the dispatched rows kept
 * for the retention.
 */
export function postgresOutboxDdl(schema: string, table: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${schema}.${table} (
  seq              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id       text        NOT NULL,
  destination_kind text        NOT NULL CHECK (destination_kind IN ('publish', 'send')),
  destination      text        NOT NULL,
  message_type     text        NOT NULL,
  entity_key       text,
  headers          jsonb       NOT NULL,
  body             bytea       NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  source_endpoint  text,
  causation_id     text,
  attempts         integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  leased_by        text,
  dispatched_at    timestamptz,
  failed_at        timestamptz,
  failed_reason    text
);
CREATE INDEX IF NOT EXISTS ${table}_pending_idx ON ${schema}.${table} (seq)
  WHERE dispatched_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS ${table}_pending_key_idx ON ${schema}.${table} (entity_key, seq)
  WHERE dispatched_at IS NULL AND failed_at IS NULL AND entity_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${table}_dispatched_idx ON ${schema}.${table} (dispatched_at)
  WHERE dispatched_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${table}_failed_idx ON ${schema}.${table} (seq)
  WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${table}_causation_idx ON ${schema}.${table} (causation_id)
  WHERE causation_id IS NOT NULL;`;
}

/** The index names {@link postgresOutboxDdl} makes, besides the table: start-up checks them without locks. */
export function postgresOutboxRelations(table: string): string[] {
  return [
    table,
    `${table}_pending_idx`,
    `${table}_pending_key_idx`,
    `${table}_dispatched_idx`,
    `${table}_failed_idx`,
    `${table}_causation_idx`,
  ];
}
