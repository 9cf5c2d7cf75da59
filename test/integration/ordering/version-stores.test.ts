import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InboxEntry, type InboxStore, MemoryInbox } from '../../../src/index.js';
import type { EntityVersion } from '../../../src/ordering/ordering-policy.js';
import { postgresStore, sqliteStore, testPool, uniqueTable } from '../inbox/stores.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';

const entry = (messageId: string): InboxEntry => ({
  endpoint: 'e',
  messageId,
  messageType: 't.v1',
  key: 'k',
  occurredAt: '2026-03-01T10:00:00Z',
  receivedAt: new Date(),
  attempts: 1,
  envelopeJson: undefined,
});
const version = (messageId: string, epochMs: number, tombstone = false): EntityVersion => ({
  occurredAt: new Date(epochMs).toISOString(),
  instant: { epochMs, nanos: 123_456 },
  messageId,
  tombstone,
});

function versionCases(name: string, make: () => InboxStore<unknown>, drop: () => Promise<void>) {
  describe(`entity versions: ${name}`, () => {
    let store: InboxStore<unknown>;
    beforeAll(async () => {
      store = make();
      await store.init();
      await store.init();
    });
    afterAll(async () => {
      await store.close();
      await drop();
    });

    it('writes a version in the inbox transaction and reads it back at full precision', async () => {
      await store.runOnce(entry('m1'), async (tx) => {
        expect(await store.readVersion(tx, 'e', 'k1')).toBeUndefined();
        expect(await store.writeVersion(tx, 'e', 'k1', version('m1', 1_000), true)).toBe(true);
        return { result: null };
      });
      await store.runOnce(entry('m2'), async (tx) => {
        expect(await store.readVersion(tx, 'e', 'k1')).toEqual(version('m1', 1_000));
        expect(await store.writeVersion(tx, 'e', 'k1', version('m2', 2_000, true), false)).toBe(true);
        return { result: null };
      });
      await store.runOnce(entry('m3'), async (tx) => {
        expect(await store.readVersion(tx, 'e', 'k1')).toEqual(version('m2', 2_000, true));
        expect(await store.readVersion(tx, 'other', 'k1')).toBeUndefined();
        return { result: null };
      });
    });

    it('rolls a version write back with a failed transaction', async () => {
      await expect(
        store.runOnce(entry('m4'), async (tx) => {
          await store.writeVersion(tx, 'e', 'k2', version('m4', 1_000), true);
          throw new Error('handler failed');
        }),
      ).rejects.toThrow('handler failed');
      await store.runOnce(entry('m5'), async (tx) => {
        expect(await store.readVersion(tx, 'e', 'k2')).toBeUndefined();
        return { result: null };
      });
    });

    it('deletes expired tombstones in bounded batches, and only tombstones', async () => {
      for (const [i, tomb] of [true, true, true, false].entries()) {
        await store.runOnce(entry(`c${i}`), async (tx) => {
          await store.writeVersion(tx, 'clean', `k${i}`, version(`c${i}`, 1_000, tomb), true);
          return { result: null };
        });
      }
      const future = new Date(Date.now() + 60_000);
      expect(await store.cleanupTombstones('clean', new Date(Date.now() - 60_000), 10)).toBe(0);
      expect(await store.cleanupTombstones('clean', future, 2)).toBe(2);
      expect(await store.cleanupTombstones('clean', future, 2)).toBe(1);
      expect(await store.cleanupTombstones('clean', future, 2)).toBe(0);
      await store.runOnce(entry('c-check'), async (tx) => {
        expect(await store.readVersion(tx, 'clean', 'k3')).toMatchObject({ tombstone: false });
        return { result: null };
      });
    });

    it('serialises two transactions that write the first version of one key', async () => {
      const order: string[] = [];
      let releaseFirst!: () => void;
      const firstHolds = new Promise<void>((r) => {
        releaseFirst = r;
      });
      let firstWrote!: () => void;
      const wrote = new Promise<void>((r) => {
        firstWrote = r;
      });
      const first = store.runOnce(entry('s1'), async (tx) => {
        expect(await store.readVersion(tx, 'e', 'race')).toBeUndefined();
        await store.writeVersion(tx, 'e', 'race', version('s1', 5_000), true);
        order.push('first wrote');
        firstWrote();
        await firstHolds;
        return { result: null };
      });
      await wrote;
      const second = store.runOnce(entry('s2'), async (tx) => {
        // As the ordering stage does: PostgreSQL's FOR UPDATE cannot lock a row not yet committed, so
        // the read may find none; the first-version insert then waits and reports the lost race.
        let seen = await store.readVersion(tx, 'e', 'race');
        if (!seen && !(await store.writeVersion(tx, 'e', 'race', version('s2', 4_000), true))) {
          seen = await store.readVersion(tx, 'e', 'race');
        }
        order.push(`second read ${seen?.messageId ?? 'none'}`);
        return { result: null };
      });
      setTimeout(releaseFirst, 50);
      await Promise.all([first, second]);
      expect(order).toEqual(['first wrote', 'second read s1']);
    });
  });
}

versionCases(
  'memory',
  () => new MemoryInbox() as InboxStore<unknown>,
  async () => {},
);
versionCases(
  'sqlite',
  () => sqliteStore().store as InboxStore<unknown>,
  async () => {},
);
const pgTable = uniqueTable('inbox');
versionCases(
  'postgres',
  () => postgresStore(pgTable) as InboxStore<unknown>,
  async () => {
    const pool = testPool();
    await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${pgTable}, ${TEST_SCHEMA}.${pgTable}_versions`);
    await pool.end();
  },
);
