import { z } from 'zod';
import { defineMessage } from '../../src/index.js';

/** Published by the orders service when a customer places an order. */
export const OrderPlaced = defineMessage(
  'orders.order-placed.v1',
  z.object({
    orderId: z.string().min(1),
    customerId: z.string().min(1),
    lines: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })).min(1),
  }),
);

/** Published by the shipping service once it booked the shipment of an order. */
export const ShipmentBooked = defineMessage(
  'shipping.shipment-booked.v1',
  z.object({ orderId: z.string().min(1), customerId: z.string().min(1), parcels: z.number().int().positive() }),
);
