// The quickstart: a shipping service on the embedded default — the in-memory broker and the SQLite
// inbox, no server needed — handling a stream of demo order events, a few of them bad or repeated.
// Run with `npm run quickstart`.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { createBus } from '../../src/index.js';
import { sqliteInbox } from '../../src/inbox/sqlite/index.js';
import { OrderPlaced } from './contracts.js';
import { prettyLog } from './pretty-log.js';
import { shippingService } from './shipping.js';

const logger = pino({ level: 'info', base: { service: 'shipping' } }, prettyLog());
const bus = createBus(
  {
    service: 'shipping',
    transport: { kind: 'memory' },
    inbox: { kind: 'sqlite', path: '.sluice/quickstart.db' },
  },
  { logger, inbox: sqliteInbox() },
);

// The warehouse of the demo: it times out once, for one order; the retry policy takes care of it.
const shipped: string[] = [];
let flakyFailures = 0;
shippingService(bus, {
  async reserve(order) {
    if (order.orderId === 'o-1003' && flakyFailures++ === 0) throw new Error('warehouse API timed out');
    shipped.push(order.orderId);
  },
});

await bus.start();

// The producer side of the demo: good events, then the kinds of bad input Sluice pushes back on.
const run = randomUUID().slice(0, 8);
for (const id of ['o-1001', 'o-1002', 'o-1003', 'o-1004']) {
  const order = { orderId: id, customerId: 'c-7', lines: [{ sku: 'sku-1', quantity: 1 }] };
  await bus.publish(OrderPlaced, order, { key: id, id: `${run}-${id}` });
}
// The producer retries a publish it was unsure about: the same message id arrives twice.
const again = { orderId: 'o-1002', customerId: 'c-7', lines: [{ sku: 'sku-1', quantity: 1 }] };
await bus.publish(OrderPlaced, again, { key: 'o-1002', id: `${run}-o-1002` });
const raw = (body: string) =>
  bus.transport.send('shipping', {
    messageId: 'raw',
    body: Buffer.from(body),
    headers: {},
    contentType: 'application/cloudevents+json',
    key: undefined,
    messageType: OrderPlaced.type,
  });
const base = { specversion: '1.0', source: 'legacy-orders', type: OrderPlaced.type };
await raw('{"specversion":"1.0", "id": "garbled"'); // truncated JSON
await raw(
  JSON.stringify({
    ...base,
    id: 'o-local',
    time: '2026-11-22T10:00:00',
    data: { orderId: 'o-1005', customerId: 'c', lines: [{ sku: 's', quantity: 1 }] },
  }),
);
await raw(
  JSON.stringify({
    ...base,
    id: 'o-bad',
    time: '2026-11-22T10:00:00Z',
    data: { orderId: 'o-1006', customerId: 'c', lines: [{ sku: 's', quantity: 0 }] },
  }),
);

// Wait until every message has a final outcome, then show what happened.
const settled = () => {
  const c = bus.health().endpoints.shipping?.counters;
  return c ? c.completed + c.skipped + c.deadLettered === 8 : false;
};
const deadline = Date.now() + 10_000;
while (!settled()) {
  if (Date.now() > deadline) throw new Error('the demo messages did not all settle within 10 s');
  await new Promise((r) => setTimeout(r, 20));
}

const deadLetters = await bus.deadLetters('shipping').peek();
process.stdout.write(`\nshipped once each: ${[...shipped].sort().join(', ')}\n`);
process.stdout.write(`duplicates skipped by the inbox: ${bus.health().endpoints.shipping?.counters.skipped}\n`);
process.stdout.write(`dead-lettered (never retried, consumer kept running):\n`);
for (const d of deadLetters) process.stdout.write(`  - ${d.fault?.reason}: ${d.fault?.description}\n`);
await bus.stop();
