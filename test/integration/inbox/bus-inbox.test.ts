import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, createMemoryBroker, defineMessage, memoryTransport } from '../../../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import { sqliteInbox, type SqliteTransaction } from '../../../src/inbox/sqlite/index.js';
import { waitFor } from '../../support/wait-for.js';
import { PG_URL, sqliteStore, testPool, uniqueTable } from './stores.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

const Deposit = defineMessage('bank.deposit.v1', z.object({ account: z.string(), amount: z.number() }));
const silent = pino({ level: 'silent' });

describe('bus with the PostgreSQL inbox', () => {
  const pool = testPool();
  const effects = uniqueTable('balances');
  let bus: Bus<PostgresTransaction>;
  let failNext = false;

  beforeAll(async () => {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
    await pool.query(`CREATE TABLE ${TEST_SCHEMA}.${effects} (account text PRIMARY KEY, balance numeric NOT NULL)`);
    bus = createBus(
      {
        shutdown: { signals: [] },
        inbox: {
          kind: 'postgres',
          connectionString: PG_URL,
          schema: TEST_SCHEMA,
          table: uniqueTable('inbox'),
          storeEnvelope: true,
        },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    bus
      .endpoint('ledger', { concurrency: 4, retry: { kind: 'immediate', retries: 1 } })
      .handle(Deposit, async (d, ctx) => {
        expectTypeOf(ctx.tx).toEqualTypeOf<PostgresTransaction>();
        await ctx.tx.query(
          `INSERT INTO ${TEST_SCHEMA}.${effects} (account, balance) VALUES ($1, $2)
         ON CONFLICT (account) DO UPDATE SET balance = ${effects}.balance + EXCLUDED.balance`,
          [d.account, d.amount],
        );
        if (failNext) {
          failNext = false;
          throw new Error('fails after writing its effect');
        }
      });
    await bus.start();
  });
  afterAll(async () => {
    await bus.stop();
    await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${effects}`);
    await pool.end();
  });
  const balance = async (account: string) =>
    Number(
      (await pool.query(`SELECT balance FROM ${TEST_SCHEMA}.${effects} WHERE account = $1`, [account])).rows[0]
        ?.balance ?? 0,
    );
  const counters = () => bus.health().endpoints.ledger?.counters;

  it('applies a message delivered twice once', async () => {
    await bus.send('ledger', Deposit, { account: 'a1', amount: 10 }, { id: 'dep-1' });
    await bus.send('ledger', Deposit, { account: 'a1', amount: 10 }, { id: 'dep-1' });
    await waitFor(() => (counters()?.completed ?? 0) + (counters()?.skipped ?? 0) === 2);
    expect(await balance('a1')).toBe(10);
    expect(counters()?.skipped).toBe(1);
    const row = await bus.inbox?.find('ledger', 'dep-1');
    expect(row).toMatchObject({ messageType: 'bank.deposit.v1', outcome: 'completed', attempts: 1 });
    expect(row?.envelope).toMatchObject({ id: 'dep-1', data: { account: 'a1', amount: 10 } });
  });

  it('rolls the effect back with the failed attempt and applies it once on the retry', async () => {
    failNext = true;
    await bus.send('ledger', Deposit, { account: 'a2', amount: 7 }, { id: 'dep-2' });
    await waitFor(async () => (await bus.inbox?.find('ledger', 'dep-2')) !== undefined);
    expect(await balance('a2')).toBe(7);
    expect((await bus.inbox?.find('ledger', 'dep-2'))?.attempts).toBe(2);
  });
});

describe('bus with the SQLite inbox', () => {
  let bus: Bus<SqliteTransaction> | undefined;
  afterEach(async () => {
    await bus?.stop();
  });

  it('hands the handler the SQLite database inside the transaction and deduplicates', async () => {
    const { path } = sqliteStore();
    bus = createBus(
      { shutdown: { signals: [] }, inbox: { kind: 'sqlite', path } },
      { inbox: sqliteInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    bus.endpoint('ledger', { concurrency: 8 }).handle(Deposit, (d, ctx) => {
      ctx.tx.exec('CREATE TABLE IF NOT EXISTS deposits (id TEXT, amount REAL)');
      ctx.tx.prepare('INSERT INTO deposits VALUES (?, ?)').run(ctx.messageId, d.amount);
    });
    await bus.start();
    for (let i = 0; i < 50; i++) await bus.send('ledger', Deposit, { account: 'x', amount: 1 }, { id: `d-${i % 25}` });
    await waitFor(() => {
      const c = bus?.health().endpoints.ledger?.counters;
      return (c?.completed ?? 0) + (c?.skipped ?? 0) === 50;
    });
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path, { readonly: true });
    expect((db.prepare('SELECT count(*) AS n FROM deposits').get() as { n: number }).n).toBe(25);
    db.close();
  });

  it('fails at creation when the inbox config names a store that was not given', () => {
    expect(() => createBus({ inbox: { kind: 'postgres' } }, { logger: silent })).toThrow(
      /inbox\.kind: "postgres" is configured but no inbox store was given/,
    );
    expect(() => createBus({ inbox: { kind: 'sqlite', pth: 'x' } }, { inbox: sqliteInbox(), logger: silent })).toThrow(
      /inbox\.pth: unknown field; allowed: kind, path, table/,
    );
  });
});
