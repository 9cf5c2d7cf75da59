// Start-up of the outbox on PostgreSQL where its write function carries its version as its comment:
// a function of an earlier release, of the release before the comment, of a later release; a
// database user that may run the function but does not own it; four instances starting at once.
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors/sluice-error.js';
import { postgresInbox } from '../../../src/inbox/postgres/index.js';
import {
  POSTGRES_OUTBOX_WRITE_VERSION,
  postgresOutboxDdl,
  postgresOutboxWriteComment,
  postgresOutboxWriteSignature,
} from '../../../src/inbox/postgres/postgres-outbox-ddl.js';
import { type InboxStore, systemClock } from '../../../src/index.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { PG_URL, uniqueTable } from '../inbox/stores.js';

const ROLE = `sluice_app_${process.pid}`;
const roleUrl = PG_URL.replace('postgres@', `${ROLE}:app@`);
const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });

/** The outbox of a PostgreSQL inbox store connecting as `url`, with `createTables`. */
async function startOutbox(url: string, table: string, createTables = true): Promise<() => Promise<void>> {
  const def = postgresInbox();
  const config = def.configSchema.parse({
    kind: 'postgres',
    connectionString: url,
    schema: TEST_SCHEMA,
    table: uniqueTable('inbox'),
    createTables,
  });
  const store = def.create(config as never, {
    logger: pino({ level: 'silent' }),
    clock: systemClock,
  }) as InboxStore<unknown>;
  try {
    await store.init();
    const outbox = (store.outbox as NonNullable<InboxStore<unknown>['outbox']>).call(store, {
      table,
      instanceId: 'i',
    });
    await outbox.init();
  } catch (error) {
    await store.close();
    throw error;
  }
  return () => store.close();
}

/** The write function's part of the outbox DDL (from its `CREATE OR REPLACE FUNCTION` on). */
const functionOf = (ddl: string) => ddl.slice(ddl.indexOf('CREATE OR REPLACE FUNCTION'));

/** The function as the release before the version comment made it: the same body, no comment. */
function withoutComment(ddl: string): string {
  const fn = functionOf(ddl);
  return fn.slice(0, fn.indexOf('COMMENT ON FUNCTION'));
}

/** The function under the comment of another release's `version`. */
function ofVersion(ddl: string, version: number): string {
  const fn = functionOf(ddl);
  return fn.replace(postgresOutboxWriteComment(POSTGRES_OUTBOX_WRITE_VERSION), postgresOutboxWriteComment(version));
}

const CURRENT = postgresOutboxWriteComment(POSTGRES_OUTBOX_WRITE_VERSION);

/**
 * Runs `body` with a new outbox table made by the admin without its write function (`ddl` is the
 * whole outbox DDL for it), then drops the table and whatever function the test left.
 */
async function withOutboxTable(body: (table: string, ddl: string) => Promise<void>): Promise<void> {
  const table = uniqueTable('outbox');
  const ddl = postgresOutboxDdl(TEST_SCHEMA, table);
  await admin.query(ddl.slice(0, ddl.indexOf('CREATE OR REPLACE FUNCTION')));
  try {
    await body(table, ddl);
  } finally {
    await admin.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}`);
    await admin.query(`DROP FUNCTION IF EXISTS ${TEST_SCHEMA}.${table}_write`);
  }
}

const version = async (table: string) =>
  (
    await admin.query(`SELECT obj_description(to_regprocedure($1), 'pg_proc') AS v`, [
      postgresOutboxWriteSignature(TEST_SCHEMA, table),
    ])
  ).rows[0]?.v;

describe('the outbox write function version at start-up on PostgreSQL', () => {
  beforeAll(async () => {
    await admin.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
    await admin.query(`DROP ROLE IF EXISTS ${ROLE}`);
    await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD 'app'`);
    await admin.query(`GRANT USAGE, CREATE ON SCHEMA ${TEST_SCHEMA} TO ${ROLE}`);
    // (The inbox's start-up DDL says CREATE SCHEMA IF NOT EXISTS: checked against the database.)
    await admin.query(`GRANT CREATE ON DATABASE test TO ${ROLE}`);
  });
  afterAll(async () => {
    await admin.query(`DROP OWNED BY ${ROLE}`);
    await admin.query(`DROP ROLE IF EXISTS ${ROLE}`);
    await admin.end();
  });

  it('names the fix when a user that may run but not replace an earlier release’s function starts (createTables true)', async () => {
    await withOutboxTable(async (table, ddl) => {
      // A DBA made the outbox with an earlier release; the app may use it.
      await admin.query(ofVersion(ddl, 0));
      await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${TEST_SCHEMA}.${table} TO ${ROLE}`);
      await admin.query(`GRANT EXECUTE ON FUNCTION ${postgresOutboxWriteSignature(TEST_SCHEMA, table)} TO ${ROLE}`);
      const started = startOutbox(roleUrl, table);
      await expect(started).rejects.toBeInstanceOf(ConfigError);
      await expect(started).rejects.toThrow(
        `of an earlier release (version 0; this release writes version ${POSTGRES_OUTBOX_WRITE_VERSION}) and this database user may not replace it (not its owner)`,
      );
      expect(await version(table)).toBe(postgresOutboxWriteComment(0));
      // Its owner brings it up to date (CREATE OR REPLACE keeps the grant): the user starts.
      await admin.query(functionOf(ddl));
      const close = await startOutbox(roleUrl, table);
      await close();
      expect(await version(table)).toBe(CURRENT);
    });
  });

  it('replaces an earlier release’s function once when two instances start at once (the DDL lock)', async () => {
    await withOutboxTable(async (table, ddl) => {
      for (let round = 0; round < 5; round++) {
        await admin.query(ofVersion(ddl, 0));
        const closes = await Promise.all([1, 2, 3, 4].map(() => startOutbox(PG_URL, table)));
        await Promise.all(closes.map((close) => close()));
        expect(await version(table)).toBe(CURRENT);
      }
    });
  });

  it('keeps the function of the release before the version comment (the same body) and of a later release, even for a user that does not own it', async () => {
    await withOutboxTable(async (table, ddl) => {
      await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${TEST_SCHEMA}.${table} TO ${ROLE}`);
      // No comment: version 1, the body this release writes (version 1). Nothing to replace: no owner needed.
      await admin.query(withoutComment(ddl));
      await admin.query(`GRANT EXECUTE ON FUNCTION ${postgresOutboxWriteSignature(TEST_SCHEMA, table)} TO ${ROLE}`);
      const close = await startOutbox(roleUrl, table);
      await close();
      expect(await version(table)).toBeNull();
      // A later release's function (a rolling upgrade): an instance of this release never downgrades it.
      await admin.query(ofVersion(ddl, POSTGRES_OUTBOX_WRITE_VERSION + 1));
      const closeAgain = await startOutbox(PG_URL, table);
      await closeAgain();
      expect(await version(table)).toBe(postgresOutboxWriteComment(POSTGRES_OUTBOX_WRITE_VERSION + 1));
    });
  });
});
