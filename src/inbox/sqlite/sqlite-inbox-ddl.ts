/** The DDL the store runs on start; also printed in docs/inbox.md for DBAs. */
export function sqliteInboxDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  endpoint     TEXT    NOT NULL,
  message_id   TEXT    NOT NULL,
  message_type TEXT    NOT NULL,
  entity_key   TEXT,
  occurred_at  TEXT    NOT NULL,
  received_at  TEXT    NOT NULL,
  processed_at TEXT    NOT NULL,
  outcome      TEXT    NOT NULL,
  attempts     INTEGER NOT NULL,
  envelope     TEXT,
  PRIMARY KEY (endpoint, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${table}_processed_at ON ${table} (processed_at);
${sqliteVersionsDdl(table)}`;
}

/**
 * The ordering guard's table `<table>_versions`: the last applied event per (endpoint, key), and the
 * tombstones. `occurred_ms` + `occurred_ns` hold the instant at full precision (compared);
 * `occurred_at` is the text as sent (for people).
 */
export function sqliteVersionsDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table}_versions (
  endpoint    TEXT    NOT NULL,
  entity_key  TEXT    NOT NULL,
  occurred_at TEXT    NOT NULL,
  occurred_ms INTEGER NOT NULL,
  occurred_ns INTEGER NOT NULL,
  message_id  TEXT    NOT NULL,
  tombstone   INTEGER NOT NULL,
  updated_at  TEXT    NOT NULL,
  PRIMARY KEY (endpoint, entity_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${table}_versions_tombstones ON ${table}_versions (endpoint, updated_at) WHERE tombstone = 1;`;
}
