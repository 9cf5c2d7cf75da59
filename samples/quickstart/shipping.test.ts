// The quickstart's own tests: its handler, run through `sluice/testing` on the same SQLite inbox as
// the service, in virtual time. No broker, no polling, no sleeping.
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteInbox } from '../../src/inbox/sqlite/index.js';
import { createTestHarness, type TestHarness } from '../../src/testing/index.js';
import type { SqliteTransaction } from '../../src/inbox/sqlite/index.js';
import { OrderPlaced, ShipmentBooked } from './contracts.js';
import { shippingService, type Warehouse } from './shipping.js';

const order = (orderId: string) => ({ orderId, customerId: 'c-7', lines: [{ sku: 'sku-1', quantity: 2 }] });

describe('the shipping service', () => {
  let harness: TestHarness<SqliteTransaction>;
  const start = async (warehouse: Warehouse) => {
    harness = createTestHarness({ inbox: sqliteInbox() });
    shippingService(harness.bus, warehouse);
    await harness.start();
  };
  afterEach(() => harness.stop());

  it('books a shipment once per order, even when the order arrives twice', async () => {
    await start({ reserve: async () => {} });
    await harness.publish(OrderPlaced, order('o-1'), { id: 'm-1' });
    await harness.publish(OrderPlaced, order('o-1'), { id: 'm-1' });
    await harness.settled();

    expect(harness.published(ShipmentBooked).map((b) => b.message)).toEqual([
      { orderId: 'o-1', customerId: 'c-7', parcels: 2 },
    ]);
    expect(harness.skipped(OrderPlaced).map((s) => s.reason)).toEqual(['duplicate']);
  });

  it('retries a warehouse that timed out, 100 ms later', async () => {
    let timeouts = 1;
    await start({
      reserve: async () => {
        if (timeouts-- > 0) throw new Error('warehouse API timed out');
      },
    });
    const startedAt = harness.clock?.now() ?? 0;
    await harness.publish(OrderPlaced, order('o-2'));
    await harness.settled();

    expect(harness.consumed(OrderPlaced)).toEqual([expect.objectContaining({ attempt: 2 })]);
    expect(harness.published(ShipmentBooked)).toHaveLength(1);
    expect((harness.clock?.now() ?? 0) - startedAt).toBe(100);
  });

  it('dead-letters an order the warehouse never takes after three attempts, announcing nothing', async () => {
    await start({
      reserve: async () => {
        throw new Error('warehouse API timed out');
      },
    });
    await harness.publish(OrderPlaced, order('o-3'));
    await harness.settled();

    const [dead] = harness.deadLettered(OrderPlaced);
    expect(dead?.message?.orderId).toBe('o-3');
    expect(dead?.fault).toMatchObject({
      reason: 'retries-exhausted',
      attempts: 3,
      errorMessage: 'warehouse API timed out',
    });
    expect(harness.published(ShipmentBooked)).toEqual([]);
  });

  it('dead-letters a malformed order at once, without calling the warehouse', async () => {
    let calls = 0;
    await start({
      reserve: async () => {
        calls++;
      },
    });
    await harness.sendRaw('shipping', {
      specversion: '1.0',
      id: 'o-bad',
      source: 'legacy-orders',
      type: OrderPlaced.type,
      time: '2026-11-22T10:00:00Z',
      data: { orderId: 'o-4', customerId: 'c', lines: [{ sku: 's', quantity: 0 }] },
    });
    await harness.settled();

    expect(harness.deadLettered().map((d) => [d.fault.reason, d.fault.attempts])).toEqual([['schema-violation', 0]]);
    expect(calls).toBe(0);
  });
});
