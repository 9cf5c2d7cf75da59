import type { Bus, EndpointOptions, MessageOf } from '../../src/index.js';
import type { SqliteTransaction } from '../../src/inbox/sqlite/index.js';
import { OrderPlaced, ShipmentBooked } from './contracts.js';

/** The warehouse API the shipping service reserves stock with; it may time out. */
export interface Warehouse {
  reserve(order: MessageOf<typeof OrderPlaced>): Promise<void>;
}

/** The shipping endpoint's settings, the same in the service and in its tests. */
export const shippingEndpoint: EndpointOptions = {
  concurrency: 4,
  retry: { kind: 'intervals', delaysMs: [100, 200] },
};

/**
 * The shipping service: books one shipment per order placed and announces it. The booking goes
 * through the inbox transaction, so it commits together with the record that this message was
 * processed: a redelivered duplicate can never book a second shipment. A warehouse that times out
 * is retried by the endpoint's policy (the failed attempt's insert rolls back with it).
 */
export function shippingService(bus: Bus<SqliteTransaction>, warehouse: Warehouse): void {
  bus.endpoint('shipping', shippingEndpoint).handle(OrderPlaced, async (order, ctx) => {
    ctx.tx.exec('CREATE TABLE IF NOT EXISTS shipments (order_id TEXT, message_id TEXT, placed_at TEXT)');
    ctx.tx.prepare('INSERT INTO shipments VALUES (?, ?, ?)').run(order.orderId, ctx.messageId, ctx.envelope.occurredAt);
    await warehouse.reserve(order);
    const parcels = order.lines.reduce((sum, line) => sum + line.quantity, 0);
    await ctx.publish(
      ShipmentBooked,
      { orderId: order.orderId, customerId: order.customerId, parcels },
      { key: order.orderId },
    );
    ctx.log.info({ orderId: order.orderId, parcels }, 'shipment booked');
  });
}
