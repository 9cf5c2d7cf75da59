// The same harness under node's own test runner, no vitest:
//   node --import tsx --test samples/quickstart/shipping.node-test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sqliteInbox } from '../../src/inbox/sqlite/index.js';
import { createTestHarness } from '../../src/testing/index.js';
import { OrderPlaced, ShipmentBooked } from './contracts.js';
import { shippingService } from './shipping.js';

const order = { orderId: 'o-1', customerId: 'c-7', lines: [{ sku: 'sku-1', quantity: 1 }] };

test('books a shipment once per order, even when the order arrives twice', async (t) => {
  const harness = createTestHarness({ inbox: sqliteInbox() });
  t.after(() => harness.stop());
  shippingService(harness.bus, { reserve: async () => {} });
  await harness.start();
  await harness.publish(OrderPlaced, order, { id: 'm-1' });
  await harness.publish(OrderPlaced, order, { id: 'm-1' });
  await harness.settled();
  assert.deepEqual(
    harness.published(ShipmentBooked).map((b) => b.message),
    [{ orderId: 'o-1', customerId: 'c-7', parcels: 1 }],
  );
  assert.deepEqual(
    harness.skipped(OrderPlaced).map((s) => s.reason),
    ['duplicate'],
  );
});

test('retries a warehouse that timed out twice, then dead-letters with the fault, in virtual time', async (t) => {
  const harness = createTestHarness({ inbox: sqliteInbox() });
  t.after(() => harness.stop());
  shippingService(harness.bus, {
    reserve: async () => {
      throw new Error('warehouse API timed out');
    },
  });
  await harness.start();
  const startedAt = harness.clock?.now() ?? 0;
  await harness.publish(OrderPlaced, order);
  await harness.settled();
  const [dead] = harness.deadLettered(OrderPlaced);
  assert.equal(dead?.fault.reason, 'retries-exhausted');
  assert.equal(dead?.fault.attempts, 3);
  assert.equal((harness.clock?.now() ?? 0) - startedAt, 300);
});
