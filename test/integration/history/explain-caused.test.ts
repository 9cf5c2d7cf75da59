// What an applied message caused, in `bus.explain`: a handler publishes and sends through the
// outbox (issue 13), and the entity's timeline shows those messages under the entry that caused
// them (issue 14), on every store — read from the outbox's own table (`outbox.table`).
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, createMemoryBroker, defineMessage, memoryTransport } from '../../../src/index.js';
import { TEST_SCHEMA } from '../../support/test-schema.js';
import { waitFor } from '../../support/wait-for.js';
import { inboxOf, testPool, uniqueTable } from '../inbox/stores.js';

const OrderPlaced = defineMessage('shop.order-placed.v1', z.object({ order: z.string() }));
const InvoiceRequested = defineMessage('billing.invoice-requested.v1', z.object({ order: z.string() }));
const ShipOrder = defineMessage('shipping.ship-order.v1', z.object({ order: z.string() }));

describe.each(['memory', 'sqlite', 'postgres'] as const)(
  'bus.explain on the %s store: what a message caused',
  (kind) => {
    let bus: Bus<unknown> | undefined;
    const drops: string[] = [];
    afterEach(async () => {
      await bus?.stop();
      bus = undefined;
      if (drops.length > 0) {
        const pool = testPool();
        for (const table of drops.splice(0)) await pool.query(`DROP TABLE IF EXISTS ${TEST_SCHEMA}.${table}`);
        await pool.end();
      }
    });

    it('lists the messages the handler published and sent under the entry that caused them', async () => {
      const { inbox, config } = inboxOf(kind);
      const outboxTable = uniqueTable('outbox');
      const historyTable = uniqueTable('history');
      if (kind === 'postgres') drops.push(outboxTable, historyTable);
      const b = createBus(
        {
          shutdown: { signals: [], timeoutMs: 2_000 },
          inbox: config as { kind: string },
          outbox: { table: outboxTable, pollIntervalMs: 20, backupPollIntervalMs: 200 },
          history: { enabled: true, table: historyTable },
        },
        { inbox, transports: [memoryTransport({ broker: createMemoryBroker() })], logger: pino({ level: 'silent' }) },
      );
      bus = b;
      const received: string[] = [];
      b.endpoint('orders').handle(OrderPlaced, async (m, ctx) => {
        await ctx.publish(InvoiceRequested, { order: m.order }, { key: m.order });
        await ctx.send('shipping', ShipOrder, { order: m.order }, { key: m.order });
      });
      b.endpoint('billing', { inbox: false }).handle(InvoiceRequested, async (_m, ctx) => {
        received.push(ctx.messageId);
      });
      b.endpoint('shipping', { inbox: false }).handle(ShipOrder, async (_m, ctx) => {
        received.push(ctx.messageId);
      });
      await b.start();
      await b.send('orders', OrderPlaced, { order: 'o-1042' }, { key: 'o-1042', id: 'm-1' });
      await waitFor(() => received.length === 2, { timeoutMs: 15_000, what: 'both caused messages delivered' });

      // The caused rows are marked dispatched within the marks' linger after the broker confirmed them.
      let entries: Awaited<ReturnType<typeof b.explain>>['entries'] = [];
      await waitFor(async () => {
        entries = (await b.explain('o-1042', { endpoint: 'orders' })).entries;
        return (entries[0]?.caused ?? []).every((c) => c.dispatchedAt !== null);
      });
      expect(entries.map((e) => [e.messageId, e.outcome])).toEqual([['m-1', 'applied']]);
      const caused = entries[0]?.caused ?? [];
      expect(
        caused.map((c) => [c.messageType, c.destinationKind, c.destination, c.dispatchedAt !== null]).sort(),
      ).toEqual(
        [
          [InvoiceRequested.type, 'publish', InvoiceRequested.type, true],
          [ShipOrder.type, 'send', 'shipping', true],
        ].sort(),
      );
      // The ids the downstream endpoints received are the ones the timeline names.
      expect(caused.map((c) => c.messageId).sort()).toEqual([...received].sort());
    });
  },
);
