// A row's attempts fence its lease, on every store (a real SQLite file, a real PostgreSQL table):
// a dispatcher whose lease ran out while it waited (a slow broker, then a slow database), and whose
// row another relay claimed since, can neither give the row back nor move it aside. Without the
// fence its late give-back would end the new holder's lease, and a third claim would send the row
// while the second holder still does.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type InboxStore, memoryInbox, type OutboxMessage, type OutboxStore, systemClock } from '../../../src/index.js';
import { postgresStore, sqliteStore, type StoreKind, uniqueTable } from '../inbox/stores.js';

const LEASE_MS = 150;

function storeOf(kind: StoreKind): InboxStore<unknown> {
  switch (kind) {
    case 'memory': {
      const def = memoryInbox();
      return def.create(def.configSchema.parse({ kind: 'memory' }), {
        logger: pino({ level: 'silent' }),
        clock: systemClock,
      }) as InboxStore<unknown>;
    }
    case 'sqlite':
      return sqliteStore().store as InboxStore<unknown>;
    case 'postgres':
      return postgresStore() as InboxStore<unknown>;
  }
}

const message = (id: string): OutboxMessage => ({
  messageId: id,
  destinationKind: 'publish',
  destination: 'orders.charged',
  messageType: 'orders.charged',
  key: 'account-1',
  headers: {},
  body: Buffer.from(id),
  sourceEndpoint: 'billing',
  causationId: undefined,
});

describe.each(['memory', 'sqlite', 'postgres'] as const)('outbox leases on the %s store', (kind) => {
  let store: InboxStore<unknown> | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  async function outboxWithOneLeasedRow(): Promise<{ outbox: OutboxStore<unknown>; seq: number }> {
    store = storeOf(kind);
    await store.init();
    const outbox = (store.outbox as NonNullable<InboxStore<unknown>['outbox']>).call(store, {
      table: uniqueTable('outbox'),
      instanceId: 'instance-a',
    });
    await outbox.init();
    let written: Promise<readonly { seq: number; leased: boolean }[]> | undefined;
    // Not awaited inside: a store that writes at the COMMIT resolves it once the COMMIT came back.
    await (store.transaction as NonNullable<InboxStore<unknown>['transaction']>).call(store, async (tx) => {
      written = outbox.write(tx, [message('m-1')], { owner: 'instance-a', ms: LEASE_MS });
    });
    const [row] = await (written as NonNullable<typeof written>);
    expect(row?.leased).toBe(true);
    return { outbox, seq: (row as { seq: number }).seq };
  }

  it('ignores a give-back and a move aside from a holder whose lease another claim took over', async () => {
    const { outbox, seq } = await outboxWithOneLeasedRow();
    // The writer (attempts 1) stalls past its lease; a relay claims the row: attempts 2, its lease.
    expect(await outbox.claim({ limit: 10, leaseMs: 10_000 })).toEqual([]);
    await new Promise((r) => setTimeout(r, LEASE_MS + 100));
    const claimed = await outbox.claim({ limit: 10, leaseMs: 10_000 });
    expect(claimed.map((r) => [r.seq, r.attempts])).toEqual([[seq, 2]]);

    // The writer comes back late: its give-back and its move aside change nothing.
    await outbox.retryAfter([{ seq, attempts: 1, delayMs: 0 }]);
    await outbox.moveAside({ seq, attempts: 1 }, 'refused by a late holder');
    expect(await outbox.claim({ limit: 10, leaseMs: 10_000 })).toEqual([]);
    const [kept] = await outbox.rows(10);
    expect(kept).toMatchObject({ seq, attempts: 2 });
    expect(kept?.failedAt).toBeUndefined();
    expect((await outbox.stats()).movedAside).toBe(0);

    // The relay that holds it gives it back: the next claim takes it (attempts 3).
    await outbox.retryAfter([{ seq, attempts: 2, delayMs: 0 }]);
    const again = await outbox.claim({ limit: 10, leaseMs: 10_000 });
    expect(again.map((r) => [r.seq, r.attempts])).toEqual([[seq, 3]]);
    // And the holder can move it aside.
    await outbox.moveAside({ seq, attempts: 3 }, 'too large');
    expect((await outbox.stats()).movedAside).toBe(1);
  });
});
