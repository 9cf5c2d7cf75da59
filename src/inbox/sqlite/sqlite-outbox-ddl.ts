/**
 * The outbox table the SQLite store creates on start; also in docs/outbox.md. `AUTOINCREMENT`: a
 * `seq` is never reused, even after the newest rows were deleted. Times are ISO 8601 UTC text
 * (they compare as text).
 */
export function sqliteOutboxDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id       TEXT    NOT NULL,
  destination_kind TEXT    NOT NULL CHECK (destination_kind IN ('publish', 'send')),
  destination      TEXT    NOT NULL,
  message_type     TEXT    NOT NULL,
  entity_key       TEXT,
  headers          TEXT    NOT NULL,
  body             BLOB    NOT NULL,
  created_at       TEXT    NOT NULL,
  source_endpoint  TEXT,
  causation_id     TEXT,
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  TEXT    NOT NULL,
  leased_by        TEXT,
  dispatched_at    TEXT,
  failed_at        TEXT,
  failed_reason    TEXT
);
CREATE INDEX IF NOT EXISTS ${table}_pending ON ${table} (seq) WHERE dispatched_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS ${table}_pending_key ON ${table} (entity_key, seq)
  WHERE dispatched_at IS NULL AND failed_at IS NULL AND entity_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${table}_dispatched ON ${table} (dispatched_at) WHERE dispatched_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${table}_failed ON ${table} (seq) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${table}_causation ON ${table} (causation_id) WHERE causation_id IS NOT NULL;`;
}
