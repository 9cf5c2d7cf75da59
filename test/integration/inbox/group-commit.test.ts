import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  defineMessage,
  memoryTransport,
  PermanentError,
} from '../../../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import { waitFor } from '../../support/wait-for.js';
import { GroupCommitter } from '../../../src/inbox/group-committer.js';
import { PG_URL, postgresStore, testPool, uniqueTable } from './stores.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

const Credit = defineMessage('bank.credit.v1', z.object({ account: z.string(), amount: z.number() }));
const silent = pino({ level: 'silent' });

describe.each(['rerun', 'savepoint'] as const)('group commit on PostgreSQL (%s isolation)', (isolation) => {
  const pool = testPool();
  const effects = uniqueTable('credits');
  let bus: Bus<PostgresTransaction>;
  const inboxTable = uniqueTable('inbox');

  beforeAll(async () => {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
    await pool.query(`CREATE TABLE ${TEST_SCHEMA}.${effects} (message_id text NOT NULL, amount numeric NOT NULL)`);
    bus = createBus(
      {
        shutdown: { signals: [] },
        inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: inboxTable },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    bus
      .endpoint('ledger', {
        concurrency: 32,
        prefetch: 64,
        retry: { kind: 'none' },
        groupCommit: { maxMessages: 50, isolation },
      })
      .handle(Credit, async (c, ctx) => {
        await ctx.tx.query(`INSERT INTO ${TEST_SCHEMA}.${effects} VALUES ($1, $2)`, [ctx.messageId, c.amount]);
        if (c.account === 'poison') throw new PermanentError('rejected after writing');
      });
    await bus.start();
  });
  afterAll(async () => {
    await bus.stop();
    await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${effects}, ${TEST_SCHEMA}.${inboxTable}`);
    await pool.end();
  });

  it('applies every message exactly once, duplicates included, and fails only the failing one', async () => {
    const total = 300;
    for (let i = 0; i < total; i++) {
      const account = i === 137 ? 'poison' : `a${i % 10}`;
      await bus.send('ledger', Credit, { account, amount: 1 }, { id: `c-${i}` });
      if (i % 30 === 0) await bus.send('ledger', Credit, { account, amount: 1 }, { id: `c-${i}` }); // duplicate
    }
    const settled = () => {
      const c = bus.health().endpoints.ledger?.counters;
      return (c?.completed ?? 0) + (c?.skipped ?? 0) + (c?.deadLettered ?? 0);
    };
    await waitFor(() => settled() === total + 10, { timeoutMs: 20_000 });
    const rows = await pool.query(
      `SELECT message_id, count(*)::int AS n FROM ${TEST_SCHEMA}.${effects} GROUP BY message_id`,
    );
    expect(rows.rows).toHaveLength(total - 1);
    expect(rows.rows.every((r: { n: number }) => r.n === 1)).toBe(true);
    expect(rows.rows.some((r: { message_id: string }) => r.message_id === 'c-137')).toBe(false);
    const dead = await bus.deadLetters('ledger').peek();
    expect(dead.map((d) => d.fault?.messageId)).toEqual(['c-137']);
    expect(await bus.inbox?.find('ledger', 'c-137')).toBeUndefined();
    expect(bus.health().endpoints.ledger?.counters.skipped).toBe(10);
  });
});

describe('batch handlers on PostgreSQL', () => {
  const pool = testPool();
  const effects = uniqueTable('batch_credits');
  const inboxTable = uniqueTable('inbox');
  let bus: Bus<PostgresTransaction>;
  const sizes: number[] = [];
  let failOnce = true;

  beforeAll(async () => {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
    await pool.query(`CREATE TABLE ${TEST_SCHEMA}.${effects} (message_id text NOT NULL, amount numeric NOT NULL)`);
    bus = createBus(
      {
        shutdown: { signals: [] },
        inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: inboxTable },
      },
      { inbox: postgresInbox(), transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    bus.endpoint('ledger', { concurrency: 100, prefetch: 200, retry: { kind: 'immediate', retries: 2 } }).handleBatch(
      Credit,
      async (credits, ctx) => {
        sizes.push(credits.length);
        // One multi-row statement for the whole batch.
        await ctx.tx.query(`INSERT INTO ${TEST_SCHEMA}.${effects} SELECT * FROM unnest($1::text[], $2::numeric[])`, [
          ctx.envelopes.map((e) => e.id),
          credits.map((c) => c.amount),
        ]);
        if (failOnce && credits.length > 10) {
          failOnce = false;
          throw new Error('transient');
        }
      },
      { maxMessages: 50, maxWaitMs: 5 },
    );
    await bus.start();
  });
  afterAll(async () => {
    await bus.stop();
    await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${effects}, ${TEST_SCHEMA}.${inboxTable}`);
    await pool.end();
  });

  it('hands the handler many messages at once in one transaction, each applied once', async () => {
    const total = 400;
    for (let i = 0; i < total; i++) await bus.send('ledger', Credit, { account: 'a', amount: 1 }, { id: `b-${i}` });
    for (let i = 0; i < 20; i++) await bus.send('ledger', Credit, { account: 'a', amount: 1 }, { id: `b-${i}` });
    await waitFor(
      () => {
        const c = bus.health().endpoints.ledger?.counters;
        return (c?.completed ?? 0) + (c?.skipped ?? 0) === total + 20;
      },
      { timeoutMs: 20_000 },
    );
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM ${TEST_SCHEMA}.${effects}`,
    );
    expect(rows[0]).toEqual({ n: total, d: total });
    expect(Math.max(...sizes)).toBeGreaterThan(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(50);
  });
});

describe('group commit when a claim waits behind another consumer', () => {
  it.each(['rerun', 'savepoint'] as const)(
    '%s: only the held message comes back busy; the others commit',
    async (isolation) => {
      const store = postgresStore(undefined, { lockTimeoutMs: 200 });
      await store.init();
      const entry = (messageId: string) => ({
        endpoint: 'ledger',
        messageId,
        messageType: 't',
        key: undefined,
        occurredAt: '2026-01-01T00:00:00Z',
        receivedAt: new Date(),
        attempts: 1,
        envelopeJson: undefined,
      });
      let releaseHolder!: () => void;
      const held = new Promise<void>((resolve) => {
        releaseHolder = resolve;
      });
      let holding!: () => void;
      const started = new Promise<void>((resolve) => {
        holding = resolve;
      });
      const holder = store.runOnce(entry('x'), async () => {
        holding();
        await held;
        return { result: 'holder' };
      });
      await started;
      const committer = new GroupCommitter(store, { maxMessages: 10, maxWaitMs: 0, isolation });
      const [x, y] = await Promise.all([
        committer.submit(entry('x'), async () => ({ result: 'x' })),
        committer.submit(entry('y'), async () => ({ result: 'y' })),
      ]);
      expect(x).toEqual({ status: 'busy' });
      expect(y).toEqual({ status: 'processed', value: 'y' });
      releaseHolder();
      await holder;
      await store.close();
    },
  );
});
