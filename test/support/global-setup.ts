import pg from 'pg';

/**
 * Before the run: a clean `sluice_test` schema, so tables that earlier runs' tests created (unique
 * names per run) never pile up. Assumes `npm test` already started PostgreSQL.
 */
export default async function setup(): Promise<void> {
  const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
  await client.connect();
  try {
    await client.query('DROP SCHEMA IF EXISTS sluice_test CASCADE');
    await client.query('CREATE SCHEMA sluice_test');
  } finally {
    await client.end();
  }
}
