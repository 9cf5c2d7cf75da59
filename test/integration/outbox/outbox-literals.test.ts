// The outbox's write on PostgreSQL goes inline (escaped literals in a simple query sent with the
// COMMIT). A value PostgreSQL cannot hold must fail the attempt as the handler's failure (retried,
// then dead-lettered), as it did when the write took parameters: never a dependency failure, which
// is released without spending an attempt, trips the kill switch and never ends.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, createMemoryBroker, defineMessage, memoryTransport } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { PG_URL, uniqueTable } from '../inbox/stores.js';
import { postgresInbox } from '../../../src/inbox/postgres/index.js';

const PlaceOrder = defineMessage('shop.place-order.v1', z.object({ order: z.string(), replyTo: z.string() }));
const OrderPlaced = defineMessage('shop.order-placed.v1', z.object({ order: z.string() }));
const silent = pino({ level: 'silent' });

describe('the outbox on PostgreSQL, a value it cannot store', () => {
  let bus: Bus<unknown> | undefined;
  afterEach(async () => {
    await bus?.stop();
    bus = undefined;
  });

  it('dead-letters a message whose handler sends to an address with a NUL in it, without a dependency failure', async () => {
    const b = createBus(
      {
        shutdown: { signals: [] },
        inbox: { kind: 'postgres', connectionString: PG_URL, schema: TEST_SCHEMA, table: uniqueTable('inbox') },
        outbox: { table: uniqueTable('outbox') },
        endpoints: { orders: { retry: { kind: 'immediate', retries: 2 } } },
      },
      {
        inbox: postgresInbox() as never,
        transports: [memoryTransport({ broker: createMemoryBroker() })],
        logger: silent,
      },
    );
    bus = b;
    // The reply address comes from the message: the consumer cannot vouch for it.
    b.endpoint('orders').handle(PlaceOrder, async (m, ctx) => {
      await ctx.send(m.replyTo, OrderPlaced, { order: m.order });
    });
    await b.start();
    await b.send('orders', PlaceOrder, { order: 'o-1', replyTo: 'replies\u0000x' });
    const counters = () => b.health().endpoints.orders?.counters;
    await waitFor(() => (counters()?.deadLettered ?? 0) + (counters()?.dependencyFailures ?? 0) > 0, {
      what: 'the message to be dead-lettered or released',
    });
    expect(counters()?.dependencyFailures).toBe(0);
    await waitFor(() => counters()?.deadLettered === 1, { what: 'the dead letter' });
    expect(b.health().endpoints.orders?.killSwitch?.state).not.toBe('tripped');
  });
});
