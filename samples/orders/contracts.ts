import { z } from 'zod';
import { defineMessage } from '../../src/index.js';

/** Announced by the orders API when an order is stored (same transaction, through the outbox). */
export const OrderPlaced = defineMessage(
  'orders-sample.order-placed.v1',
  z.object({ orderId: z.string(), customer: z.string(), total: z.number().positive() }),
);

/** Published by billing for each order it invoiced (in the handler's transaction, through the outbox). */
export const InvoiceIssued = defineMessage(
  'orders-sample.invoice-issued.v1',
  z.object({ orderId: z.string(), invoiceId: z.string(), amount: z.number() }),
);
