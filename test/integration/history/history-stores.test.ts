import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type InboxStore, ManualClock, MemoryInbox } from '../../../src/index.js';
import type { PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import type { SqliteTransaction } from '../../../src/inbox/sqlite/index.js';
import { createHistory } from '../../../src/history/create-history.js';
import { HistoryConfigSchema } from '../../../src/history/history-config.js';
import type { HistoryRecord } from '../../../src/history/history-record.js';
import type { HistoryRuntime } from '../../../src/history/history-runtime.js';
import { postgresStore, sqliteStore, testPool, uniqueTable } from '../inbox/stores.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

type Kind = 'memory' | 'sqlite' | 'postgres';
const DAY = 24 * 3_600_000;

interface Fixture {
  readonly store: InboxStore<unknown>;
  readonly history: HistoryRuntime;
  readonly clock: ManualClock;
  readonly historyTable: string;
  readonly outboxTable: string;
  /** Runs SQL (no parameters) on the store's database, in a transaction of its own. */
  exec(sql: string): Promise<void>;
}

async function fixture(kind: Kind, extra: Record<string, unknown> = {}): Promise<Fixture> {
  const clock = new ManualClock(Date.parse('2026-11-01T00:00:00Z'));
  const historyTable = uniqueTable('history');
  const outboxTable = uniqueTable('outbox');
  const config = HistoryConfigSchema.parse({
    table: historyTable,
    retentionMs: 7 * DAY,
    cleanupBatchSize: 2,
    ...extra,
  });
  const inboxTable = uniqueTable('inbox');
  let store: InboxStore<unknown>;
  let inboxConfig: Record<string, unknown>;
  if (kind === 'memory') {
    store = new MemoryInbox(clock) as InboxStore<unknown>;
    inboxConfig = {};
  } else if (kind === 'sqlite') {
    store = sqliteStore(inboxTable).store as InboxStore<unknown>;
    inboxConfig = { table: inboxTable };
  } else {
    store = postgresStore(inboxTable) as InboxStore<unknown>;
    inboxConfig = { schema: TEST_SCHEMA, table: inboxTable };
  }
  await store.init();
  const common = {
    storeEnvelope: false,
    retentionMs: 60_000,
    cleanupIntervalMs: 1_000,
    cleanupBatchSize: 10,
    startupWaitMs: 0,
  };
  const history = createHistory({ store, config: { ...common, ...inboxConfig } }, config, {
    clock,
    logger: pino({ level: 'silent' }),
    outboxTable,
  });
  if (!history) throw new Error('no history');
  await history.init();
  const exec = async (sql: string) => {
    if (kind === 'sqlite') await store.transaction?.(async (tx) => void (tx as SqliteTransaction).exec(sql));
    if (kind === 'postgres')
      await store.transaction?.(async (tx) => void (await (tx as PostgresTransaction).query(sql)));
  };
  return { store, history, clock, historyTable, outboxTable, exec };
}

function record(over: Partial<HistoryRecord> & Pick<HistoryRecord, 'messageId' | 'recordedAt'>): HistoryRecord {
  return {
    endpoint: 'orders',
    key: 'k-1',
    messageType: 'test.order.v1',
    occurredAt: '2026-11-01T00:00:00Z',
    tombstone: false,
    outcome: 'applied',
    reason: null,
    detail: null,
    lostTo: null,
    attempts: 1,
    data: null,
    ...over,
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe.each(['memory', 'sqlite', 'postgres'] as const)('history rows on the %s inbox', (kind) => {
  it('retention removes the rows recorded before it, in batches, and nothing else', async () => {
    const f = await fixture(kind);
    cleanups.push(async () => {
      await f.exec(`DROP TABLE IF EXISTS ${kind === 'postgres' ? `${TEST_SCHEMA}.` : ''}${f.historyTable}`);
      await f.store.close();
    });
    const now = f.clock.now();
    // 5 rows older than the retention (7 days), 1 exactly at its edge, 3 newer: written out of time order.
    const ages = [30, 8, 3, 7.5, 10, 7, 1, 9, 0];
    await f.history.read(async (backend, tx) => {
      for (const [i, days] of ages.entries()) {
        await backend.write(
          tx,
          record({ messageId: `m-${i}`, key: `k-${i % 2}`, recordedAt: new Date(now - days * DAY) }),
        );
      }
    });
    // 5 old rows in batches of 2: 2 + 2 + 1, then it stops.
    expect(await f.history.cleanup()).toBe(5);
    const left = await f.history.read((backend, tx) => backend.read(tx, { limit: 100 }));
    expect(left.map((r) => r.messageId)).toEqual(['m-2', 'm-5', 'm-6', 'm-8']);
    expect(await f.history.cleanup()).toBe(0);
  });

  // The memory store's reader takes the memory outbox's rows: tested through a bus in
  // explain-caused.test.ts, where a handler publishes.
  if (kind !== 'memory')
    it('reads what each applied message caused from the outbox table, when there is one', async () => {
      const f = await fixture(kind);
      const q = kind === 'postgres' ? `${TEST_SCHEMA}.` : '';
      cleanups.push(async () => {
        await f.exec(`DROP TABLE IF EXISTS ${q}${f.historyTable}`);
        await f.exec(`DROP TABLE IF EXISTS ${q}${f.outboxTable}`);
        await f.store.close();
      });
      const consumed = [
        { endpoint: 'orders', messageId: 'm-1' },
        { endpoint: 'orders', messageId: 'm-2' },
      ];
      // No outbox table yet: nothing caused, no error.
      expect(await f.history.read((backend, tx) => backend.caused(tx, consumed))).toEqual([]);
      // Issue 13's table, exactly its columns.
      const pgTypes = kind === 'postgres';
      await f.exec(`CREATE TABLE ${q}${f.outboxTable} (
      seq ${pgTypes ? 'bigserial PRIMARY KEY' : 'INTEGER PRIMARY KEY'},
      message_id text NOT NULL, destination_kind text NOT NULL, destination text NOT NULL, message_type text NOT NULL,
      entity_key text, headers ${pgTypes ? 'jsonb' : 'text'}, body ${pgTypes ? 'bytea' : 'blob'},
      created_at ${pgTypes ? 'timestamptz' : 'text'} NOT NULL, source_endpoint text, causation_id text,
      attempts integer NOT NULL DEFAULT 0, next_attempt_at ${pgTypes ? 'timestamptz' : 'text'},
      dispatched_at ${pgTypes ? 'timestamptz' : 'text'}, failed_at ${pgTypes ? 'timestamptz' : 'text'}, failed_reason text)`);
      const at = "'2026-11-01T00:00:01.000Z'";
      await f.exec(`INSERT INTO ${q}${f.outboxTable}
      (message_id, destination_kind, destination, message_type, entity_key, created_at, source_endpoint, causation_id, attempts, dispatched_at, failed_at, failed_reason) VALUES
      ('out-1', 'publish', 'test.invoiced.v1', 'test.invoiced.v1', 'k-1', ${at}, 'orders', 'm-1', 1, ${at}, NULL, NULL),
      ('out-2', 'send', 'shipping', 'test.ship.v1', 'k-1', ${at}, 'orders', 'm-1', 3, NULL, ${at}, 'refused: <b>no route</b>'),
      ('out-3', 'publish', 'test.other.v1', 'test.other.v1', NULL, ${at}, 'billing', 'm-1', 1, NULL, NULL, NULL),
      ('out-4', 'publish', 'test.other.v1', 'test.other.v1', NULL, ${at}, 'orders', 'm-9', 1, NULL, NULL, NULL)`);
      const caused = await f.history.read((backend, tx) => backend.caused(tx, consumed));
      expect(caused).toEqual([
        {
          sourceEndpoint: 'orders',
          causationId: 'm-1',
          messageId: 'out-1',
          messageType: 'test.invoiced.v1',
          destinationKind: 'publish',
          destination: 'test.invoiced.v1',
          createdAt: '2026-11-01T00:00:01.000Z',
          dispatchedAt: '2026-11-01T00:00:01.000Z',
          failedAt: null,
          failedReason: null,
        },
        {
          sourceEndpoint: 'orders',
          causationId: 'm-1',
          messageId: 'out-2',
          messageType: 'test.ship.v1',
          destinationKind: 'send',
          destination: 'shipping',
          createdAt: '2026-11-01T00:00:01.000Z',
          dispatchedAt: null,
          failedAt: '2026-11-01T00:00:01.000Z',
          failedReason: 'refused: <b>no route</b>',
        },
      ]);
    });
});

describe('bus.cleanupInbox and the history', () => {
  it("deletes the history's old rows with the inbox's, and runs without a history table when history is off", async () => {
    const { createBus, createMemoryBroker, memoryTransport } = await import('../../../src/index.js');
    const { sqliteInbox } = await import('../../../src/inbox/sqlite/index.js');
    const { EntityUpdated } = await import('../ordering/harness.js');
    const { waitFor } = await import('../../support/wait-for.js');
    for (const history of [true, false]) {
      const clock = new ManualClock(Date.parse('2026-11-01T00:00:00Z'));
      const { path } = sqliteStore();
      const bus = createBus(
        {
          shutdown: { signals: [] },
          // The automatic cleanup (every cleanupIntervalMs) stays out of the 8 days the clock moves.
          inbox: { kind: 'sqlite', path, table: uniqueTable('inbox'), cleanupIntervalMs: 30 * DAY },
          history: { enabled: history, table: uniqueTable('history'), retentionMs: 7 * DAY },
        },
        {
          inbox: sqliteInbox(),
          transports: [memoryTransport({ broker: createMemoryBroker() })],
          clock,
          logger: pino({ level: 'silent' }),
        },
      );
      bus.endpoint('entities').handle(EntityUpdated, async () => {});
      await bus.start();
      try {
        await bus.send('entities', EntityUpdated, { value: 1 }, { id: 'old', key: 'k' });
        await waitFor(() => bus.health().endpoints.entities?.counters.completed === 1, { what: 'the old one' });
        clock.advance(8 * DAY);
        await bus.send('entities', EntityUpdated, { value: 2 }, { id: 'new', key: 'k' });
        await waitFor(() => bus.health().endpoints.entities?.counters.completed === 2, { what: 'the new one' });
        expect((await bus.explain('k')).entries.map((e) => e.messageId)).toEqual(history ? ['old', 'new'] : []);
        // The inbox's own retention (30 days) keeps both inbox rows; the history's (7 days) drops one.
        expect(await bus.cleanupInbox()).toBe(history ? 1 : 0);
        expect((await bus.explain('k')).entries.map((e) => e.messageId)).toEqual(history ? ['new'] : []);
      } finally {
        await bus.stop();
      }
    }
  });
});

describe('the history table on PostgreSQL with inbox.createTables false', () => {
  it('is not created: a missing one fails the start naming it', async () => {
    const inboxTable = uniqueTable('inbox');
    const historyTable = uniqueTable('history');
    const pool = testPool();
    const creator = postgresStore(inboxTable);
    await creator.init();
    await creator.close();
    const store = postgresStore(inboxTable, { createTables: false }) as InboxStore<unknown>;
    try {
      await store.init();
      const common = {
        storeEnvelope: false,
        retentionMs: 60_000,
        cleanupIntervalMs: 1_000,
        cleanupBatchSize: 10,
        startupWaitMs: 0,
      };
      const history = createHistory(
        { store, config: { ...common, schema: TEST_SCHEMA, table: inboxTable, createTables: false } as typeof common },
        HistoryConfigSchema.parse({ enabled: true, table: historyTable }),
        { clock: new ManualClock(), logger: pino({ level: 'silent' }), outboxTable: uniqueTable('outbox') },
      );
      await expect(history?.init()).rejects.toThrow(
        `history.table: ${TEST_SCHEMA}.${historyTable} or its indexes are missing and inbox.createTables is false`,
      );
      const { rows } = await pool.query('SELECT to_regclass($1) AS t', [`${TEST_SCHEMA}.${historyTable}`]);
      expect(rows[0].t).toBeNull();
    } finally {
      await store.close();
      await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${inboxTable}, ${TEST_SCHEMA}.${inboxTable}_versions`);
      await pool.end();
    }
  });
});
