import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineMessage, type Envelope, type FaultDetails, memoryInbox } from '../../src/index.js';
import { type SqliteTransaction, sqliteInbox } from '../../src/inbox/sqlite/index.js';
import { createTestHarness, type TestHarness } from '../../src/testing/index.js';

const OrderPlaced = defineMessage(
  'orders.order-placed.v1',
  z.object({ orderId: z.string(), placedAt: z.string().transform((s) => new Date(s)) }),
);

// Run by the type checker only (`npm run typecheck`, part of `npm test`).
describe('sluice/testing types', () => {
  it('types the records from the contract, as handlers see the data (schema output)', () => {
    const h = createTestHarness();
    expectTypeOf(h.consumed(OrderPlaced)[0]?.message).toEqualTypeOf<{ orderId: string; placedAt: Date } | undefined>();
    expectTypeOf(h.published(OrderPlaced)[0]?.envelope).toEqualTypeOf<
      Envelope<{ orderId: string; placedAt: Date }> | undefined
    >();
    expectTypeOf(h.sent(OrderPlaced)[0]?.address).toEqualTypeOf<string | undefined>();
    const dead = h.deadLettered(OrderPlaced)[0];
    expectTypeOf(dead?.fault).toEqualTypeOf<FaultDetails | undefined>();
    // Bad input never passed the schema: the data may be missing.
    expectTypeOf(dead?.message).toEqualTypeOf<{ orderId: string; placedAt: Date } | undefined>();
    expectTypeOf(h.consumed()[0]?.message).toEqualTypeOf<unknown>();
  });

  it('checks what the test publishes against the schema input side', () => {
    const h = createTestHarness();
    // Never called: the type checker reads them.
    const checks = [
      () => h.publish(OrderPlaced, { orderId: 'o', placedAt: '2026-11-22T10:00:00Z' }),
      // @ts-expect-error the input side of placedAt is a string
      () => h.publish(OrderPlaced, { orderId: 'o', placedAt: new Date() }),
      // @ts-expect-error a field the schema does not have
      () => h.send('shipping', OrderPlaced, { orderId: 'o', placedAt: 'x', customerId: 'c' }),
    ];
    expectTypeOf(checks).toBeArray();
  });

  it('types ctx.tx from the inbox store it is given', () => {
    const sqlite = createTestHarness({ inbox: sqliteInbox() });
    expectTypeOf(sqlite).toEqualTypeOf<TestHarness<SqliteTransaction>>();
    sqlite.bus.endpoint('shipping').handle(OrderPlaced, (_order, ctx) => {
      expectTypeOf(ctx.tx).toEqualTypeOf<SqliteTransaction>();
    });
    createTestHarness({ inbox: memoryInbox() })
      .bus.endpoint('shipping')
      .handle(OrderPlaced, (_order, ctx) => {
        expectTypeOf(ctx.tx).toEqualTypeOf<undefined>();
      });
  });
});
