/**
 * The outbox table the store creates on start (idempotent); also in docs/outbox.md for DBAs.
 * `seq` is insert order; a transaction-scoped lock per key makes it commit order for one key.
 * The partial indexes keep the relay's claim and the health counts off the dispatched rows kept
 * for the retention.
 */
export function postgresOutboxDdl(schema: string, table: string): string {
  return `${postgresOutboxTableDdl(schema, table)}
${postgresOutboxWriteFunction(schema, table)}`;
}

/** The schema, table and indexes of {@link postgresOutboxDdl}, without the write function. */
function postgresOutboxTableDdl(schema: string, table: string): string {
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
-- Added after the first version of the table (which start-up brings up to date).
ALTER TABLE ${schema}.${table} ADD COLUMN IF NOT EXISTS leased_by text;
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

/**
 * The DDL start-up runs for what is missing: the whole table (new), else only what a table of an
 * earlier version lacks, without index DDL (which would lock a live table): `leased_by`, the write
 * function (missing, or of an earlier release). Idempotent.
 */
export function postgresOutboxUpgrade(
  schema: string,
  table: string,
  add: { readonly table: boolean; readonly leasedBy: boolean; readonly write: boolean },
): string {
  const column = add.leasedBy ? `ALTER TABLE ${schema}.${table} ADD COLUMN IF NOT EXISTS leased_by text;` : '';
  const parts = [add.table ? postgresOutboxTableDdl(schema, table) : column];
  return [...parts, add.write ? postgresOutboxWriteFunction(schema, table) : ''].filter((p) => p !== '').join('\n');
}

/**
 * The version of the write function's body, kept as its comment (`sluice outbox write, version N`).
 * Start-up replaces a function of a lower version (an earlier release's body under the same
 * signature) and keeps one of a higher version (a later release's, during a rolling upgrade: a
 * release that changes the body keeps what the signature promises, or changes the signature). A
 * function without the comment is version 1 (the body before the comment existed). Raise it with
 * every change of the body.
 */
export const POSTGRES_OUTBOX_WRITE_VERSION = 1;

/** The write function's comment for `version`. */
export function postgresOutboxWriteComment(version: number): string {
  return `sluice outbox write, version ${version}`;
}

/** The write function with its argument types, as `to_regprocedure` and `GRANT EXECUTE` take it. */
export function postgresOutboxWriteSignature(schema: string, table: string): string {
  return `${postgresOutboxWriteName(schema, table)}(text[], text[], text[], text[], text[], jsonb[], bytea[], text[], text[], integer, text, text, double precision)`;
}

/** The name of the outbox's write function (see {@link postgresOutboxWriteFunction}). */
export function postgresOutboxWriteName(schema: string, table: string): string {
  return `${schema}.${table}_write`;
}

/**
 * The write, as a function so that a transaction sends it with its COMMIT in one round trip. It
 * takes the keys' transaction-scoped locks (sorted: two writers never deadlock on them), then
 * inserts the messages one by one: in a volatile PL/pgSQL function each statement takes a new
 * snapshot, so each sees every row of its key committed before the locks were granted, and the rows
 * this write inserted before it. A row is leased to the writer (`owner`, for `lease_ms` from the
 * write: `clock_timestamp()`) when it has no key, or every undispatched row of its key before it is
 * leased to the same writer and that lease runs. Returns, in order, each row's `seq`, its attempts
 * (1: leased) and `after`: the last undispatched row of its key before it (which the in-process
 * dispatch must have had before this one). Notifies the relays (at commit) when a row is theirs.
 * (A statement per message: measured three times cheaper than one insert over `unnest` with a CTE.)
 */
export function postgresOutboxWriteFunction(schema: string, table: string): string {
  const q = `${schema}.${table}`;
  return `CREATE OR REPLACE FUNCTION ${postgresOutboxWriteName(schema, table)}(
  message_ids text[], kinds text[], destinations text[], types text[], keys text[], headers jsonb[], bodies bytea[],
  sources text[], causes text[], lock_class integer, channel text, owner text, lease_ms double precision)
RETURNS TABLE (w_seq bigint, w_attempts integer, w_after bigint)
LANGUAGE plpgsql VOLATILE AS $sluice$
DECLARE
  i integer;
  k text;
  leased boolean;
  notify boolean := false;
BEGIN
  PERFORM pg_advisory_xact_lock(lock_class, s.h)
    FROM (SELECT DISTINCT hashtext(x) AS h FROM unnest(keys) AS x WHERE x IS NOT NULL ORDER BY h) AS s;
  FOR i IN 1 .. cardinality(message_ids) LOOP
    k := keys[i];
    w_after := NULL;
    leased := lease_ms > 0;
    IF k IS NOT NULL THEN
      SELECT max(p.seq), bool_and(p.leased_by IS NOT DISTINCT FROM owner AND p.next_attempt_at > clock_timestamp())
        INTO w_after, leased
        FROM ${q} p
        WHERE p.entity_key = k AND p.dispatched_at IS NULL AND p.failed_at IS NULL;
      leased := lease_ms > 0 AND coalesce(leased, true);
    END IF;
    INSERT INTO ${q} (message_id, destination_kind, destination, message_type, entity_key, headers, body,
                      source_endpoint, causation_id, attempts, next_attempt_at, leased_by)
    VALUES (message_ids[i], kinds[i], destinations[i], types[i], k, headers[i], bodies[i], sources[i], causes[i],
            CASE WHEN leased THEN 1 ELSE 0 END,
            CASE WHEN leased THEN clock_timestamp() + make_interval(secs => lease_ms / 1000) ELSE now() END,
            CASE WHEN leased THEN owner END)
    RETURNING seq, attempts INTO w_seq, w_attempts;
    notify := notify OR NOT leased;
    RETURN NEXT;
  END LOOP;
  -- Relays need a wake-up only for rows they may take now: leased rows are the writer's.
  IF notify THEN PERFORM pg_notify(channel, owner); END IF;
END
$sluice$;
COMMENT ON FUNCTION ${postgresOutboxWriteSignature(schema, table)} IS '${postgresOutboxWriteComment(POSTGRES_OUTBOX_WRITE_VERSION)}';`;
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
