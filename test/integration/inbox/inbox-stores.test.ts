import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboxEntry, InboxStore } from '../../../src/index.js';
import type { PostgresTransaction } from '../../../src/inbox/postgres/index.js';
import type { SqliteTransaction } from '../../../src/inbox/sqlite/index.js';
import { signal } from '../../support/signal.js';
import { postgresStore, sqliteStore, testPool, uniqueTable } from './stores.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

const entry = (messageId: string, extra: Partial<InboxEntry> = {}): InboxEntry => ({
  endpoint: 'billing',
  messageId,
  messageType: 'billing.charge.v1',
  key: 'order-1',
  occurredAt: '2026-11-22T10:00:00.123456789+01:00',
  receivedAt: new Date('2026-11-22T09:00:01Z'),
  attempts: 1,
  envelopeJson: undefined,
  ...extra,
});

/** The store-independent cases; `effect` writes one row of the handler's own effect through tx. */
function storeCases<TTx>(
  name: string,
  make: () => InboxStore<TTx>,
  effect: (tx: TTx, id: string) => Promise<void>,
  effects: (id: string) => Promise<number>,
) {
  describe(`inbox store: ${name}`, () => {
    let store: InboxStore<TTx>;
    beforeAll(async () => {
      store = make();
      await store.init();
      await store.init(); // idempotent
    });
    afterAll(async () => {
      await store.close();
    });

    it('runs the work once per message id; a second delivery is a duplicate', async () => {
      const first = await store.runOnce(entry('m1'), async (tx) => {
        await effect(tx, 'm1');
        return { result: 'done' };
      });
      expect(first).toEqual({ status: 'processed', value: 'done' });
      const second = await store.runOnce(entry('m1'), async (tx) => {
        await effect(tx, 'm1');
        return { result: 'again' };
      });
      expect(second).toEqual({ status: 'duplicate' });
      expect(await effects('m1')).toBe(1);
    });

    it('rolls back the effect and the inbox row when the work throws', async () => {
      await expect(
        store.runOnce(entry('m2'), async (tx) => {
          await effect(tx, 'm2');
          throw new Error('handler failed');
        }),
      ).rejects.toThrow('handler failed');
      expect(await effects('m2')).toBe(0);
      expect(await store.find('billing', 'm2')).toBeUndefined();
      const retried = await store.runOnce(entry('m2', { attempts: 2 }), async (tx) => {
        await effect(tx, 'm2');
        return { result: 'ok' };
      });
      expect(retried.status).toBe('processed');
      expect(await effects('m2')).toBe(1);
    });

    it('runs the work once when the same id is claimed concurrently', async () => {
      const runs = await Promise.all(
        Array.from({ length: 5 }, () =>
          store.runOnce(entry('m3'), async (tx) => {
            await effect(tx, 'm3');
            return { result: 1 };
          }),
        ),
      );
      expect(runs.filter((r) => r.status === 'processed')).toHaveLength(1);
      expect(runs.filter((r) => r.status === 'duplicate')).toHaveLength(4);
      expect(await effects('m3')).toBe(1);
    });

    it('stores what explains the state: type, key, timestamps, outcome, attempts, envelope', async () => {
      const envelope = { id: 'm4', type: 'billing.charge.v1', data: { amount: 5 } };
      await store.runOnce(entry('m4', { attempts: 3, envelopeJson: JSON.stringify(envelope) }), async () => ({
        result: null,
        recordAs: 'stale',
      }));
      const row = await store.find('billing', 'm4');
      expect(row).toMatchObject({
        endpoint: 'billing',
        messageId: 'm4',
        messageType: 'billing.charge.v1',
        key: 'order-1',
        occurredAt: '2026-11-22T10:00:00.123456789+01:00',
        outcome: 'stale',
        attempts: 3,
        envelope,
      });
      expect(row?.receivedAt.toISOString()).toBe('2026-11-22T09:00:01.000Z');
      expect(row?.processedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    });

    it('deletes old rows in bounded batches', async () => {
      for (let i = 0; i < 5; i++) await store.runOnce(entry(`old-${i}`), async () => ({ result: null }));
      const future = new Date(Date.now() + 60_000);
      expect(await store.cleanup(future, 2)).toBe(2);
      const rest = await store.cleanup(future, 1_000);
      expect(rest).toBeGreaterThanOrEqual(3);
      expect(await store.find('billing', 'old-4')).toBeUndefined();
    });
  });
}

const sqlite = sqliteStore();
storeCases<SqliteTransaction>(
  'sqlite',
  () => sqlite.store,
  async (db, id) => {
    db.exec('CREATE TABLE IF NOT EXISTS effects (id TEXT NOT NULL)');
    db.prepare('INSERT INTO effects (id) VALUES (?)').run(id);
  },
  async (id) => {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(sqlite.path, { readonly: true });
    try {
      const has = db.prepare("SELECT name FROM sqlite_master WHERE name = 'effects'").get();
      return has ? (db.prepare('SELECT count(*) AS n FROM effects WHERE id = ?').get(id) as { n: number }).n : 0;
    } finally {
      db.close();
    }
  },
);

const pool = testPool();
const effectsTable = `effects_${Math.random().toString(36).slice(2, 10)}`;
storeCases<PostgresTransaction>(
  'postgres',
  () => postgresStore(),
  async (client, id) => {
    await client.query(`INSERT INTO ${TEST_SCHEMA}.${effectsTable} (id) VALUES ($1)`, [id]);
  },
  async (id) =>
    Number(
      (await pool.query(`SELECT count(*) AS n FROM ${TEST_SCHEMA}.${effectsTable} WHERE id = $1`, [id])).rows[0].n,
    ),
);

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${TEST_SCHEMA}`);
  await pool.query(`CREATE TABLE IF NOT EXISTS ${TEST_SCHEMA}.${effectsTable} (id text NOT NULL)`);
});
afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${effectsTable}`);
  await pool.end();
});

