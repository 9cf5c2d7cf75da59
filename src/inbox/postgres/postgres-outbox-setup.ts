import { ConfigError } from '../../errors/sluice-error.js';
import type { PostgresOutboxDeps } from './postgres-outbox.js';
import {
  postgresOutboxRelations,
  POSTGRES_OUTBOX_WRITE_VERSION,
  postgresOutboxUpgrade,
  postgresOutboxWriteName,
  postgresOutboxWriteSignature,
} from './postgres-outbox-ddl.js';

/**
 * Checks the database and brings the outbox up to date: the isolation its order needs, the table
 * and indexes (created when missing), and what later versions added (`leased_by`, the write
 * function: added alone, with no index DDL on a live table; replaced when an earlier release made it). With `createTables: false` nothing is
 * created: anything missing, or a write function this user may not run, fails the start naming it
 * (else every transaction that publishes would fail). Catalog lookups first, DDL only when needed.
 */
export async function setUpPostgresOutbox(deps: PostgresOutboxDeps): Promise<void> {
  const { schema, table, pool, createTables } = deps;
  // The write's per-key order needs each statement's own snapshot (see postgres-outbox-ddl.ts).
  const { rows } = await pool.query("SELECT current_setting('transaction_isolation') AS isolation");
  const isolation = String(rows[0]?.isolation);
  if (isolation !== 'read committed') {
    throw new ConfigError([
      "inbox: the outbox on PostgreSQL needs transactions in read committed; this database's connections " +
        `start them in ${isolation} (default_transaction_isolation): set it back for Sluice's user or database, ` +
        'or turn the outbox off (outbox.enabled: false)',
    ]);
  }
  const missing = await missingParts(deps);
  const signature = postgresOutboxWriteSignature(schema, table);
  const version = `version ${missing.writeVersion}; this release writes version ${POSTGRES_OUTBOX_WRITE_VERSION}`;
  if (missing.write === 'newer') {
    deps.logger.warn(
      { function: signature, version: missing.writeVersion, expected: POSTGRES_OUTBOX_WRITE_VERSION },
      'outbox: the write function is of a later release (a rolling upgrade?); kept as it is',
    );
  }
  const write = missing.write === 'missing' || missing.write === 'older';
  if (missing.relations.length > 0 || missing.leasedBy || write) {
    if (!createTables) {
      const what = [
        ...missing.relations,
        ...(missing.leasedBy ? [`the column ${schema}.${table}.leased_by`] : []),
        ...(missing.write === 'missing' ? [`the function ${signature}`] : []),
        ...(missing.write === 'older' ? [`the function ${signature} of an earlier release (${version})`] : []),
      ];
      throw new ConfigError([
        `outbox.table: ${what.join(', ')} missing or out of date and inbox.createTables is false: ` +
          'create them with the SQL in docs/outbox.md (postgresOutboxDdl), or turn the outbox off',
      ]);
    }
    if (missing.write === 'older' && missing.writeNotOwned) {
      // CREATE OR REPLACE takes the owner: else the start would fail on a bare "must be owner".
      throw new ConfigError([
        `outbox.table: the function ${signature} is of an earlier release (${version}) ` +
          'and this database user may not replace it (not its owner): have its owner run the SQL in docs/outbox.md ' +
          '(postgresOutboxDdl), or turn the outbox off',
      ]);
    }
    await deps.ddl(
      postgresOutboxUpgrade(schema, table, { table: missing.relations.length > 0, leasedBy: missing.leasedBy, write }),
    );
  }
  const { rows: granted } = await pool.query(
    "SELECT has_function_privilege(to_regprocedure($1), 'EXECUTE') AS granted",
    [signature],
  );
  if (granted[0]?.granted !== true) {
    throw new ConfigError([
      `outbox.table: this database user may not run ${postgresOutboxWriteName(schema, table)}: ` +
        `GRANT EXECUTE ON FUNCTION ${signature} TO it`,
    ]);
  }
}

/**
 * What of the outbox is missing: relations, the `leased_by` column, the write function; and the
 * write function's version (its comment, see {@link POSTGRES_OUTBOX_WRITE_VERSION}) against this
 * release's, and whether this user owns it (may replace it).
 */
async function missingParts(deps: PostgresOutboxDeps): Promise<{
  relations: string[];
  leasedBy: boolean;
  write: 'missing' | 'older' | 'current' | 'newer';
  writeVersion: number;
  writeNotOwned: boolean;
}> {
  const { schema, table, pool } = deps;
  const names = postgresOutboxRelations(table).map((name) => `${schema}.${name}`);
  const { rows } = await pool.query(
    `SELECT array(SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL) AS relations,
            to_regprocedure($2) IS NULL AS no_write,
            coalesce(substring(obj_description(to_regprocedure($2), 'pg_proc') FROM '^sluice outbox write, version ([0-9]{1,9})$')::int, 1)
              AS write_version,
            NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($3) AND attname = 'leased_by'
                          AND NOT attisdropped) AS no_lease,
            coalesce((SELECT NOT pg_has_role(proowner, 'USAGE') FROM pg_proc WHERE oid = to_regprocedure($2)), false)
              AS not_owned`,
    [names, postgresOutboxWriteSignature(schema, table), `${schema}.${table}`],
  );
  const row = rows[0] as {
    relations: string[];
    no_write: boolean;
    write_version: number;
    no_lease: boolean;
    not_owned: boolean;
  };
  const leasedBy = row.no_lease && row.relations.length === 0;
  const v = row.write_version;
  const write = row.no_write
    ? 'missing'
    : v < POSTGRES_OUTBOX_WRITE_VERSION
      ? 'older'
      : v > POSTGRES_OUTBOX_WRITE_VERSION
        ? 'newer'
        : 'current';
  return { relations: row.relations, leasedBy, write, writeVersion: v, writeNotOwned: row.not_owned };
}
