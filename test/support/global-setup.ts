import pg from 'pg';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const PREFIX = 'sluice_test_';

/**
 * Before the run: a fresh schema of its own (`sluice_test_<pid>`), named to the workers and to the
 * processes tests spawn through `SLUICE_TEST_SCHEMA` (see `test-schema.ts`). Two runs on one machine
 * at once (CI's and a developer's, or two worktrees) never drop each other's tables. Schemas of
 * earlier runs whose process is gone are dropped here, so they never pile up; the run's own schema
 * is dropped at teardown. Assumes `npm test` already started PostgreSQL.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const schema = `${PREFIX}${process.pid}`;
  process.env.SLUICE_TEST_SCHEMA = schema;
  await withClient(async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `SELECT nspname AS name FROM pg_namespace WHERE nspname = 'sluice_test' OR nspname LIKE '${PREFIX}%'`,
    );
    for (const { name } of rows) {
      const pid = Number(name.slice(PREFIX.length));
      if (name === schema || !Number.isInteger(pid) || !alive(pid)) {
        await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      }
    }
    await client.query(`CREATE SCHEMA ${schema}`);
  });
  return async () => {
    await withClient((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  };
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