describe('postgres inbox under contention', () => {
  it('releases as busy instead of failing when the other holder keeps the id past the lock timeout', async () => {
    const store = postgresStore(undefined, { lockTimeoutMs: 200 });
    await store.init();
    const hold = signal();
    const started = signal();
    const first = store.runOnce(entry('held'), async () => {
      started.fire();
      await hold.wait;
      return { result: 'first' };
    });
    await started.wait;
    const second = await store.runOnce(entry('held'), async () => ({ result: 'second' }));
    expect(second).toEqual({ status: 'busy' });
    hold.fire();
    expect(await first).toEqual({ status: 'processed', value: 'first' });
    expect(await store.runOnce(entry('held'), async () => ({ result: 'third' }))).toEqual({ status: 'duplicate' });
    await store.close();
  });
});

describe('postgres inbox start-up', () => {
  it('instances starting at once on a new schema and table all initialise (CREATE IF NOT EXISTS races)', async () => {
    const schema = uniqueTable('sluice_init');
    const table = uniqueTable('inbox');
    const stores = Array.from({ length: 4 }, () => postgresStore(table, { schema }));
    try {
      const results = await Promise.allSettled(stores.map((s) => s.init()));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const outcomes = await Promise.all(stores.map((s) => s.runOnce(entry('first'), async () => ({ result: 'ran' }))));
      expect(outcomes.filter((o) => o.status === 'processed')).toHaveLength(1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  it('waits for another instance creating its tables even with a short lockTimeoutMs', async () => {
    // Another instance (any table on this database) holds the start-up DDL lock for a while.
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(126909663503205)');
      const store = postgresStore(undefined, { lockTimeoutMs: 50 });
      const init = store.init();
      await new Promise((r) => setTimeout(r, 300));
      await holder.query('COMMIT');
      await init;
      expect(await store.runOnce(entry('after-wait'), async () => ({ result: 1 }))).toEqual({
        status: 'processed',
        value: 1,
      });
      await store.close();
    } finally {
      holder.release();
    }
  });

  it('starts on existing tables without locking them: a running transaction on the table does not block it', async () => {
    const table = uniqueTable('inbox');
    const running = postgresStore(table);
    await running.init();
    const hold = signal();
    const claimed = signal();
    // A handler transaction in flight: it holds a row lock on the inbox table until it commits.
    const inFlight = running.runOnce(entry('in-flight'), async () => {
      claimed.fire();
      await hold.wait;
      return { result: 'done' };
    });
    await claimed.wait;
    const starting = postgresStore(table, { lockTimeoutMs: 100 });
    try {
      await starting.init();
    } finally {
      hold.fire();
      await inFlight;
      await starting.close();
      await running.close();
    }
  });
});
